// buildApp(config): the Fastify application — plugins, error mapping and routes — used by the server and tests.
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import { initBackend, type BackendInfo } from './engine/backend.js';
import { SpecError, LimitError } from './engine/errors.js';
import { InProcessRunner, type Runner } from './jobs/runner.js';
import { GRADLENS_VERSION } from './version.js';
import type { Environment } from './schemas/result.js';
import healthRoutes from '../routes/health.js';
import dashboardRoutes from '../routes/dashboard.js';
import analysisRoutes from '../routes/analyses.js';
import theoryRoutes from '../routes/theory.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    backend: BackendInfo;
    runner: Runner;
    environment(): Environment;
  }
}

export interface BuildOptions {
  /** Replace the compute runner (tests, worker pools). */
  runner?: Runner;
  logger?: boolean;
}

/** Maps errors to Fastify's { statusCode, code, error, message } and hides 5xx details. */
function errorBody(err: FastifyError | Error): { status: number; body: Record<string, unknown> } {
  if (err instanceof SpecError) {
    return { status: 400, body: { statusCode: 400, code: err.code, error: 'Bad Request', message: err.message, field: err.field } };
  }
  if (err instanceof LimitError) {
    return {
      status: 422,
      body: { statusCode: 422, code: err.code, error: 'Unprocessable Entity', message: err.message, limit: err.limit, value: err.value, max: err.max },
    };
  }
  const fe = err as FastifyError;
  const status = fe.statusCode ?? 500;
  if (status < 500) {
    const reason = status === 413 ? 'Payload Too Large' : status === 415 ? 'Unsupported Media Type' : status === 404 ? 'Not Found' : 'Bad Request';
    return { status, body: { statusCode: status, code: fe.code ?? 'BAD_REQUEST', error: reason, message: fe.message } };
  }
  return { status, body: { statusCode: status, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' } };
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger === false ? false : {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
    },
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Responses are serialised with JSON.stringify: result objects are large and nested, and a
  // schema-driven serialiser would silently drop any field the schema does not list.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const backend = await initBackend(config.backend);
  app.decorate('config', config);
  app.decorate('backend', backend);
  app.decorate('runner', options.runner ?? new InProcessRunner(config.limits));
  app.decorate('environment', (): Environment => ({
    backend: backend.name,
    tfjsBackend: backend.tfjsBackend,
    tfjsVersion: backend.tfjsVersion,
    gradlensVersion: GRADLENS_VERSION,
    ...(backend.simd !== undefined ? { simd: backend.simd } : {}),
  }));

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = errorBody(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    return reply.status(status).send(body);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gradlens',
        version: GRADLENS_VERSION,
        description:
          'How gradients flow through deep networks: builds a dense network from a JSON spec with TensorFlow.js, runs real batches forward and backward with autodiff, and returns per-layer gradient statistics.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes);
  await app.register(dashboardRoutes);
  await app.register(analysisRoutes, { prefix: '/v1' });
  await app.register(theoryRoutes, { prefix: '/v1' });

  app.addHook('onClose', async () => {
    await app.runner.close();
  });
  return app;
}
