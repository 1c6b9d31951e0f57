// The HTTP face of a `gradlens worker` (GRADLENS_WORKER_PORT): /health, /ready and /metrics only, the same routes
// and schemas as an API process, so that an orchestrator probes a worker as it probes the API and Prometheus
// scrapes both alike. No API routes, no dashboard, no API keys (these paths are open on the API too).
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { BackendInfo } from './engine/index.js';
import type { JobManager } from './jobs/manager.js';
import type { Runner } from './jobs/runner.js';
import type { JobStore } from './jobs/store-types.js';
import { metricsPlugin } from './plugins/metrics.js';
import healthRoutes from '../routes/health.js';
import opsRoutes from '../routes/ops.js';
import { environmentOf } from './environment.js';

export interface WorkerOps {
  /** The store with the job counters of /metrics around it: what the worker's JobManager must use. */
  instrument(store: JobStore): JobStore;
  /** Hands the worker's JobManager to the routes (they answer "not started yet" before). */
  attach(manager: JobManager): void;
  /** Listens on HOST:GRADLENS_WORKER_PORT; the address. */
  listen(): Promise<string>;
  close(): Promise<void>;
  readonly app: FastifyInstance;
}

export async function workerOps(o: { config: Config; backend: BackendInfo; runner: Runner }): Promise<WorkerOps> {
  const app = Fastify({ logger: false });
  // The serialiser the API uses: the schemas describe, they do not filter.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const environment = environmentOf(o.backend);
  app.decorate('config', o.config);
  app.decorate('backend', o.backend);
  app.decorate('runner', o.runner);
  app.decorate('environment', () => environment);
  app.decorate('jobs', null as unknown as JobManager);
  await app.register(metricsPlugin);
  await app.register(healthRoutes);
  await app.register(opsRoutes, { role: 'worker' });
  await app.ready();
  return {
    app,
    instrument: (store) => app.metrics.instrumentStore(store),
    attach(manager) {
      app.jobs = manager;
    },
    listen: () => app.listen({ port: o.config.jobs.distributed.workerPort ?? 0, host: o.config.host }),
    close: () => app.close(),
  };
}
