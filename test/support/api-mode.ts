// The deployment the API suites run on (GRADLENS_TEST_API_MODE): embedded, or distributed on the test Redis and
// PostgreSQL — the same suite on both, as the scale-out issue asks. Used by testApp and poolApp.
import { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import type { Config, JobsConfig } from '../../src/config.js';
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

/** The schema of each SQLite file a test named, so that an app reopened on the same file (a restart) finds its data. */
const schemaOfFile = new Map<string, string>();

/**
 * Jobs settings for one distributed test app, with `consumers` BullMQ consumers in the app itself, and its clean-up.
 * An app on ':memory:' gets a schema and prefix of its own, removed when it closes. An app on a file shares them
 * with every app on that file (a test's restart), and they are removed when the test ends (or when the app
 * closes, for an app made outside a test, in beforeAll).
 */
export function distributedJobs(jobs: JobsConfig, consumers: number): { jobs: JobsConfig; cleanup: () => Promise<void> } {
  const redisUrl = TEST_REDIS, pgUrl = TEST_POSTGRES;
  if (!redisUrl || !pgUrl) throw new Error('GRADLENS_TEST_API_MODE=distributed needs GRADLENS_TEST_REDIS and GRADLENS_TEST_POSTGRES');
  const file = jobs.db === ':memory:' ? undefined : jobs.db;
  const known = file === undefined ? undefined : schemaOfFile.get(file);
  const schema = known ?? testSchema();
  const prefix = `gradlens-test-${schema}`;
  const remove = async (): Promise<void> => {
    if (file !== undefined) schemaOfFile.delete(file);
    await dropSchema(pgUrl, schema);
    const redis = new Redis(redisUrl);
    try {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  };
  let removeOnClose = file === undefined;
  if (file !== undefined && known === undefined) {
    schemaOfFile.set(file, schema);
    try {
      onTestFinished(remove);
    } catch {
      removeOnClose = true; // made outside a test: no restart to wait for
    }
  }
  return {
    jobs: { ...jobs, store: pgUrl, storeSchema: schema, distributed: { ...jobs.distributed, queue: redisUrl, prefix, localWorkers: consumers } },
    cleanup: async () => { if (removeOnClose) await remove(); },
  };
}

/**
 * A configuration on this mode's deployment, for a test that builds its app itself (with its own runner):
 * unchanged when embedded. Its clean-up, where there is one, belongs in the app's onClose.
 */
export function onTestDeployment(config: Config, consumers = 1): { config: Config; cleanup?: () => Promise<void> } {
  if (TEST_API_MODE !== 'distributed') return { config };
  const scaled = distributedJobs(config.jobs, consumers);
  return { config: { ...config, jobs: scaled.jobs }, cleanup: scaled.cleanup };
}
