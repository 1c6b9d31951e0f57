// Shared test helpers: an app on the pure-JS cpu backend, and the textbook chain's closed form.
import { buildApp } from '../src/app.js';
import { loadConfig, type ConfigOverrides } from '../src/config.js';
import type { FastifyInstance } from 'fastify';
import type { BackendChoice } from '../src/engine/backends/select.js';
import { enforceContract } from './support/contract.js';

/**
 * Backend of the in-process test apps: `cpu` (pure JS, the reference) unless CI asks for another through
 * GRADLENS_TEST_BACKEND, which it does to run the API suites on the native path and on the wasm fallback.
 */
export const TEST_BACKEND = (process.env.GRADLENS_TEST_BACKEND ?? 'cpu') as BackendChoice;

/**
 * In-process compute and an in-memory job store unless overridden: fast, and tf.memory() is this thread's.
 * Every response is checked against its route's declared schema (test/support/contract.ts).
 */
export async function testApp(overrides: ConfigOverrides = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, { backend: TEST_BACKEND, ...overrides, jobs: { workers: 0, db: ':memory:', ...overrides.jobs } });
  const app = enforceContract(await buildApp(config, { logger: false }));
  await app.ready();
  return app;
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Closed form of a chain of 1-unit sigmoid layers, weight w, no bias, input x0, loss = output. */
export function sigmoidChain(depth: number, w: number, x0: number): { weightGrads: number[]; deltas: number[] } {
  const a = [x0];
  const h: number[] = [];
  for (let l = 0; l < depth; l++) {
    h.push(w * a[l]!);
    a.push(sigmoid(h[l]!));
  }
  const deltas = new Array<number>(depth);
  const ds = (l: number): number => sigmoid(h[l]!) * (1 - sigmoid(h[l]!));
  deltas[depth - 1] = ds(depth - 1);
  for (let l = depth - 2; l >= 0; l--) deltas[l] = ds(l) * w * deltas[l + 1]!;
  return { deltas, weightGrads: deltas.map((d, l) => d * a[l]!) };
}

export const TEXTBOOK_CHAIN = {
  network: {
    depth: 20, width: 1, activation: 'sigmoid', outputActivation: 'sigmoid', useBias: false,
    init: { weights: { name: 'constant', value: 0.17 } },
  },
  data: { source: 'inline', x: [[1]] },
  loss: 'output',
} as const;
