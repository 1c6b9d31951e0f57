// Mean-field theory for a layer graph where it holds: a plain chain of stride-1 "same" convolutions (and dense
// layers) with variance-scaling weights is the fully connected recursion with fan_in = kh·kw·c_in (Xiao et al.
// 2018); pooling, normalisation and shortcuts get "no prediction, because …".
import type { NormalizedSpec } from '../spec/normalize.js';
import type { GraphNode } from '../spec/graph-types.js';
import type { AnalysisResult, InputMoments } from '../measure/measure.js';
import { initializerMoments } from '../model/initializers.js';
import { fitLogSlope } from '../common/stats.js';
import { chi1, depthScale, derivativeMeanSquare, fixedPoint, meanSquare, phaseOf, scalarActivation } from './mean-field.js';
import { describeWeightVariance, type LayerTheory, type NetworkTheory } from './network-theory.js';
import { rowActivations } from '../measure/graph-analysis.js';

const WHY: Record<string, string> = {
  max_pool: 'max pooling is not a linear map of Gaussian fields: the recursion does not model it',
  avg_pool: 'average pooling mixes positions and changes the per-entry variance by the spatial correlations, which the recursion does not track',
  global_avg_pool: 'global average pooling mixes positions and changes the per-entry variance by the spatial correlations, which the recursion does not track',
  batch_norm: 'batch normalisation has a mean-field theory of its own, in which gradients explode with depth at initialisation in plain networks (Yang et al. 2019); the recursion here does not model it',
  layer_norm: 'layer normalisation rescales every example, which the recursion does not model',
  residual: 'residual shortcuts: the chain recursion does not apply (each block multiplies ‖δ‖² by about 1 + α²·χ_branch, not by χ₁)',
  simple_rnn: 'a recurrent layer reuses its weights at every step, so its steps are not independent layers; see result.throughTime for its spectral conditions (Pascanu et al. 2013)',
  lstm: 'a recurrent layer reuses its weights at every step, so its steps are not independent layers; see result.throughTime',
  gru: 'a recurrent layer reuses its weights at every step, so its steps are not independent layers; see result.throughTime',
  embedding: 'an embedding reads token ids, not Gaussian fields',
  attention: 'self-attention mixes the steps through a softmax of products of the input with itself, which the recursion does not model',
  positional_encoding: 'a positional encoding adds a fixed signal the recursion does not track',
};

function whyNot(nodes: GraphNode[]): string | null {
  for (const node of nodes) {
    if (WHY[node.kind]) return `no prediction, because ${WHY[node.kind]} (${node.path})`;
    if (node.kind === 'conv2d' && (node.stride !== 1 || node.padding !== 'same' || node.dilation !== 1)) {
      return `no prediction, because ${node.path} is not a stride-1 "same" convolution: the recursion is for convolutions that keep the spatial size`;
    }
  }
  return null;
}

function notApplicable(reason: string, base: Pick<NetworkTheory, 'weightVariance' | 'inputMeanSquare'>): NetworkTheory {
  return { applicable: false, reason, assumptions: [], ...base, hidden: null, layers: [], slopes: null };
}

/** The prediction for a layer graph next to its measured rows, or why there is none. */
export function graphTheory(spec: NormalizedSpec, input: InputMoments, result: AnalysisResult): NetworkTheory {
  const graph = spec.network.graph!;
  const base = { weightVariance: describeWeightVariance(spec.network.init.weights), inputMeanSquare: input.meanSquare };
  const why = whyNot(graph.layers);
  if (why) return notApplicable(why, base);
  const rows = graph.rows;
  const L = rows.length;
  const names = rowActivations(graph);
  // The head's activation belongs to the loss (its δ is the reference): the recursion starts below it.
  const acts = rows.map((_, i) => scalarActivation(i === L - 1 ? { name: 'linear' } : names[i]!));
  const sigmaW2: number[] = [];
  const sigmaB2: number[] = [];
  for (const r of rows) {
    const m = initializerMoments(r.node.init.weights, r.fanIn, r.fanOut);
    if (!m || m.mean !== 0 || m.variance === 0) return notApplicable(`no prediction, because ${r.node.path}'s ${r.node.init.weights.name} weights are not independent zero-mean random weights with a variance formula`, base);
    sigmaW2.push(r.fanIn * m.variance);
    const b = r.node.useBias ? initializerMoments(r.node.init.bias, r.node.init.bias.name === 'pytorch_default' ? r.fanIn : r.fanOut, r.fanOut) : { mean: 0, variance: 0 };
    if (!b || b.mean !== 0) return notApplicable(`no prediction, because ${r.node.path}'s biases are not zero-mean`, base);
    sigmaB2.push(b.variance);
  }
  if (acts.some((a) => a === null)) return notApplicable('no prediction, because a hidden activation is not elementwise', base);
  // Forward q, backward ‖δ‖² relative to the head's: a stride-1 "same" convolution maps ‖∂/∂input‖² = σ_w²·‖δ‖² as a dense layer does.
  const q: number[] = [];
  let m = input.meanSquare;
  rows.forEach((_, l) => {
    q.push(sigmaW2[l]! * m + sigmaB2[l]!);
    m = meanSquare(acts[l]!, q[l]!);
  });
  const delta2 = new Array<number>(L).fill(1);
  for (let l = L - 2; l >= 0; l--) delta2[l] = derivativeMeanSquare(acts[l]!, q[l]!) * sigmaW2[l + 1]! * delta2[l + 1]!;
  const measured = result.layers.map((s) => s.backpropNorm);
  const layers: LayerTheory[] = rows.map((r, l) => {
    const predicted = Math.sqrt(delta2[l]!);
    const rel = measured[l]! / measured[L - 1]!;
    return {
      index: l, sigmaW2: sigmaW2[l]!, sigmaW2Nominal: sigmaW2[l]!, sigmaW2Sample: (r.fanIn * result.layers[l]!.weightNorm ** 2) / r.weightCount,
      sigmaB2: sigmaB2[l]!, q: q[l]!, qMeasured: result.layers[l]!.preActivationRms ** 2,
      chi1: l < L - 1 ? sigmaW2[l + 1]! * derivativeMeanSquare(acts[l]!, q[l]!) : null,
      predictedBackpropRelative: predicted, measuredBackpropRelative: rel,
      log10Difference: predicted > 0 && rel > 0 && Number.isFinite(rel) ? Math.log10(rel / predicted) : null,
    };
  });
  const inner = rows.slice(0, -1).map((_, l) => l).filter((l) => l > 0);
  let hidden: NetworkTheory['hidden'] = null;
  const a0 = acts[inner[0] ?? 0]!;
  if (inner.length > 0 && inner.every((l) => acts[l]!.spec.name === a0.spec.name && sigmaW2[l] === sigmaW2[inner[0]!] && sigmaB2[l] === sigmaB2[inner[0]!])) {
    const sW = sigmaW2[inner[0]!]!, sB = sigmaB2[inner[0]!]!;
    const fp = fixedPoint(a0, sW, sB, q[inner[0]!]!);
    const c = chi1(a0, sW, fp.qStar);
    hidden = {
      activation: a0.spec.name, sigmaW2: sW, sigmaB2: sB, qStar: fp.qStar !== null && Number.isFinite(fp.qStar) ? fp.qStar : null,
      fixedPointKind: fp.kind, note: fp.note, chi1: c, phase: phaseOf(c), depthScale: Number.isFinite(depthScale(c)) ? depthScale(c) : null, predictedSlope: 0.5 * Math.log(c),
    };
  }
  const half = inner.slice(Math.floor(inner.length / 2));
  const fm = half.length >= 2 ? fitLogSlope(measured, half) : null;
  const fp = half.length >= 2 ? fitLogSlope(layers.map((t) => t.predictedBackpropRelative), half) : null;
  return {
    applicable: true,
    reason: null,
    assumptions: [
      'Xiao et al. 2018: a convolution with independent zero-mean weights is the fully connected recursion with fan_in = kh·kw·c_in (σ_w² = kh·kw·c_in·Var(W)), in the limit of many channels',
      'zero "same" padding: positions near the border receive fewer terms, so finite images lose a little more signal per layer than predicted (about the fraction of border taps)',
      'infinite width (channels); Gaussian pre-activations over examples and positions',
    ],
    ...base,
    hidden,
    layers,
    slopes: fm && fp ? { layers: half, measured: fm.slope, predicted: fp.slope, difference: fm.slope - fp.slope, withinTolerance: Math.abs(2 * (fm.slope - fp.slope)) <= 0.1 * Math.abs(2 * fp.slope) + 0.02 } : null,
  };
}
