// GET /health: liveness, with the backend and versions that compute every result.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthSchema } from '../src/schemas/result.js';
import { storeKind } from '../src/jobs/open-store.js';

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: {
      summary: 'Liveness',
      description: 'Answers while the process runs; names the compute backend (tensorflow, webgpu, native, wasm or cpu; on webgpu its adapter) and the tfjs version.',
      operationId: 'getHealth',
      tags: ['operations'],
      response: { 200: HealthSchema },
    },
  }, async () => ({
    status: 'ok' as const,
    environment: app.environment(),
    uptimeSeconds: process.uptime(),
    jobs: {
      workers: app.runner.concurrency, running: app.jobs.running, queued: await app.jobs.queued(), queueLimit: app.config.jobs.queueLimit,
      store: storeKind(app.config.jobs), queue: app.config.jobs.distributed.queue ? 'bullmq' as const : 'memory' as const,
    },
  }));
};

export default healthRoutes;
