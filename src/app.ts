// buildApp(config): the Fastify application — plugins, error mapping and routes — used by the server and tests.
import Fastify, { LogController, type FastifyInstance, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Config } from './config.js';
import { type BackendInfo, SpecError, LimitError, capEcho, MAX_ECHOED_FIELD } from './engine/index.js';
import { InProcessRunner, type Runner } from './jobs/runner.js';
import { WorkerPool } from './jobs/pool.js';
import type { JobStore } from './jobs/store.js';
import { openModelStore, openStore } from './jobs/open-store.js';
import type { ModelStore } from './jobs/model-store.js';
import { MemoryJobQueue, type JobQueue } from './jobs/queue.js';
import { JobManager } from './jobs/manager.js';
import { jobHandlers } from './jobs/kinds.js';
import { QueueFullError, QueueUnavailableError, ShuttingDownError, StorageUnavailableError } from './jobs/errors.js';
import { RetentionTask } from './jobs/retention.js';
import { consumer, distributed, type BullConsumer } from './jobs/distributed/index.js';
import { GRADLENS_VERSION } from './version.js';
import type { Environment } from './schemas/result.js';
import { environmentOf } from './environment.js';
import { authPlugin, LOG_REDACT_PATHS, serializeRequest } from './plugins/auth.js';
import { openApiPlugin } from './plugins/openapi.js';
import { schemaErrorFormatter } from './plugins/validation.js';
import { frameworkErrors, protectionPlugin, requestId, trustProxyOption } from './plugins/protection.js';
import { metricsPlugin } from './plugins/metrics.js';
import { strictQueryPlugin } from './plugins/query.js';
import { clientErrorHandler } from './plugins/security-headers.js';
import healthRoutes from '../routes/health.js';
import opsRoutes from '../routes/ops.js';
import dashboardRoutes from '../routes/dashboard.js';
import analysisRoutes from '../routes/analyses.js';
import jobRoutes from '../routes/jobs.js';
import trainingRoutes from '../routes/trainings.js';
import sweepRoutes from '../routes/sweeps.js';
import theoryRoutes from '../routes/theory.js';
import modelRoutes from '../routes/models.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    backend: BackendInfo;
    runner: Runner;
    jobs: JobManager;
    /** Uploaded models (POST /v1/models), in their own table of the job database (SQLite file or PostgreSQL schema). */
    models: ModelStore;
    environment(): Environment;
  }
}

export interface BuildOptions {
  /**
   * Replace the compute runner. Default: a WorkerPool of config.jobs.workers threads, or the
   * InProcessRunner when that is 0 (fast unit tests).
   */
  runner?: Runner;
  /** Replace the job store (default: SQLite at config.jobs.db) or the queue (default: in memory). */
  store?: JobStore;
  queue?: JobQueue;
  /** Keep-alive interval of event streams (tests). */
  sseKeepAliveMs?: number;
  logger?: boolean;
  /** Where the JSON log lines go (default: stdout); tests read them. */
  logStream?: { write(line: string): void };
}

/**
 * Fastify logs every request twice at info level ("incoming request", then "request completed"): under load
 * that was 80 MB of log in 20 s. One line per request, when it is answered, with the request, the status and
 * the time (an error keeps Fastify's error-level line).
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/** Maps errors to Fastify's { statusCode, code, error, message } and hides 5xx details. */
function errorBody(err: FastifyError | Error): { status: number; body: Record<string, unknown> } {
  if (err instanceof StorageUnavailableError) {
    return {
      status: 503,
      body: {
        statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message, problem: err.problem, retryAfter: err.retryAfterSeconds,
        ...(err.jobId ? { jobId: err.jobId } : {}),
      },
    };
  }
  if (err instanceof QueueFullError || err instanceof ShuttingDownError || err instanceof QueueUnavailableError) {
    const retryAfter = err instanceof QueueFullError || err instanceof QueueUnavailableError ? err.retryAfterSeconds : 5;
    return { status: 503, body: { statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message, retryAfter } };
  }
  if (err instanceof SpecError) {
    return { status: 400, body: { statusCode: 400, code: err.code, error: 'Bad Request', message: capEcho(err.message), field: capEcho(err.field, MAX_ECHOED_FIELD) } };
  }
  if (err instanceof LimitError) {
    return {
      status: 422,
      body: {
        statusCode: 422, code: err.code, error: 'Unprocessable Entity', message: capEcho(err.message), limit: err.limit,
        ...(err.variable ? { variable: err.variable } : {}), value: err.value, max: err.max,
      },
    };
  }
  const fe = err as FastifyError & { field?: unknown };
  const status = fe.statusCode ?? 500;
  if (status < 500) {
    const reason = STATUS_CODES[status] ?? 'Bad Request';
    const field = typeof fe.field === 'string' ? { field: capEcho(fe.field, MAX_ECHOED_FIELD) } : {};
    return { status, body: { statusCode: status, code: fe.code ?? 'BAD_REQUEST', error: reason, message: capEcho(fe.message), ...field } };
  }
  return { status, body: { statusCode: status, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' } };
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger === false ? false : {
      level: config.logLevel,
      redact: LOG_REDACT_PATHS,
      // The default one, except that ?access_token= (an API key) is redacted from the logged url.
      serializers: { req: serializeRequest },
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    logController: new OneLinePerRequest(),
    clientErrorHandler,
    bodyLimit: config.bodyLimitBytes,
    // x-request-id is read by genReqId, which keeps a client's id only when it is short and plain.
    requestIdHeader: false,
    genReqId: requestId,
    frameworkErrors,
    // A client gets this long to send its whole request (slow-loris); waiting for a result is not part of it.
    requestTimeout: 60_000,
    trustProxy: trustProxyOption(config.security.trustProxy),
    // No type coercion: a body's number must be a JSON number ("0x10" built 16 layers, true built 1), and
    // Ajv's coercion let "Infinity" through integer checks without their bounds. Query strings are text:
    // their numbers are converted strictly by strictQueryPlugin, before validation. (Fastify's 'array'
    // coercion also made Ajv accept a one-element array for a scalar inside anyOf: the fuzzer's
    // activation [["relu"]] reached the engine and gave a 500.)
    // verbose: errors carry the offending value, so an unknown name can be quoted back (schemaErrorFormatter).
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false, verbose: true } },
    schemaErrorFormatter,
  }).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(strictQueryPlugin);

  // Responses are serialised with JSON.stringify: result objects are large and nested, and a
  // schema-driven serialiser would silently drop any field the schema does not list.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  // Opened first: a bad GRADLENS_DB fails the start before any worker thread exists.
  const store = options.store ?? await openStore(config.jobs);
  let models: ModelStore;
  try {
    models = await openModelStore(config.jobs, store);
  } catch (err) {
    await store.close();
    throw err;
  }
  // An outage is logged when it starts and when it ends, not once per refused request.
  const unwatchStore = store.onHealthChange((status) => {
    if (status.ok) app.log.warn({ db: config.jobs.db }, 'the job database takes writes again: new work is accepted');
    else app.log.error({ db: config.jobs.db, problem: status.problem, cause: status.cause }, `job database: ${status.detail}; new work is refused until it is fixed`);
  });
  // With a pool the main thread never loads a backend (tfjs-node may be loaded by one thread only):
  // the backend reported in /health and in results is the one the first worker initialised.
  const runner = options.runner ?? (config.jobs.workers > 0
    ? new WorkerPool({ size: config.jobs.workers, backend: config.backend, backendOptions: config.backendOptions, limits: config.limits, log: app.log, shardMinFlops: config.jobs.shardMinFlops })
    : new InProcessRunner(config.limits, config.backend, config.backendOptions));
  let backend: BackendInfo;
  try {
    backend = await runner.ready();
  } catch (err) {
    await runner.close();
    await models.close();
    await store.close();
    throw err;
  }
  app.decorate('config', config);
  app.decorate('backend', backend);
  app.decorate('runner', runner);
  app.decorate('models', models);
  const environment = environmentOf(backend);
  app.decorate('environment', (): Environment => environment);

  // Registered before every route so their onRoute hooks see them all. Hooks run in this order: metrics time
  // every response, then load shedding, headers, CORS and the body-size check, then API keys; the rate limits
  // are route hooks and run after the key is known, so they count per key.
  await app.register(metricsPlugin);
  await app.register(protectionPlugin, {
    security: config.security,
    bodyLimitBytes: config.bodyLimitBytes,
    computeOffMainThread: runner instanceof WorkerPool,
    onShed: (reason) => app.metrics.shed(reason),
    onRateLimited: (bucket) => app.metrics.rateLimited(bucket),
  });
  await app.register(authPlugin, {
    security: config.security,
    onRefused: (reason) => app.metrics.authRefused(reason),
    onFailuresLimited: () => app.metrics.rateLimited('auth'),
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = errorBody(err);
    if (status === 503 && typeof body.retryAfter === 'number') reply.header('retry-after', String(body.retryAfter));
    if (status >= 500) request.log.error({ err }, 'request failed');
    return reply.status(status).send(body);
  });

  await app.register(openApiPlugin, { version: GRADLENS_VERSION });
  await app.register(healthRoutes);
  await app.register(opsRoutes);
  await app.register(dashboardRoutes);
  const instrumentedStore = app.metrics.instrumentStore(store);
  // GRADLENS_QUEUE=redis://…: jobs go through BullMQ to whichever process computes (src/jobs/distributed).
  const scaled = config.jobs.distributed.queue && !options.queue ? distributed(config, 'api', instrumentedStore) : undefined;
  const jobs = new JobManager({
    store: instrumentedStore,
    queue: options.queue ?? new MemoryJobQueue(config.jobs.queueLimit),
    ...(scaled ? scaled.manager : {}),
    runner,
    handlers: jobHandlers(config, models),
    environment: () => app.environment(),
    timeoutMs: config.jobs.timeoutMs,
    maxAttempts: config.jobs.maxAttempts,
    newId: randomUUID,
    log: app.log,
  });
  app.decorate('jobs', jobs);

  await app.register(analysisRoutes, { prefix: '/v1' });
  await app.register(trainingRoutes, { prefix: '/v1' });
  await app.register(sweepRoutes, { prefix: '/v1' });
  await app.register(theoryRoutes, { prefix: '/v1' });
  await app.register(modelRoutes, { prefix: '/v1' });
  await app.register(jobRoutes, { prefix: '/v1', ...(options.sseKeepAliveMs ? { keepAliveMs: options.sseKeepAliveMs } : {}) });

  // Before the server stops accepting: running jobs go back to the queue for the next start, and
  // requests waiting on a job are answered. Workers and the database close after the last request.
  const retention = new RetentionTask({ store: instrumentedStore, models, policy: config.jobs.retention, intervalMs: config.jobs.retention.intervalMs, log: app.log });

  let local: BullConsumer | undefined;
  app.addHook('preClose', async () => {
    await retention.stop();
    // Running jobs go back to the store as queued and to Redis (runClaimed 'returned'), then the consumer stops.
    await jobs.close();
    await local?.close();
  });
  app.addHook('onClose', async () => {
    await app.runner.close();
    await scaled?.close();
    unwatchStore();
    // The models first: on PostgreSQL they may share the job store's connections, which store.close() ends.
    await models.close();
    await store.close();
  });
  await jobs.start();
  if (scaled && config.jobs.distributed.localWorkers > 0) {
    local = consumer({ config, manager: jobs, store: instrumentedStore, queue: scaled.queue, concurrency: config.jobs.distributed.localWorkers, log: app.log });
  }
  retention.start();
  return app;
}
