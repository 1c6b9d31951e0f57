// GET /v1/theory: the mean-field recursion for identical layers, without building a network (computed by the runner, off the HTTP thread).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TheoryQuerySchema, TheoryResponseSchema } from '../src/schemas/diagnosis.js';
import { ErrorSchema } from '../src/schemas/result.js';

const theoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/theory', {
    schema: {
      summary: 'Mean-field prediction for a deep network of identical layers',
      description:
        'Iterates q^{l+1} = σ_w² E[φ(√q^l z)²] + σ_b² from q¹ = σ_w²·q0 + σ_b², finds the fixed point q*, χ₁ = σ_w² E[φ\'(√q z)²] (layer-local and at q*), the depth scale ξ = 1/|ln χ₁|, the phase and the predicted per-layer slope ½·ln χ₁ of the backprop signal, with Gaussian expectations by fine-grid quadrature. Cheap: no network is built. POST /v1/analyses reports the same theory for an actual network under result.theory.',
      operationId: 'getTheory',
      tags: ['theory'],
      querystring: TheoryQuerySchema,
      response: { 200: TheoryResponseSchema, 400: ErrorSchema },
    },
  }, async (request) => app.runner.theory(request.query));
};

export default theoryRoutes;
