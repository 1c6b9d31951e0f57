// Prometheus metrics: a registry per app (tests build many), HTTP timings, job counters through the store, gauges.
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { JobRecord, JobStore } from '../jobs/store.js';
import { storeKind } from '../jobs/open-store.js';

export interface AppMetrics {
  readonly registry: Registry;
  /** A job reached a final status; seconds is its run time (omit when it never started). */
  observeJob(kind: string, status: string, seconds?: number): void;
  jobSubmitted(kind: string): void;
  jobStarted(kind: string): void;
  jobRequeued(): void;
  jobsRecovered(requeued: number, failed: number): void;
  authRefused(reason: string): void;
  rateLimited(bucket: string): void;
  shed(reason: string): void;
  /** Finished jobs deleted, by reason: age, count, bytes (retention) or request (DELETE). */
  jobsDeleted(reason: string, n: number): void;
  /** The store, reporting every job transition it persists (so the counters match what the API shows). */
  instrumentStore<S extends JobStore>(store: S): S;
  /** The exposition text of this app's metrics plus the process-wide ones. */
  render(): Promise<{ contentType: string; body: string }>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

// Process metrics (CPU, memory, GC, event-loop lag) describe the process, not an app; collecting them once
// avoids a GC observer and a delay histogram per app in test runs that build hundreds of apps.
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const JOB_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

function seconds(job: JobRecord): number | undefined {
  if (!job.startedAt || !job.finishedAt) return undefined;
  const s = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : undefined;
}

export function createMetrics(app: FastifyInstance): AppMetrics {
  const registry = new Registry();
  const registers = [registry];

  const httpRequests = new Counter({
    name: 'gradlens_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'], registers,
  });
  const httpDuration = new Histogram({
    name: 'gradlens_http_request_duration_seconds', help: 'Time from request to response, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'], buckets: DURATION_BUCKETS, registers,
  });
  const submitted = new Counter({ name: 'gradlens_jobs_submitted_total', help: 'Jobs admitted to the queue, by kind.', labelNames: ['kind'], registers });
  const started = new Counter({ name: 'gradlens_jobs_started_total', help: 'Job attempts started, by kind.', labelNames: ['kind'], registers });
  const finished = new Counter({
    name: 'gradlens_jobs_finished_total', help: 'Jobs that reached a final status (succeeded, failed, canceled), by kind and status.',
    labelNames: ['kind', 'status'], registers,
  });
  const jobDuration = new Histogram({
    name: 'gradlens_job_duration_seconds', help: 'Run time of finished jobs (start of the last attempt to the end), by kind and status.',
    labelNames: ['kind', 'status'], buckets: JOB_BUCKETS, registers,
  });
  const requeued = new Counter({ name: 'gradlens_jobs_requeued_total', help: 'Running jobs put back in the queue by a graceful shutdown.', registers });
  const recovered = new Counter({
    name: 'gradlens_jobs_recovered_total', help: 'Jobs found running at start (the previous process died): re-queued or failed as INTERRUPTED.',
    labelNames: ['outcome'], registers,
  });
  const refused = new Counter({ name: 'gradlens_auth_refused_total', help: 'Requests refused with 401, by reason (missing, invalid).', labelNames: ['reason'], registers });
  const limited = new Counter({ name: 'gradlens_rate_limited_total', help: 'Requests refused with 429, by bucket (all, create, not_found, auth: too many invalid API keys from one address).', labelNames: ['bucket'], registers });
  const deletedJobs = new Counter({
    name: 'gradlens_store_jobs_deleted_total', help: 'Finished jobs deleted from the store, by reason (age, count, bytes: retention; request: DELETE).',
    labelNames: ['reason'], registers,
  });
  const shedCount = new Counter({ name: 'gradlens_shed_requests_total', help: 'Requests refused with 503 by load shedding, by reason.', labelNames: ['reason'], registers });

  const hasJobs = (): boolean => app.hasDecorator('jobs') && (app as { jobs?: unknown }).jobs !== undefined && (app as { jobs?: unknown }).jobs !== null;
  new Gauge({
    name: 'gradlens_queue_depth', help: 'Jobs waiting for a worker.', registers,
    async collect() {
      // -1 while a distributed queue (Redis) does not answer: a scrape still succeeds and says so (gradlens_queue_up 0).
      if (hasJobs()) this.set(await app.jobs.queued().catch(() => -1));
    },
  });
  new Gauge({
    name: 'gradlens_queue_limit', help: 'Most jobs that may wait (GRADLENS_QUEUE_LIMIT); beyond it submissions get 503.', registers,
    collect() {
      this.set(app.config.jobs.queueLimit);
    },
  });
  new Gauge({
    name: 'gradlens_jobs_running', help: 'Jobs running now.', registers,
    collect() {
      if (hasJobs()) this.set(app.jobs.running);
    },
  });
  new Gauge({
    name: 'gradlens_workers', help: 'Compute slots (worker threads; 1 for the in-process runner).', registers,
    collect() {
      const runner = app.runner as { concurrency: number; workers?: number };
      this.set(runner.workers ?? runner.concurrency);
    },
  });
  new Gauge({
    name: 'gradlens_under_pressure', help: '1 while load shedding refuses requests (event-loop delay, heap or RSS over the limits).', registers,
    collect() {
      const f = (app as { isUnderPressure?: () => boolean }).isUnderPressure;
      this.set(f && f() ? 1 : 0);
    },
  });
  // One stats query per scrape feeds the three store gauges (collect runs per gauge; they share the answer).
  let storeStats: { at: number; value: Promise<Awaited<ReturnType<FastifyInstance['jobs']['storeStats']>> | undefined> } | undefined;
  const currentStoreStats = () => {
    if (!storeStats || Date.now() - storeStats.at > 500) {
      storeStats = { at: Date.now(), value: hasJobs() ? app.jobs.storeStats().catch(() => undefined) : Promise.resolve(undefined) };
    }
    return storeStats.value;
  };
  new Gauge({
    name: 'gradlens_store_bytes', help: 'Size of the job database on disk: the file plus its write-ahead log (GRADLENS_DB).', registers,
    async collect() {
      const stats = await currentStoreStats();
      if (stats) this.set(stats.fileBytes);
    },
  });
  new Gauge({
    name: 'gradlens_store_data_bytes', help: 'Bytes of job data (specs, results, errors as JSON) in the store: what GRADLENS_RETENTION_MAX_BYTES limits.', registers,
    async collect() {
      const stats = await currentStoreStats();
      if (stats) this.set(stats.dataBytes);
    },
  });
  new Gauge({
    name: 'gradlens_store_jobs', help: 'Jobs in the store, by status.', labelNames: ['status'], registers,
    async collect() {
      const stats = await currentStoreStats();
      if (stats) for (const [status, n] of Object.entries(stats.jobs)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'gradlens_store_writable', help: '0 since a write to the job database failed (full, read-only, I/O error) or its file was replaced, until a write succeeds; new work gets 503 meanwhile.', registers,
    async collect() {
      // The last write's verdict: a scrape writes nothing (readiness probes).
      if (hasJobs()) this.set((await app.jobs.storageStatus().catch(() => ({ ok: false }))).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gradlens_store_unsaved_outcomes', help: 'Finished jobs whose outcome the store refused, kept in memory and retried.', registers,
    collect() {
      if (hasJobs()) this.set(app.jobs.unsavedOutcomes);
    },
  });
  new Gauge({
    name: 'gradlens_store_info', help: 'Where this process stores jobs (value 1): sqlite (GRADLENS_DB) or postgres (GRADLENS_STORE).', labelNames: ['store'], registers,
  }).set({ store: storeKind(app.config.jobs) }, 1);
  new Gauge({
    name: 'gradlens_queue_up', help: '1 while the job queue answers (always for the in-process queue; the Redis of GRADLENS_QUEUE for bullmq).', registers,
    async collect() {
      if (hasJobs()) this.set((await app.jobs.queueHealth().catch(() => ({ ok: false }))).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gradlens_queue_info', help: 'How jobs reach workers (value 1): memory (in this process) or bullmq (GRADLENS_QUEUE, Redis).', labelNames: ['queue'], registers,
  }).set({ queue: app.config.jobs.distributed.queue ? 'bullmq' : 'memory' }, 1);
  const info = new Gauge({
    name: 'gradlens_backend_info', help: 'The compute backend and versions (value 1).',
    labelNames: ['backend', 'tfjs_backend', 'tfjs_version', 'gradlens_version', 'simd'], registers,
  });
  const env = app.environment();
  info.set({ backend: env.backend, tfjs_backend: env.tfjsBackend, tfjs_version: env.tfjsVersion, gradlens_version: env.gradlensVersion, simd: String((env as { simd?: unknown }).simd ?? '') }, 1);
  if (env.adapter) {
    // webgpu: which GPU computes, and whether it is a software (fallback) adapter.
    new Gauge({
      name: 'gradlens_webgpu_adapter_info', help: 'The WebGPU adapter the webgpu backend runs on (value 1).',
      labelNames: ['vendor', 'architecture', 'device', 'fallback'], registers,
    }).set({ vendor: env.adapter.vendor, architecture: env.adapter.architecture, device: env.adapter.device, fallback: String(env.adapter.isFallbackAdapter) }, 1);
  }

  const metrics: AppMetrics = {
    registry,
    observeJob(kind, status, s) {
      finished.inc({ kind, status });
      if (s !== undefined) jobDuration.observe({ kind, status }, s);
    },
    jobSubmitted: (kind) => submitted.inc({ kind }),
    jobStarted: (kind) => started.inc({ kind }),
    jobRequeued: () => requeued.inc(),
    jobsRecovered(r, f) {
      if (r) recovered.inc({ outcome: 'requeued' }, r);
      if (f) recovered.inc({ outcome: 'failed' }, f);
    },
    authRefused: (reason) => refused.inc({ reason }),
    rateLimited: (bucket) => limited.inc({ bucket }),
    shed: (reason) => shedCount.inc({ reason }),
    jobsDeleted(reason, n) {
      if (n > 0) deletedJobs.inc({ reason }, n);
    },
    instrumentStore<S extends JobStore>(store: S): S {
      // A Proxy rather than a wrapper class, so methods the store gains later pass through untouched.
      const wrap: Partial<JobStore> = {
        async create(job) {
          const record = await store.create(job);
          metrics.jobSubmitted(record.kind);
          return record;
        },
        async start(id) {
          const record = await store.start(id);
          if (record) metrics.jobStarted(record.kind);
          return record;
        },
        async finish(id, outcome) {
          const record = await store.finish(id, outcome);
          if (record) metrics.observeJob(record.kind, record.status, seconds(record));
          return record;
        },
        async requeue(id, refund) {
          await store.requeue(id, refund);
          metrics.jobRequeued();
        },
        async deleteFinished(id) {
          const deleted = await store.deleteFinished(id);
          if (deleted) metrics.jobsDeleted('request', 1);
          return deleted;
        },
        async prune(policy) {
          const result = await store.prune(policy);
          for (const [reason, n] of Object.entries(result.deleted)) metrics.jobsDeleted(reason, n);
          return result;
        },
        async recover(maxAttempts) {
          const out = await store.recover(maxAttempts);
          metrics.jobsRecovered(out.requeued.length, out.failed.length);
          return out;
        },
      };
      return new Proxy(store, {
        get(target, prop, receiver) {
          if (typeof prop === 'string' && prop in wrap) return wrap[prop as keyof JobStore];
          const value = Reflect.get(target, prop, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
    async render() {
      const merged = Registry.merge([processMetrics(), registry]);
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
  };

  app.addHook('onResponse', async (request, reply) => {
    // Route patterns, never raw URLs: label values stay bounded whatever paths clients send.
    const route = request.routeOptions.url ?? (request.is404 ? '(not found)' : '(unknown)');
    const labels = { method: request.method, route, status_code: String(reply.statusCode) };
    httpRequests.inc(labels);
    httpDuration.observe(labels, reply.elapsedTime / 1000);
  });
  return metrics;
}

export const metricsPlugin = fp(async (app) => {
  app.decorate('metrics', createMetrics(app));
}, { name: 'gradlens-metrics', fastify: '5.x' });
