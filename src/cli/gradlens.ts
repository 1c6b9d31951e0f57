#!/usr/bin/env node
// The `gradlens` bin: runs the CLI with the real process and exits with its status (see main.ts).
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
