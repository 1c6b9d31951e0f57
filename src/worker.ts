// `gradlens worker`: a compute process with no HTTP server. Takes jobs from BullMQ (GRADLENS_QUEUE), runs them on its
// own pool of compute threads (src/jobs/pool.ts, GRADLENS_WORKER_CONCURRENCY of them) and writes the outcomes to the
// shared store (GRADLENS_STORE), where it also reads the uploaded models that model analyses name. SIGTERM/SIGINT: stops taking jobs, lets the running ones finish within
// GRADLENS_SHUTDOWN_GRACE_MS, then puts what still runs back in the queue; kill -9 leaves it to BullMQ's stalled check.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { loadConfig, ConfigError, type Config } from './config.js';
import { BackendUnavailableError } from './engine/index.js';
import { WorkerPool } from './jobs/pool.js';
import { JobManager } from './jobs/manager.js';
import { jobHandlers } from './jobs/kinds.js';
import { openModelStore, openStore, storeKind } from './jobs/open-store.js';
import type { ModelStore } from './jobs/model-store.js';
import { consumer, distributed } from './jobs/distributed/index.js';
import { redactRedisUrl } from './jobs/distributed/redis.js';
import { StorageUnavailableError, StoreOpenError } from './jobs/errors.js';
import { environmentOf } from './environment.js';
import { workerOps } from './worker-ops.js';

function configOrExit(): Config {
  try {
    const config = loadConfig();
    if (!config.jobs.distributed.queue) throw new ConfigError('gradlens worker needs GRADLENS_QUEUE=redis://… (the queue it takes jobs from)');
    if (!config.jobs.store) throw new ConfigError('gradlens worker needs GRADLENS_STORE=postgres://… (the store the API processes read results from)');
    return config;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`gradlens worker: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

export async function runWorker(): Promise<void> {
  const config = configOrExit();
  const d = config.jobs.distributed;
  const log = pino({ level: config.logLevel, base: { pid: process.pid, role: 'worker' } });
  let store;
  let models: ModelStore;
  try {
    store = await openStore(config.jobs);
    // The uploaded models, in the same PostgreSQL schema: a model analysis reads its file from there.
    models = await openModelStore(config.jobs, store);
  } catch (err) {
    if (err instanceof StorageUnavailableError || err instanceof StoreOpenError) {
      console.error(`gradlens worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  store.onHealthChange((status) => {
    if (status.ok) log.warn('the job store takes writes again');
    else log.error({ problem: status.problem, cause: status.cause }, `job store: ${status.detail}`);
  });
  const pool = new WorkerPool({ size: d.workerConcurrency, backend: config.backend, backendOptions: config.backendOptions, limits: config.limits, log, shardMinFlops: config.jobs.shardMinFlops });
  let backend;
  try {
    backend = await pool.ready();
  } catch (err) {
    await pool.close();
    await models.close();
    await store.close();
    if (err instanceof BackendUnavailableError) {
      console.error(`gradlens worker: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  // GRADLENS_WORKER_PORT: /health, /ready and /metrics of this worker; its store counts jobs for /metrics.
  const ops = d.workerPort !== undefined ? await workerOps({ config, backend, runner: pool }) : undefined;
  const jobStore = ops ? ops.instrument(store) : store;
  const parts = distributed(config, 'worker', jobStore);
  const environment = (): Record<string, unknown> => environmentOf(backend);
  const manager = new JobManager({
    store: jobStore, runner: pool, handlers: jobHandlers(config, models), environment, timeoutMs: config.jobs.timeoutMs,
    maxAttempts: config.jobs.maxAttempts, newId: randomUUID, log, ...parts.manager,
  });
  await manager.start();
  ops?.attach(manager);
  const bull = consumer({ config, manager, store: jobStore, queue: parts.queue, concurrency: pool.concurrency, log });
  const opsAddress = ops ? await ops.listen() : undefined;
  log.info({
    queue: 'bullmq', redis: redactRedisUrl(d.queue!), prefix: d.prefix, store: storeKind(config.jobs), schema: config.jobs.storeSchema,
    concurrency: pool.concurrency, backend: backend.name, ...(opsAddress ? { ops: opsAddress } : {}),
  }, 'gradlens worker ready');

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker stopping: no new jobs; running ones finish or go back to the queue');
    // Running jobs get the grace period to finish; what is still running then is returned (runClaimed 'returned').
    const finished = bull.close();
    const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownGraceMs).unref());
    if ((await Promise.race([finished, grace])) === 'timeout') await manager.close();
    await finished;
    await manager.close();
    await ops?.close();
    await pool.close();
    await parts.close();
    await models.close();
    await store.close();
    log.info('worker stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
