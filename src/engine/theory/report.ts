// The mean-field report of GET /v1/theory for identical layers: no network is built, but the quadrature is not free.
import { normalizeActivation } from '../model/activations.js';
import { SpecError } from '../common/errors.js';
import { criticalSigmaW2, uniformTheory } from './mean-field.js';
import type { TheoryQuery } from '../../schemas/diagnosis.js';

export function theoryReport(q: TheoryQuery) {
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
}

export type TheoryReport = ReturnType<typeof theoryReport>;
