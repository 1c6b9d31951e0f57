// Long loops of analyses through the HTTP layer: tfjs tensor count flat, heap and RSS growth bounded.
import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testApp } from '../support/app.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { workerEntry } from '../../src/jobs/pool.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = 1024 * 1024;

const SPECS = [
  { network: { depth: 6, width: 16, activation: 'tanh' }, data: { source: 'moons', batchSize: 32, batches: 2 } },
  { network: { depth: 4, width: 12, activation: 'relu', residual: { every: 1, scale: 0.5 } }, data: { source: 'iris', batchSize: 16 }, include: ['parameters'] },
  { network: { depth: 5, width: 8, activation: 'gelu' }, data: { source: 'sine', batchSize: 16 }, loss: 'mse' },
  // Exploding: non-finite values all the way, still a normal result.
  { network: { depth: 30, width: 8, activation: 'relu', useBias: false, init: { weights: { name: 'constant', value: 1 } } }, data: { source: 'blobs', batchSize: 8 } },
  // Refused before compute.
  { network: { depth: 3, width: 4, activation: 'softmax' }, data: { source: 'iris' } },
];

function settle(): { heap: number; rss: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

describe('memory over many analyses', () => {
  it('in-process: 400 analyses leave the tensor count where it was, heap growth under 24 MB and RSS under 96 MB', async () => {
    const app = await testApp({ security: { rateLimitMax: 0 } });
    try {
      const run = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const spec = SPECS[i % SPECS.length]!;
          const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: spec });
          expect([200, 400]).toContain(res.statusCode);
        }
      };
      await run(40); // warm-up: kernels, datasets, caches
      const tensors = tf.memory().numTensors;
      const before = settle();
      await run(400);
      const after = settle();
      expect(tf.memory().numTensors).toBe(tensors);
      // The stored jobs themselves (400 results in SQLite) account for part of the growth.
      expect((after.heap - before.heap) / MB).toBeLessThan(24);
      expect((after.rss - before.rss) / MB).toBeLessThan(96);
      console.log(`in-process: heap ${((after.heap - before.heap) / MB).toFixed(1)} MB, rss ${((after.rss - before.rss) / MB).toFixed(1)} MB over 400 analyses`);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('on a worker pool: RSS of the whole process stays bounded over 300 analyses', async () => {
    const config = loadConfig({}, { backend: 'cpu', logLevel: 'silent', jobs: { workers: 1, db: ':memory:' }, security: { rateLimitMax: 0 } });
    const app = await buildApp(config, { logger: false });
    await app.ready();
    try {
      const run = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: SPECS[i % 4]! });
          expect(res.statusCode).toBe(200);
        }
      };
      await run(40);
      const before = settle();
      await run(300);
      const after = settle();
      expect((after.rss - before.rss) / MB).toBeLessThan(128);
      console.log(`pool: rss ${((after.rss - before.rss) / MB).toFixed(1)} MB over 300 analyses`);
    } finally {
      await app.close();
    }
  }, 180_000);
});
