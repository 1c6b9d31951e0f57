// GET /health: liveness, with the backend and versions that compute every result.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HealthSchema } from '../src/schemas/result.js';
import { storeKind } from '../src/jobs/open-store.js';

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: {
      summary: 'Liveness',
      description: 'Answers while the process runs; names the compute backend (tensorflow, webgpu, native, wasm or cpu; on webgpu its adapter) and the tfjs version, and which job store and queue the process uses and whether each answers.',
      operationId: 'getHealth',
      tags: ['operations'],
      response: { 200: HealthSchema },
    },
  }, async () => {
    // Liveness answers through an outage of Redis or PostgreSQL, and says which one is out.
    const queue = await app.jobs.queueHealth().catch(() => ({ ok: false }));
    const queued = queue.ok ? await app.jobs.queued().catch(() => 0) : 0;
    const storage = await app.jobs.storageStatus().catch(() => ({ ok: false }));
    return {
      status: 'ok' as const,
      environment: app.environment(),
      uptimeSeconds: process.uptime(),
      jobs: {
        workers: app.runner.concurrency, running: app.jobs.running, queued, queueLimit: app.config.jobs.queueLimit,
        store: storeKind(app.config.jobs), storeOk: storage.ok,
        queue: app.config.jobs.distributed.queue ? 'bullmq' as const : 'memory' as const, queueOk: queue.ok,
      },
    };
  });
};

export default healthRoutes;
