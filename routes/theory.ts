// GET /v1/theory: the mean-field recursion for identical layers, without building a network.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TheoryQuerySchema, TheoryResponseSchema } from '../src/schemas/diagnosis.js';
import { ErrorSchema } from '../src/schemas/result.js';
import { normalizeActivation } from '../src/engine/activations.js';
import { SpecError } from '../src/engine/errors.js';
import { criticalSigmaW2, uniformTheory } from '../src/engine/theory.js';

const theoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/theory', {
    schema: {
      summary: 'Mean-field prediction for a deep network of identical layers',
      description:
        'Iterates q^{l+1} = σ_w² E[φ(√q^l z)²] + σ_b² from q¹ = σ_w²·q0 + σ_b², finds the fixed point q*, χ₁ = σ_w² E[φ\'(√q z)²] (layer-local and at q*), the depth scale ξ = 1/|ln χ₁|, the phase and the predicted per-layer slope ½·ln χ₁ of the backprop signal, with Gaussian expectations by fine-grid quadrature. Cheap: no network is built. POST /v1/analyses reports the same theory for an actual network under result.theory.',
      tags: ['theory'],
      querystring: TheoryQuerySchema,
      response: { 200: TheoryResponseSchema, 400: ErrorSchema },
    },
  }, async (request) => {
    const q = request.query;
    const act = normalizeActivation(q.alpha !== undefined ? { name: q.activation, alpha: q.alpha } : q.activation, 'activation');
    if (act.name === 'softmax') throw new SpecError('activation', 'softmax is not elementwise: no mean-field recursion');
    const sigmaB2 = q.sigmaB2 ?? 0;
    const depth = q.depth ?? 20;
    const q0 = q.q0 ?? 1;
    const t = uniformTheory(act, q.sigmaW2, sigmaB2, depth, q0);
    return {
      activation: act.alpha !== undefined ? `${act.name}(${act.alpha})` : act.name,
      sigmaW2: q.sigmaW2,
      sigmaB2,
      q0,
      depth,
      qStar: t.fixedPoint.qStar !== null && Number.isFinite(t.fixedPoint.qStar) ? t.fixedPoint.qStar : null,
      fixedPointKind: t.fixedPoint.kind,
      note: t.fixedPoint.note,
      chi1: t.chi1,
      phase: t.phase,
      depthScale: Number.isFinite(t.depthScale) ? t.depthScale : null,
      predictedSlope: t.predictedSlope,
      factorPerLayer: Math.sqrt(t.chi1),
      criticalSigmaW2: criticalSigmaW2(act, sigmaB2, q0),
      layers: t.layers.map((l, i) => ({ layer: l.layer, q: Number.isFinite(l.q) ? l.q : null, chi1: l.chi1, predictedBackpropRelative: t.predictedBackpropRelative[i]! })),
    };
  });
};

export default theoryRoutes;
