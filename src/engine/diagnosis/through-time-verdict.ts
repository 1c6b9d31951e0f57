// The through-time view of every recurrent layer (issue 14): its step norms fitted, its memory horizon, its
// gates summarised, Pascanu et al.'s conditions, a verdict with reasons, and the cures that apply.
import { fitLogSlope } from '../common/stats.js';
import type { Thresholds } from '../spec/thresholds.js';
import type { StepReadings } from '../measure/through-time.js';
import { recurrentMatrixTheory, type RecurrentMatrixTheory } from '../theory/recurrent-theory.js';
import type { GraphParameters } from '../model/graph-params.js';
import type { RecurrentNode } from '../spec/recurrent-types.js';
import type { FlowVerdict } from '../../schemas/vocabulary.js';

export interface ThroughTimeCure {
  id: 'lstm' | 'gru' | 'orthogonal_recurrent' | 'identity_recurrent' | 'forget_bias' | 'gradient_clipping';
  description: string;
  /** The change to the layer as written in network.layers (merged into it), or null (gradient clipping: a training option). */
  change: Record<string, unknown> | null;
}

export interface ThroughTimeEntry {
  /** The layer's row in result.layers. */
  layer: number;
  path: string;
  kind: RecurrentNode['kind'];
  steps: number;
  norms: number[];
  /** norms[t] / norms[T − 1]. */
  relative: number[];
  /** ln(norm) against the steps back from the last step: slope < 0 shrinks into the past; factorPerStep = e^slope. */
  fit: { slope: number; factorPerStep: number; r2: number } | null;
  horizonThreshold: number;
  /** Steps back from the last step until the norm is below horizonThreshold × norms[T − 1]; null when it never is. */
  memoryHorizon: number | null;
  gates: { name: 'forget' | 'update'; mean: number[]; saturated: number[]; overallMean: number; overallSaturated: number } | null;
  recurrentMatrix: RecurrentMatrixTheory;
  verdict: FlowVerdict;
  reasons: string[];
  cures: ThroughTimeCure[];
}

const fmt = (v: number): string => (Number.isFinite(v) ? Number(v.toPrecision(3)).toString() : String(v));
const avg = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;

function curesFor(node: RecurrentNode, verdict: FlowVerdict): ThroughTimeCure[] {
  const cures: ThroughTimeCure[] = [];
  if (verdict === 'healthy') return cures;
  const rec = node.init.recurrent.name;
  if (verdict === 'vanishing' && node.kind === 'simple_rnn') {
    cures.push({ id: 'lstm', description: 'An LSTM instead of the simple RNN (Hochreiter & Schmidhuber 1997): its cell state carries the gradient along an additive path gated by f.', change: { kind: 'lstm', activation: undefined, forgetBias: 1 } });
    cures.push({ id: 'gru', description: 'A GRU instead of the simple RNN (Cho et al. 2014): h_t = z·h_{t−1} + (1 − z)·n passes the gradient through z.', change: { kind: 'gru', activation: undefined } });
  }
  if (rec !== 'orthogonal' || (node.init.recurrent.gain ?? 1) !== 1) {
    cures.push({ id: 'orthogonal_recurrent', description: 'An orthogonal recurrent kernel (gain 1, Saxe et al. 2014): every singular value of U is 1, so the linear part of the Jacobian neither shrinks nor grows the gradient.', change: { init: { recurrent: { name: 'orthogonal', gain: 1 } } } });
  }
  if (node.kind === 'simple_rnn' && node.cell.name === 'relu' && rec !== 'identity') {
    cures.push({ id: 'identity_recurrent', description: 'The IRNN (Le et al. 2015): relu with an identity recurrent kernel and zero biases copies h_{t−1} forward at initialisation.', change: { init: { recurrent: { name: 'identity', gain: 1 } } } });
  }
  if (node.kind === 'lstm' && node.forgetBias < 1 && verdict === 'vanishing') {
    cures.push({ id: 'forget_bias', description: 'A forget-gate bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015): f ≈ σ(1) = 0.73 instead of 0.5 keeps more of the cell state, and its gradient, per step.', change: { forgetBias: 1 } });
  }
  if (verdict === 'exploding') {
    cures.push({ id: 'gradient_clipping', description: 'For trainings: clip the gradient norm (Pascanu et al. 2013), which bounds each update when the gradient explodes.', change: null });
  }
  return cures;
}

/** Steps back from the last step until norms[t] < threshold × norms[T − 1] for the first time; null when never. */
export function memoryHorizonOf(norms: number[], threshold: number): number | null {
  const T = norms.length;
  const last = norms[T - 1]!;
  for (let k = 1; k < T; k++) if (norms[T - 1 - k]! / last < threshold) return k;
  return null;
}

/** The entry of one recurrent layer from its readings and its parameters. */
export function throughTimeEntry(r: StepReadings, params: GraphParameters, thresholds: Thresholds): ThroughTimeEntry {
  const { node, norms } = r;
  const T = norms.length;
  const last = norms[T - 1]!;
  const relative = norms.map((v) => v / last);
  const f = fitLogSlope(norms);
  const threshold = thresholds.vanishingRatio;
  const horizon = memoryHorizonOf(norms, threshold);
  const U = params.aux.find((a) => a.layer === r.row && a.name === 'recurrent_kernel')!.values;
  const m = recurrentMatrixTheory(node, U);
  const reasons: string[] = [];
  let verdict: FlowVerdict;
  const worst = Math.max(...relative);
  if (!norms.every(Number.isFinite) || worst > thresholds.explodingRatio) {
    verdict = 'exploding';
    reasons.push(norms.every(Number.isFinite)
      ? `‖∂L/∂h_t‖ grows into the past: ${fmt(worst)} × its value at the last step, above thresholds.explodingRatio ${thresholds.explodingRatio}.`
      : '‖∂L/∂h_t‖ is not finite at some step: the gradient overflowed through time.');
  } else if (horizon !== null) {
    verdict = 'vanishing';
    reasons.push(`vanishing after ~${horizon} steps: ‖∂L/∂h_t‖ falls below ${threshold} × its value at the last step ${horizon} steps back (step ${T - 1 - horizon} of ${T}); at step 0 it is ${fmt(relative[0]!)} ×.`);
  } else {
    verdict = 'healthy';
    reasons.push(`‖∂L/∂h_t‖ stays within [${threshold}, ${thresholds.explodingRatio}] × its last-step value over all ${T} steps (at step 0: ${fmt(relative[0]!)} ×).`);
  }
  if (f) reasons.push(`Fitted factor per step back in time ${fmt(f.factorPerLayer)} (r² ${fmt(f.r2)}).`);
  reasons.push(`${m.block}: σ₁ = ${fmt(m.largestSingularValue)}${m.spectralRadius !== null ? `, spectral radius ${fmt(m.spectralRadius)}` : ''}, 1/γ = ${fmt(m.bound)} (γ = sup|φ′| of ${node.cell.name}): ${m.vanishingSufficient ? 'σ₁ < 1/γ, Pascanu et al.\'s sufficient condition for vanishing' : m.explodingNecessary ? 'σ₁ > 1/γ, the necessary condition for exploding, holds' : 'σ₁ = 1/γ (within 1e-4), on the boundary between the two conditions'}${node.kind === 'simple_rnn' ? '' : ' (for the candidate block; a gated layer also has its additive path)'}.`);
  const gates = r.gate ? { ...r.gate, overallMean: avg(r.gate.mean), overallSaturated: avg(r.gate.saturated) } : null;
  if (gates) reasons.push(`${gates.name === 'forget' ? 'Forget' : 'Update'} gate mean ${fmt(gates.overallMean)} over the steps, saturated fraction ${fmt(gates.overallSaturated)}.`);
  return {
    layer: r.row, path: node.path, kind: node.kind, steps: T, norms, relative,
    fit: f ? { slope: f.slope, factorPerStep: f.factorPerLayer, r2: f.r2 } : null,
    horizonThreshold: threshold, memoryHorizon: horizon, gates, recurrentMatrix: m, verdict, reasons, cures: curesFor(node, verdict),
  };
}
