// Verdicts (vanishing, exploding, healthy, zero_by_design) with reasons in plain words, and per-layer flags.
import type { AnalysisResult, LayerStats } from '../measure/measure.js';
import type { Thresholds } from '../spec/thresholds.js';
import type { StructuralZeros } from './zero-by-design.js';
import type { NetworkTheory } from '../theory/network-theory.js';
import { fitLogSlope, type LogSlopeFit } from '../common/stats.js';

export type Verdict = 'vanishing' | 'exploding' | 'healthy' | 'zero_by_design';
export type FlowVerdict = Exclude<Verdict, 'zero_by_design'>;
export type LayerFlag = 'onset_vanishing' | 'onset_exploding' | 'dead' | 'saturated' | 'zero_by_design' | 'non_finite';

export interface FlowMetrics {
  /** Layers measured: every layer whose backprop signal is not zero by design. */
  layers: number[];
  /** backpropNorm of the first measured layer / that of the output layer. */
  backpropRatio: number;
  log10BackpropRatio: number;
  /** weightGradNorm of the first measured layer / that of the output layer. */
  weightGradRatio: number;
  fit: LogSlopeFit | null;
}

export interface Diagnosis {
  verdict: Verdict;
  reasons: string[];
  /** The verdict on the layers that are not zero by design (equals verdict unless that is zero_by_design); null when fewer than two such layers. */
  flowVerdict: FlowVerdict | null;
  onsetLayer: number | null;
  zeroByDesign: { layers: number[]; causes: string[] } | null;
  flags: LayerFlag[][];
  metrics: FlowMetrics | null;
}

/** A number in few digits: 0.24, 3.1e-27, 1.2e+5. */
export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return Number(x.toPrecision(digits)).toString();
  return x.toExponential(digits - 1);
}

/** [1,2,3,5,7,8] → "1–3, 5, 7–8". */
export function layerList(layers: number[]): string {
  const sorted = [...layers].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

const plural = (n: number, one: string, many: string): string => (n === 1 ? one : many);

/** A value as a reason says it: the number, or in words what a non-finite one is (never "NaN of …"). */
export function valueWords(x: number): string {
  if (Number.isNaN(x)) return 'not a number (NaN)';
  if (!Number.isFinite(x)) return `infinite (${x > 0 ? 'Infinity' : '-Infinity'})`;
  return fmt(x);
}

/** Which of a layer's gradients are not finite, in words: "the weight gradient is not a number (NaN)". */
function nonFiniteWords(s: LayerStats): string {
  const parts: string[] = [];
  if (!Number.isFinite(s.backpropNorm)) parts.push(`the backprop signal is ${valueWords(s.backpropNorm)}`);
  if (!Number.isFinite(s.weightGradNorm)) parts.push(`the weight gradient is ${valueWords(s.weightGradNorm)}`);
  if (s.biasGradNorm !== null && !Number.isFinite(s.biasGradNorm)) parts.push(`the bias gradient is ${valueWords(s.biasGradNorm)}`);
  return parts.join(' and ');
}

/**
 * Walking from the output toward the input, the first layer whose backprop signal has fallen below
 * (risen above) the largest (smallest) signal nearer the output by more than `factor`.
 */
export function onsetLayer(norms: number[], layers: number[], direction: 'vanishing' | 'exploding', factor: number): number | null {
  const order = [...layers].sort((a, b) => b - a);
  let extreme = norms[order[0]!]!;
  for (const l of order.slice(1)) {
    const v = norms[l]!;
    if (direction === 'vanishing' ? v < extreme / factor : v > extreme * factor) return l;
    extreme = direction === 'vanishing' ? Math.max(extreme, v) : Math.min(extreme, v);
  }
  return null;
}

function flowMetrics(layers: LayerStats[], measured: number[]): FlowMetrics | null {
  if (measured.length < 2) return null;
  const first = layers[measured[0]!]!;
  const last = layers[layers.length - 1]!;
  const backpropRatio = first.backpropNorm / last.backpropNorm;
  return {
    layers: measured,
    backpropRatio,
    log10BackpropRatio: Math.log10(backpropRatio),
    weightGradRatio: first.weightGradNorm / last.weightGradNorm,
    fit: fitLogSlope(layers.map((s) => s.backpropNorm), measured),
  };
}

/** The flow verdict from the metrics, with the sentence that justifies it. */
function flowVerdictOf(
  layers: LayerStats[], m: FlowMetrics, t: Thresholds,
): { verdict: FlowVerdict; why: string; onset: number | null; nonFinite?: boolean } {
  const norms = layers.map((s) => s.backpropNorm);
  const grads = layers.map((s) => s.weightGradNorm);
  const first = m.layers[0]!;
  const nonFinite = m.layers.filter((l) => !Number.isFinite(norms[l]!) || !Number.isFinite(grads[l]!));
  if (nonFinite.length > 0) {
    return {
      verdict: 'exploding',
      why: `${plural(nonFinite.length, 'layer', 'layers')} ${layerList(nonFinite)} ${plural(nonFinite.length, 'has', 'have')} non-finite gradients (NaN or Infinity)`,
      onset: Math.max(...nonFinite),
      nonFinite: true,
    };
  }
  const ratioWords = `the first layer${first > 0 ? ` measured (layer ${first})` : ''} receives ${fmt(m.backpropRatio)} of the output layer's backprop signal`;
  const ordersWords = (r: number): string => `${fmt(Math.abs(Math.log10(r)), 3)} orders of magnitude`;
  if (m.backpropRatio === 0) {
    const zeros = m.layers.filter((l) => norms[l] === 0);
    return {
      verdict: 'vanishing',
      why: `${plural(zeros.length, 'layer', 'layers')} ${layerList(zeros)} receive exactly 0 backprop signal although nothing in the spec forces it (underflow, or units that are all off)`,
      onset: onsetLayer(norms, m.layers, 'vanishing', t.onsetFactor) ?? Math.max(...zeros),
    };
  }
  if (m.backpropRatio < t.vanishingRatio) {
    return {
      verdict: 'vanishing',
      why: `${ratioWords}: ${ordersWords(m.backpropRatio)} lost, below the ${fmt(t.vanishingRatio)} threshold`,
      onset: onsetLayer(norms, m.layers, 'vanishing', t.onsetFactor),
    };
  }
  if (m.backpropRatio > t.explodingRatio) {
    return {
      verdict: 'exploding',
      why: `${ratioWords}: ${ordersWords(m.backpropRatio)} gained, above the ${fmt(t.explodingRatio)} threshold`,
      onset: onsetLayer(norms, m.layers, 'exploding', t.onsetFactor),
    };
  }
  const fit = m.fit;
  if (fit && fit.layers.length >= 3 && fit.r2 >= t.minR2) {
    if (fit.factorPerLayer < 1 / t.perLayerFactor) {
      return {
        verdict: 'vanishing',
        why: `the backprop signal shrinks ×${fmt(fit.factorPerLayer)} per layer (fit r² ${fmt(fit.r2)}), faster than the 1/${fmt(t.perLayerFactor)} per-layer threshold, although over this depth ${ratioWords}`,
        onset: onsetLayer(norms, m.layers, 'vanishing', t.onsetFactor),
      };
    }
    if (fit.factorPerLayer > t.perLayerFactor) {
      return {
        verdict: 'exploding',
        why: `the backprop signal grows ×${fmt(fit.factorPerLayer)} per layer (fit r² ${fmt(fit.r2)}), faster than the ×${fmt(t.perLayerFactor)} per-layer threshold, although over this depth ${ratioWords}`,
        onset: onsetLayer(norms, m.layers, 'exploding', t.onsetFactor),
      };
    }
  }
  const rms = m.layers.map((l) => layers[l]!.weightGradRms);
  if (rms.every((r) => r < t.minGradRms)) {
    return {
      verdict: 'vanishing',
      why: `no layer's weight gradient reaches the absolute backstop of ${fmt(t.minGradRms)} RMS (largest ${fmt(Math.max(...rms))}): the gradient is tiny everywhere, the output layer included`,
      onset: null,
    };
  }
  return {
    verdict: 'healthy',
    why: `${ratioWords}, inside the band [${fmt(t.vanishingRatio)}, ${fmt(t.explodingRatio)}]`,
    onset: null,
  };
}

function slopeSentence(m: FlowMetrics): string | null {
  const fit = m.fit;
  if (!fit) return null;
  const dir = fit.slope < 0 ? 'shrinks' : 'grows';
  const weights = Number.isFinite(m.weightGradRatio)
    ? `the weight gradient of the first layer measured is ${fmt(m.weightGradRatio)} of the output layer's`
    : `the ratio of the first measured layer's weight gradient to the output layer's is ${valueWords(m.weightGradRatio)}, as one of them is not finite`;
  return `Per layer toward the input the backprop signal ${dir} ×${fmt(fit.factorPerLayer, 3)} on average (log-slope ${fmt(fit.slope, 3)} per layer, fit r² ${fmt(fit.r2)} over layers ${layerList(fit.layers)}); ${weights}.`;
}

function theorySentences(theory: NetworkTheory | null, verdict: FlowVerdict, t: Thresholds, depth: number): string[] {
  if (!theory) return [];
  if (!theory.applicable) return [`Mean-field theory: ${theory.reason}.`];
  const out: string[] = [];
  const h = theory.hidden;
  if (h) {
    const scale = h.depthScale !== null ? `, depth scale ξ = ${fmt(h.depthScale)} layers` : '';
    out.push(`Mean-field theory (${h.activation}, σ_w² = ${fmt(h.sigmaW2, 3)}, σ_b² = ${fmt(h.sigmaB2, 3)}): χ₁ = ${fmt(h.chi1, 3)}, ${h.phase} phase${scale}; it predicts ×${fmt(Math.exp(h.predictedSlope), 3)} per layer.`);
    if (verdict === 'healthy' && h.phase !== 'critical' && Number.isFinite(h.predictedSlope) && h.predictedSlope !== 0) {
      const limit = h.predictedSlope < 0 ? Math.log(1 / t.vanishingRatio) : Math.log(t.explodingRatio);
      const at = Math.ceil(limit / Math.abs(h.predictedSlope)) + 1;
      if (at > depth) out.push(`At this depth that stays inside the band, but in the ${h.phase} phase the signal would cross ×${fmt(h.predictedSlope < 0 ? t.vanishingRatio : t.explodingRatio)} at a depth of about ${at} layers.`);
    }
  }
  if (theory.slopes) {
    const s = theory.slopes;
    out.push(`Over the output-side half (layers ${layerList(s.layers)}) the measured log-slope is ${fmt(s.measured, 3)} per layer against ${fmt(s.predicted, 3)} predicted (${s.withinTolerance ? 'within' : 'outside'} the tolerance |Δ| ≤ 0.1·|predicted| + 0.01).`);
  }
  return out;
}

function flagsOf(layers: LayerStats[], t: Thresholds, zero: StructuralZeros, onset: number | null, verdict: FlowVerdict | null): LayerFlag[][] {
  return layers.map((s, l) => {
    const flags: LayerFlag[] = [];
    if (zero.layers[l]!.weightGradZero) flags.push('zero_by_design');
    if (onset === l && verdict === 'vanishing') flags.push('onset_vanishing');
    if (onset === l && verdict === 'exploding') flags.push('onset_exploding');
    // Units whose pre-activation is 0 by construction (Fixup's zeroed layers) are off by design, not dead.
    if (s.deadFraction !== null && s.deadFraction > t.deadFraction && !zero.layers[l]!.preActivationZero) flags.push('dead');
    if (s.saturatedFraction !== null && s.saturatedFraction > t.saturatedFraction) flags.push('saturated');
    if (![s.weightGradNorm, s.backpropNorm, s.biasGradNorm ?? 0].every(Number.isFinite)) flags.push('non_finite');
    return flags;
  });
}

function flagSentences(flags: LayerFlag[][], layers: LayerStats[], t: Thresholds): string[] {
  const out: string[] = [];
  const dead = flags.flatMap((f, l) => (f.includes('dead') ? [l] : []));
  const saturated = flags.flatMap((f, l) => (f.includes('saturated') ? [l] : []));
  if (dead.length > 0) {
    const worst = Math.max(...dead.map((l) => layers[l]!.deadFraction!));
    out.push(`Dead: in ${plural(dead.length, 'layer', 'layers')} ${layerList(dead)} more than ${fmt(t.deadFraction * 100)}% of the units pass no gradient for any example of the batch (up to ${fmt(worst * 100)}%).`);
  }
  if (saturated.length > 0) {
    const worst = Math.max(...saturated.map((l) => layers[l]!.saturatedFraction!));
    out.push(`Saturated: in ${plural(saturated.length, 'layer', 'layers')} ${layerList(saturated)} more than ${fmt(t.saturatedFraction * 100)}% of the entries sit where |φ'| < ${fmt(t.saturationDerivative)} × its peak (up to ${fmt(worst * 100)}%).`);
  }
  return out;
}

/** Group zero-by-design layers by cause: "layers 1–8: block 0's branch is multiplied by …". */
function zeroSentences(zero: StructuralZeros, result: AnalysisResult): { layers: number[]; causes: string[]; sentences: string[] } {
  const byCause = new Map<string, number[]>();
  for (const z of zero.layers) if (z.weightGradZero) byCause.set(z.cause!, [...(byCause.get(z.cause!) ?? []), z.index]);
  const layers = zero.layers.filter((z) => z.weightGradZero).map((z) => z.index);
  const causes = [...byCause.keys()];
  const sentences: string[] = [];
  const grouped = [...byCause.entries()];
  const shown = grouped.slice(0, 4).map(([cause, ls]) => `${plural(ls.length, 'layer', 'layers')} ${layerList(ls)}: ${cause}`);
  if (grouped.length > 4) shown.push(`and ${grouped.length - 4} more causes of the same kind`);
  sentences.push(`At step 0 the weight gradients of ${plural(layers.length, 'layer', 'layers')} ${layerList(layers)} are exactly 0 by construction, not by vanishing — ${shown.join('; ')}.`);
  const gates = result.layers.flatMap((s) => (s.auxParameters ?? []).filter((a) => a.name === 'gate' || a.name === 'fixup_scale').map((a) => a.gradNorm));
  const zeroGates = zero.aux.filter((a) => (a.name === 'gate' || a.name === 'fixup_scale'));
  if (gates.length > 0 && zeroGates.some((a) => !a.gradZero)) {
    sentences.push(`The gates themselves receive gradient (|∂Loss/∂α| from ${fmt(Math.min(...gates))} to ${fmt(Math.max(...gates))}), so the branches open after the first update.`);
  }
  if (causes.some((c) => c.includes('init.weights'))) {
    sentences.push('Weights initialised to a constant keep every unit of a layer identical: gradient descent cannot break that symmetry. Unless this is intended, use a random initialiser.');
  }
  if (causes.some((c) => c.includes('Fixup'))) {
    sentences.push('With Fixup, after one update the output layer and the zero-initialised last branch layers receive gradient, and the inner branch layers from the second update on: measure after at least 2 training steps to see the flow.');
  }
  const inconsistent = layers.filter((l) => result.layers[l]!.weightGradNorm !== 0);
  if (inconsistent.length > 0) {
    sentences.push(`Unexpected: ${plural(inconsistent.length, 'layer', 'layers')} ${layerList(inconsistent)} should be exactly 0 by construction but measured non-zero (${inconsistent.map((l) => fmt(result.layers[l]!.weightGradNorm)).join(', ')}).`);
  }
  return { layers, causes, sentences };
}

/** Diagnoses an analysis: the verdict, its reasons, the onset layer and per-layer flags. */
export function diagnose(result: AnalysisResult, zero: StructuralZeros, theory: NetworkTheory | null, t: Thresholds, offPath: ReadonlySet<number> = new Set()): Diagnosis {
  const layers = result.layers;
  // offPath: a layer graph's projection-shortcut rows, not on the main path's chain (left out of ratio and fit).
  const measured = layers.map((_, l) => l).filter((l) => !zero.layers[l]!.backpropZero && !zero.layers[l]!.weightGradZero && !offPath.has(l));
  // The output layer always has a backprop signal; the flow needs it and at least one more layer.
  const metrics = flowMetrics(layers, measured);
  const flow = metrics ? flowVerdictOf(layers, metrics, t) : null;
  const flags = flagsOf(layers, t, zero, flow?.onset ?? null, flow?.verdict ?? null);

  const reasons: string[] = [];
  let zeroByDesign: Diagnosis['zeroByDesign'] = null;
  let verdict: Verdict;
  if (zero.any) {
    const z = zeroSentences(zero, result);
    zeroByDesign = { layers: z.layers, causes: z.causes };
    verdict = 'zero_by_design';
    reasons.push(...z.sentences);
    if (flow && metrics) {
      reasons.push(`The other layers (${layerList(metrics.layers)}) are ${flow.verdict}: ${flow.why}.`);
    } else {
      reasons.push('Fewer than two layers carry a gradient at step 0, so there is no flow to judge yet.');
    }
  } else if (flow && metrics) {
    verdict = flow.verdict;
    reasons.push(`${flow.verdict}: ${flow.why}.`);
    if (flow.onset !== null && flow.nonFinite) {
      const which = flow.onset === layers.length - 1 ? ' (the output layer)' : '';
      reasons.push(`Onset at layer ${flow.onset}${which}: walking from the output toward the input, the first layer whose gradients are not finite: ${nonFiniteWords(layers[flow.onset]!)}.`);
    } else if (flow.onset !== null) {
      const rel = layers[flow.onset]!.backpropNorm / layers[layers.length - 1]!.backpropNorm;
      reasons.push(`Onset at layer ${flow.onset}: walking from the output toward the input, the first layer whose backprop signal is ${flow.verdict === 'vanishing' ? 'below' : 'above'} the ${flow.verdict === 'vanishing' ? 'largest' : 'smallest'} level nearer the output by more than ×${fmt(t.onsetFactor)} (there ${valueWords(rel)} of the output layer's).`);
    }
  } else {
    verdict = 'healthy';
    reasons.push('healthy: a single layer has no depth-wise flow to judge.');
  }
  if (metrics) {
    const s = slopeSentence(metrics);
    if (s) reasons.push(s);
  }
  if (flow) reasons.push(...theorySentences(theory, flow.verdict, t, layers.length));
  reasons.push(...flagSentences(flags, layers, t));
  return { verdict, reasons, flowVerdict: flow?.verdict ?? null, onsetLayer: flow?.onset ?? null, zeroByDesign, flags, metrics };
}
