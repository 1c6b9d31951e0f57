// In-process test apps: buildApp on the test backend with in-process compute and an in-memory job store.
import { buildApp } from '../../src/app.js';
import { loadConfig, type ConfigOverrides } from '../../src/config.js';
import { TEST_API_MODE, distributedJobs } from './api-mode.js';
import type { FastifyInstance } from 'fastify';
import type { BackendChoice } from '../../src/engine/backends/select.js';
import { enforceContract } from './contract.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';

/**
 * Backend of the in-process test apps: `cpu` (pure JS, the reference) unless CI asks for another through
 * GRADLENS_TEST_BACKEND, which it does to run the API suites on the native path and on the wasm fallback.
 */
export const TEST_BACKEND = (process.env.GRADLENS_TEST_BACKEND ?? 'cpu') as BackendChoice;

/**
 * In-process compute and an in-memory job store unless overridden: fast, and tf.memory() is this thread's.
 * The backend loads as the tests' environment says (TEST_BACKEND_OPTIONS: CI's wasm run hides the addon), and
 * every response is checked against its route's declared schema (test/support/contract.ts).
 */
export async function testApp(overrides: ConfigOverrides = {}): Promise<FastifyInstance> {
  const base = loadConfig({}, { backend: TEST_BACKEND, backendOptions: TEST_BACKEND_OPTIONS, ...overrides, jobs: { workers: 0, db: ':memory:', ...overrides.jobs } });
  const scaled = TEST_API_MODE === 'distributed' ? distributedJobs(base.jobs, 1) : undefined;
  const config = scaled ? { ...base, jobs: scaled.jobs } : base;
  const app = enforceContract(await buildApp(config, { logger: false }));
  if (scaled) app.addHook('onClose', scaled.cleanup);
  await app.ready();
  return app;
}
