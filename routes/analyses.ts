// POST /v1/analyses: one synchronous gradient-flow analysis of a network spec.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { AnalysisSpecSchema } from '../src/schemas/spec.js';
import { AnalysisResponseSchema, ErrorSchema } from '../src/schemas/result.js';
import { TEXTBOOK_CHAIN_EXAMPLE } from '../src/schemas/examples.js';

const analysisRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/analyses', {
    schema: {
      summary: 'Analyse gradient flow',
      description:
        'Builds the network, draws its weights from the seed, runs data.batches real minibatches forward and backward with tfjs autodiff and returns per-layer gradient statistics, ordered from the input side to the output layer. Limits (depth, width, batch, estimated FLOPs) are checked before any compute.',
      tags: ['analyses'],
      body: { ...AnalysisSpecSchema, examples: [TEXTBOOK_CHAIN_EXAMPLE] },
      response: { 200: AnalysisResponseSchema, 400: ErrorSchema, 422: ErrorSchema },
    },
  }, async (request) => {
    const output = await app.runner.analyze(request.body);
    return {
      id: randomUUID(),
      kind: 'analysis' as const,
      status: 'succeeded' as const,
      ...output,
      environment: app.environment(),
    };
  });
};

export default analysisRoutes;
