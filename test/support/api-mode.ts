// The deployment the API suites run on (GRADLENS_TEST_API_MODE): embedded, or distributed on the test Redis and
// PostgreSQL — the same suite on both, as the scale-out issue asks. Used by testApp and poolApp.
import { Redis } from 'ioredis';
import type { JobsConfig } from '../../src/config.js';
import { TEST_POSTGRES, TEST_REDIS, dropSchema, testSchema } from './stores.js';

/**
 * Which deployment the API suites run on: `embedded` (in-process queue, SQLite in memory: the default) or
 * `distributed` (GRADLENS_TEST_API_MODE=distributed, as .ci/run asks: BullMQ on GRADLENS_TEST_REDIS and
 * PostgreSQL at GRADLENS_TEST_POSTGRES, with BullMQ consumers in the app itself, so that every job goes
 * through Redis and every row through PostgreSQL while the compute stays where the embedded mode has it: on
 * this thread for testApp, where tf.memory() is checked, on the worker pool for poolApp). Each app has its own
 * key prefix and schema, removed when it closes.
 */
export const TEST_API_MODE = (process.env.GRADLENS_TEST_API_MODE ?? 'embedded') as 'embedded' | 'distributed';

/** The queue and store /health names in this mode. */
export const DEPLOYMENT = TEST_API_MODE === 'distributed'
  ? { store: 'postgres', queue: 'bullmq' } as const
  : { store: 'sqlite', queue: 'memory' } as const;

/** Jobs settings for one distributed test app, with `consumers` BullMQ consumers in the app itself, and its clean-up. */
export function distributedJobs(jobs: JobsConfig, consumers: number): { jobs: JobsConfig; cleanup: () => Promise<void> } {
  const redisUrl = TEST_REDIS, pgUrl = TEST_POSTGRES;
  if (!redisUrl || !pgUrl) throw new Error('GRADLENS_TEST_API_MODE=distributed needs GRADLENS_TEST_REDIS and GRADLENS_TEST_POSTGRES');
  const schema = testSchema();
  const prefix = `gradlens-test-${schema}`;
  return {
    jobs: { ...jobs, store: pgUrl, storeSchema: schema, distributed: { ...jobs.distributed, queue: redisUrl, prefix, localWorkers: consumers } },
    async cleanup() {
      await dropSchema(pgUrl, schema);
      const redis = new Redis(redisUrl);
      try {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    },
  };
}
