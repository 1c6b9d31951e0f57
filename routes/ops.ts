// GET /ready (readiness: backend, database, queue, load, shutdown; a registry others add checks to) and GET /metrics.
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import { enumOf, READINESS_STATUSES } from '../src/schemas/vocabulary.js';
import { StorageUnavailableError } from '../src/jobs/errors.js';

export type ReadinessResult = boolean | string | { ok: boolean; detail?: string };
export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;

export interface Readiness {
  /** Adds a named check; GET /ready answers 503 while any check is not ok. A string result is a failure reason. */
  add(name: string, check: ReadinessCheck): void;
  run(): Promise<{ ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> }>;
}

declare module 'fastify' {
  interface FastifyInstance {
    readiness: Readiness;
  }
}

const CHECK_TIMEOUT_MS = 2000;
const PROBE_ID = '00000000-0000-0000-0000-000000000000';

function normalise(result: ReadinessResult): { ok: boolean; detail?: string } {
  if (typeof result === 'boolean') return { ok: result };
  if (typeof result === 'string') return { ok: false, detail: result };
  return result.detail === undefined ? { ok: result.ok } : { ok: result.ok, detail: result.detail };
}

function createReadiness(app: FastifyInstance): Readiness {
  const checks = new Map<string, ReadinessCheck>();
  return {
    add(name, check) {
      checks.set(name, check);
    },
    async run() {
      const entries = await Promise.all([...checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const result = await Promise.race([
            Promise.resolve().then(check),
            new Promise<ReadinessResult>((resolve) => {
              timer = setTimeout(() => resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS);
            }),
          ]);
          return [name, normalise(result)] as const;
        } catch (err) {
          // The reason goes to the log, not to an unauthenticated endpoint.
          app.log.warn({ err, check: name }, 'readiness check failed');
          return [name, { ok: false, detail: 'the check failed (see the server log)' }] as const;
        } finally {
          clearTimeout(timer);
        }
      }));
      return { ready: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries) };
    },
  };
}

const CheckSchema = Type.Object({
  ok: Type.Boolean({ description: 'Whether this check passes.' }),
  detail: Type.Optional(Type.String({ description: 'What was found, or why it fails.' })),
}, { additionalProperties: false, title: 'ReadinessCheck', description: 'One readiness check.' });

const ReadySchema = Type.Object({
  status: enumOf(READINESS_STATUSES, 'ready (200) or not_ready (503).'),
  checks: Type.Record(Type.String(), CheckSchema, { description: 'Each check by name: backend, database, queue, load, shutdown, and any a component added.' }),
}, { additionalProperties: false, title: 'Readiness', description: 'Readiness and its checks.' });

export interface OpsOptions {
  /**
   * `worker`: the ops face of a `gradlens worker` (src/worker-ops.ts), whose readiness does not depend on how full
   * the queue is (a full queue is a reason to send an API process no traffic, not to restart a worker).
   */
  role?: 'api' | 'worker';
}

const opsRoutes = fp<OpsOptions>(async (app, opts) => {
  const role = opts.role ?? 'api';
  const readiness = createReadiness(app);
  app.decorate('readiness', readiness);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  const hasJobs = (): boolean => app.hasDecorator('jobs') && (app as { jobs?: unknown }).jobs != null;

  readiness.add('shutdown', () => (closing ? 'the server is shutting down' : true));
  readiness.add('backend', () => {
    const runner = app.runner as { workers?: number };
    if (runner.workers === 0) return 'no compute worker is running';
    return { ok: true, detail: app.backend.name };
  });
  readiness.add('database', async () => {
    if (!hasJobs()) return 'the job store is not open yet';
    // A real read through the store: it throws once the database is closed or unreadable. A networked store that
    // cannot be reached says so in the probe below (PostgreSQL down), rather than as a failed check.
    try {
      await app.jobs.get(PROBE_ID);
    } catch (err) {
      if (!(err instanceof StorageUnavailableError)) throw err;
    }
    // And a real write: a full disk, a read-only file or a file deleted under the server only shows in writes.
    const { ok, detail } = await app.jobs.storageHealth();
    return { ok, detail };
  });
  readiness.add('queue', async () => {
    if (!hasJobs()) return 'the job queue is not started yet';
    const reach = await app.jobs.queueHealth();
    if (!reach.ok || role === 'worker') return reach;
    const queued = await app.jobs.queued();
    const limit = app.config.jobs.queueLimit;
    return { ok: queued < limit, detail: `${queued} of ${limit} waiting${queued >= limit ? ': full' : ''}` };
  });
  readiness.add('load', () => {
    const f = (app as { isUnderPressure?: () => boolean }).isUnderPressure;
    return f && f() ? 'shedding load (event-loop delay, heap or RSS over the limits)' : true;
  });

  app.get('/ready', {
    schema: {
      summary: 'Readiness',
      operationId: 'getReadiness',
      description:
        'Whether this instance should get traffic: compute backend initialised with a live worker, job database open and taking a probe write (not full, read-only, or deleted/replaced under the server), queue not full, not shedding load, not shutting down. 503 with Retry-After otherwise; /health is liveness only. Never needs an API key and is neither rate-limited nor shed.',
      tags: ['operations'],
      response: { 200: { ...ReadySchema, description: 'Ready: every check passes.' }, 503: { ...ReadySchema, description: 'Not ready: a check fails (see Retry-After).' } },
    },
  }, async (_request, reply) => {
    const { ready, checks } = await readiness.run();
    if (!ready) reply.code(503).header('retry-after', '5');
    return { status: ready ? 'ready' as const : 'not_ready' as const, checks };
  });

  app.get('/metrics', {
    schema: {
      summary: 'Prometheus metrics',
      operationId: 'getMetrics',
      description:
        'Prometheus text format: gradlens_http_requests_total and gradlens_http_request_duration_seconds (by method, route pattern, status), gradlens_jobs_submitted_total/started_total (by kind), gradlens_jobs_finished_total and gradlens_job_duration_seconds (by kind and status), gradlens_jobs_requeued_total, gradlens_jobs_recovered_total, gradlens_queue_depth, gradlens_queue_limit, gradlens_jobs_running, gradlens_workers, gradlens_under_pressure, gradlens_store_bytes (database file + write-ahead log), gradlens_store_jobs (stored jobs by status), gradlens_store_data_bytes (job data retention counts), gradlens_store_writable, gradlens_store_unsaved_outcomes, gradlens_store_jobs_deleted_total (by reason: age, count, bytes, request), gradlens_auth_refused_total, gradlens_rate_limited_total, gradlens_shed_requests_total, gradlens_backend_info, gradlens_store_info and gradlens_queue_info (which store and queue this process uses), gradlens_queue_up, and the Node.js process metrics. Open by default (GRADLENS_OPEN_PATHS).',
      tags: ['operations'],
      produces: ['text/plain'],
      response: { 200: { description: 'Prometheus exposition format 0.0.4.', content: { 'text/plain': { schema: Type.String() } } } },
    },
  }, async (_request, reply) => {
    const { contentType, body } = await app.metrics.render();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}, { name: 'gradlens-ops', fastify: '5.x', dependencies: ['gradlens-metrics'] });

export default opsRoutes;
