// Writes openapi/openapi.json from the route schemas (npm run openapi); a test fails when the committed copy drifts.
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { generateOpenApi } from '../src/openapi.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'openapi'), { recursive: true });
writeFileSync(join(root, 'openapi', 'openapi.json'), await generateOpenApi());
console.log('wrote openapi/openapi.json');
