#!/usr/bin/env node
// The `gradlens` bin: `gradlens worker` starts a compute worker of a scaled-out deployment (src/worker.ts, loaded only
// then); anything else runs the CLI (an HTTP client, see main.ts) with the real process and exits with its status.
import { main } from './main.js';

const argv = process.argv.slice(2);
if (argv[0] === 'worker') {
  const { runWorker } = await import('../worker.js');
  await runWorker();
} else {
  process.exitCode = await main(argv);
}
