// Mean-field predictions for an actual analysed network, layer by layer, next to what was measured.
import type { NormalizedSpec } from '../spec/normalize.js';
import { initializerMoments, scalingOf, TRUNCATION_STD, type InitializerSpec } from '../model/initializers.js';
import { isZeroInitializer } from '../diagnosis/zero-by-design.js';
import { planLayers, type NetworkParameters } from '../model/network.js';
import type { AnalysisResult, InputMoments } from '../measure/measure.js';
import { fitLogSlope } from '../common/stats.js';
import {
  chi1, depthScale, derivativeMeanSquare, fixedPoint, meanOf, meanSquare, phaseOf, scalarActivation,
  type FixedPoint, type Phase, type ScalarActivation,
} from './mean-field.js';

export interface LayerTheory {
  index: number;
  /** σ_w² = fan_in · Var(W) the prediction uses: the variance the initialiser really draws with. */
  sigmaW2: number;
  /** fan_in × the variance the initialiser's name promises (differs from sigmaW2 for uncorrected truncation). */
  sigmaW2Nominal: number;
  /** fan_in × mean(W²) of the weights actually drawn. */
  sigmaW2Sample: number;
  sigmaB2: number;
  /** Predicted q^l = E[h²] of the pre-activation. */
  q: number;
  /** Measured mean of h² (preActivationRms²). */
  qMeasured: number;
  /** Layer-local χ₁ = σ_w²(l+1)·E[φ_l'(√q^l z)²]: ‖δ^l‖²/‖δ^{l+1}‖² in a plain chain; null for the output layer. */
  chi1: number | null;
  /** Predicted backpropNorm relative to the output layer's. */
  predictedBackpropRelative: number;
  /** Measured backpropNorm relative to the output layer's. */
  measuredBackpropRelative: number;
  /** log10(measured / predicted); null where either is 0 or not finite. */
  log10Difference: number | null;
}

export interface HiddenFixedPoint {
  activation: string;
  sigmaW2: number;
  sigmaB2: number;
  /** q*; null when every q is a fixed point (scale_free) or q grows without bound (see fixedPointKind). */
  qStar: number | null;
  fixedPointKind: FixedPoint['kind'];
  note: string;
  chi1: number;
  phase: Phase;
  /** 1/|ln χ₁|; null at χ₁ = 1, where there is no exponential scale. */
  depthScale: number | null;
  /** ½ ln χ₁: predicted d ln‖δ‖ per layer toward the input, fitLogSlope's convention. */
  predictedSlope: number;
}

export interface SlopeComparison {
  /** Layers fitted: the hidden layers of the half nearest the output, where q^l has settled. */
  layers: number[];
  measured: number;
  predicted: number;
  /** measured − predicted (per layer, ln‖δ‖ scale). */
  difference: number;
  /** |2·difference| ≤ 0.1·|2·predicted| + 0.02: the tolerance of the reference on the ln‖δ‖² scale. */
  withinTolerance: boolean;
}

export interface NetworkTheory {
  /** Whether a prediction was made; when false, `reason` says why. */
  applicable: boolean;
  reason: string | null;
  /** What the prediction assumes, in words. */
  assumptions: string[];
  /** Where σ_w² comes from: the initialiser, and any truncation or scaling it involves. */
  weightVariance: string;
  /** Mean square of the input entries over the analysed batches (q⁰ before the first weights). */
  inputMeanSquare: number;
  hidden: HiddenFixedPoint | null;
  layers: LayerTheory[];
  slopes: SlopeComparison | null;
}

/** Words for how an initialiser's variance comes about, naming tfjs-style uncorrected truncation. */
export function describeWeightVariance(init: InitializerSpec): string {
  const s = scalingOf(init);
  const factor = (TRUNCATION_STD ** 2).toFixed(4);
  if (s) {
    const base = `${init.name}: Var(W) = ${fmtNum(s.scale)}/${s.mode}`;
    switch (s.distribution) {
      case 'truncated_normal_uncorrected':
        return `${base} nominally, drawn from a normal truncated at ±2σ WITHOUT the variance correction (as tfjs-layers' heNormal, glorotNormal and leCunNormal do): the realised variance is ${factor} × nominal, and the prediction uses the realised σ_w²`;
      case 'truncated_normal':
        return `${base}, drawn from a normal truncated at ±2σ with Keras' correction (std / ${TRUNCATION_STD.toFixed(4)}): the realised variance is on target`;
      case 'normal':
        return `${base}, a plain normal: the realised variance is exactly the nominal one`;
      case 'uniform':
        return `${base}, uniform U[±√(3·Var)]: exact variance`;
    }
  }
  switch (init.name) {
    case 'truncated_normal':
      return `truncated_normal(stddev ${fmtNum(init.stddev!)}): redraws beyond ±2 stddev without correction, so Var(W) = ${factor} × stddev²; the prediction uses that realised value`;
    case 'random_normal':
      return `random_normal(stddev ${fmtNum(init.stddev!)}): Var(W) = stddev², independent of the fan, so σ_w² = fan_in·stddev² changes with the width`;
    case 'random_uniform':
      return `random_uniform[${fmtNum(init.min!)}, ${fmtNum(init.max!)}]: Var(W) = (max − min)²/12, independent of the fan`;
    case 'orthogonal':
      return `orthogonal(gain ${fmtNum(init.gain!)}): every entry has variance gain²/max(fan_in, fan_out); the rows or columns are orthonormal, not independent`;
    default:
      return `${init.name}: deterministic weights`;
  }
}

function fmtNum(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

function notApplicable(reason: string, base: Pick<NetworkTheory, 'weightVariance' | 'inputMeanSquare'>): NetworkTheory {
  return { applicable: false, reason, assumptions: [], ...base, hidden: null, layers: [], slopes: null };
}

/** The reasons mean-field theory says nothing about this spec, or null when it applies. */
function whyNoPrediction(spec: NormalizedSpec): string | null {
  const net = spec.network;
  if (net.normalization !== 'none') {
    return `no prediction: the network has ${net.normalization} normalisation, which the mean-field recursion here does not model${net.normalization === 'batch' ? ' (batch normalisation has a mean-field theory of its own, in which gradients explode with depth at initialisation: Yang et al. 2019)' : ''}`;
  }
  if (net.residual.variant === 'fixup') {
    return 'no prediction: Fixup zero-initialises the output layer and the last layer of every branch, so every gradient below the output layer is exactly 0 at step 0 (see summary.zeroByDesign); there is nothing to propagate';
  }
  const w = net.init.weights;
  if (w.name === 'identity') return 'no prediction: identity weights are deterministic; the recursion assumes independent zero-mean random weights';
  if (isZeroInitializer(w)) return 'no prediction: all weights are initialised to zero, so every gradient below the output layer is exactly 0';
  const sizes = [net.inputUnits, ...net.widths, net.outputUnits];
  for (let l = 0; l < net.depth; l++) {
    const m = initializerMoments(w, sizes[l]!, sizes[l + 1]!);
    if (!m) return `no prediction: ${w.name} weights have no variance formula`;
    if (m.variance === 0) return `no prediction: the weights are all ${fmtNum(m.mean)} (${w.name}), deterministic; the recursion assumes independent zero-mean random weights`;
    if (m.mean !== 0) return `no prediction: ${w.name} weights have mean ${fmtNum(m.mean)}; the recursion assumes zero-mean weights`;
  }
  if (net.useBias) {
    const b = net.init.bias;
    if (b.name === 'identity' || b.name === 'orthogonal') return `no prediction: ${b.name} is not a bias initialiser the recursion can use`;
    for (const units of [...net.widths, net.outputUnits]) {
      const m = initializerMoments(b, units, units);
      if (!m) return `no prediction: ${b.name} biases have no variance formula`;
      if (m.mean !== 0) return `no prediction: biases have mean ${fmtNum(m.mean)}; the recursion assumes zero-mean biases (a constant bias shifts every pre-activation)`;
    }
  }
  return null;
}

/**
 * The infinite-width prediction for the network the spec describes, run forward from the actual
 * input's mean square and backward from the output layer, next to the measured per-layer values.
 *
 * Forward: q^l = σ_w²(l)·m^l + σ_b²(l), m the mean square of what layer l reads; a layer hands on
 * E[φ(√q z)²]; a residual block's end hands on m_in + 2α·μ_in·E[φ] + α²·E[φ²] (μ the mean: ReLU streams
 * are not centred). Backward, as squared norms relative to the output layer's δ: through W,
 * ‖∂/∂input‖² = σ_w²(l)·‖δ^l‖²; through φ, ‖δ^l‖² = E[φ'(√q z)²]·‖∂/∂φ(h)‖²; a block's input collects
 * the skip path and the branch path with no cross term (zero-mean weights), which gives Var growth
 * (1 + α²·χ_branch) per block: the reference's (1 + α²) rule for variance-preserving branches.
 */
export function networkTheory(spec: NormalizedSpec, input: InputMoments, params: NetworkParameters, result: AnalysisResult): NetworkTheory {
  const net = spec.network;
  const inputMeanSquare = input.meanSquare;
  const inputMean = input.mean;
  const base = { weightVariance: describeWeightVariance(net.init.weights), inputMeanSquare };

  const why = whyNoPrediction(spec);
  if (why) return notApplicable(why, base);
  const layers = planLayers(net);
  const L = layers.length;
  const acts: (ScalarActivation | null)[] = layers.map((l) => scalarActivation(l.activation));
  for (let l = 0; l < L - 1; l++) {
    if (!acts[l]) return notApplicable(`no prediction: hidden activation ${layers[l]!.activation.name} of layer ${l} is not elementwise`, base);
  }

  const assumptions = [
    'infinite width: finite layers scatter around the prediction by O(depth/width) (Hanin 2018), so single runs of narrow networks differ',
    'independent zero-mean weights and biases; σ_w² = fan_in·Var(W) of each layer from its initialiser formula',
    'pre-activations are Gaussian over the examples (the central-limit picture): exact only for wide layers and inputs of similar length',
  ];
  if (net.init.weights.name === 'orthogonal') {
    assumptions.push('orthogonal weights: the prediction is for the mean squared singular value (Pennington et al. 2017), which orthogonal and Gaussian weights share; orthogonal weights scatter less');
  }
  if (net.blocks.length > 0) {
    assumptions.push(`residual blocks: the branch output is uncorrelated with the stream in the backward pass (zero-mean weights), so each block multiplies ‖δ‖² by 1 + α²·χ_branch with α = ${fmtNum(net.residual.scale)}${net.residual.variant !== 'plain' ? ` (the initial value of the learnable ${net.residual.variant} gate)` : ''}`);
  }

  const sizes = [net.inputUnits, ...net.widths, net.outputUnits];
  const sigmaW2 = layers.map((l) => {
    const m = initializerMoments(net.init.weights, sizes[l.index]!, sizes[l.index + 1]!)!;
    return l.inputUnits * m.variance;
  });
  const sigmaW2Nominal = layers.map((l, i) => {
    const s = scalingOf(net.init.weights);
    if (s && s.distribution === 'truncated_normal_uncorrected') return sigmaW2[i]! / TRUNCATION_STD ** 2;
    if (net.init.weights.name === 'truncated_normal') return l.inputUnits * net.init.weights.stddev! ** 2;
    return sigmaW2[i]!;
  });
  const sigmaW2Sample = layers.map((l) => {
    // ‖W‖² is already measured (result.layers[].weightNorm, float64): a second pass over every weight
    // here cost ~10 ms of a 100 ms MNIST analysis.
    const w = params.weights[l.index]!;
    const s = (result.layers[l.index]?.weightNorm ?? NaN) ** 2;
    return (l.inputUnits * s) / w.length;
  });
  const sigmaB2 = layers.map((l) => (net.useBias ? initializerMoments(net.init.bias, l.units, l.units)!.variance : 0));

  // Forward.
  const q: number[] = [];
  const blockStartOf = new Map<number, { m: number; mu: number }>();
  let m = inputMeanSquare;
  let mu = inputMean;
  const alpha = net.residual.scale;
  for (const layer of layers) {
    const l = layer.index;
    if (layer.blockStart) blockStartOf.set(layer.block!, { m, mu });
    q.push(sigmaW2[l]! * m + sigmaB2[l]!);
    if (l === L - 1) break;
    const act = acts[l]!;
    const post2 = meanSquare(act, q[l]!);
    const postMean = meanOf(act, q[l]!);
    if (layer.blockEnd) {
      const s = blockStartOf.get(layer.block!)!;
      m = s.m + 2 * alpha * s.mu * postMean + alpha * alpha * post2;
      mu = s.mu + alpha * postMean;
    } else {
      m = post2;
      mu = postMean;
    }
  }

  // Backward, squared norms relative to the output layer's δ.
  const delta2 = new Array<number>(L).fill(0);
  const gOut = new Array<number>(L).fill(0);
  const dphi2 = layers.map((_, l) => (l < L - 1 ? derivativeMeanSquare(acts[l]!, q[l]!) : 1));
  delta2[L - 1] = 1;
  const blockEndOf = new Map<number, number>();
  for (const layer of layers) if (layer.blockEnd) blockEndOf.set(layer.block!, layer.index);
  for (let l = L - 1; l >= 0; l--) {
    const layer = layers[l]!;
    if (l < L - 1) {
      const gPost = layer.blockEnd ? alpha * alpha * gOut[l]! : gOut[l]!;
      delta2[l] = dphi2[l]! * gPost;
    }
    if (l === 0) break;
    const throughW = sigmaW2[l]! * delta2[l]!;
    gOut[l - 1] = throughW + (layer.blockStart ? gOut[blockEndOf.get(layer.block!)!]! : 0);
  }

  const measured = result.layers.map((s) => s.backpropNorm);
  const lastMeasured = measured[L - 1]!;
  const layerTheory: LayerTheory[] = layers.map((layer, l) => {
    const predicted = Math.sqrt(delta2[l]!);
    const measuredRel = measured[l]! / lastMeasured;
    const diff = predicted > 0 && measuredRel > 0 && Number.isFinite(measuredRel) ? Math.log10(measuredRel / predicted) : null;
    return {
      index: l,
      sigmaW2: sigmaW2[l]!,
      sigmaW2Nominal: sigmaW2Nominal[l]!,
      sigmaW2Sample: sigmaW2Sample[l]!,
      sigmaB2: sigmaB2[l]!,
      q: q[l]!,
      qMeasured: result.layers[l]!.preActivationRms ** 2,
      chi1: l < L - 1 ? sigmaW2[l + 1]! * dphi2[l]! : null,
      predictedBackpropRelative: predicted,
      measuredBackpropRelative: measuredRel,
      log10Difference: diff,
    };
  });

  return {
    applicable: true,
    reason: null,
    assumptions,
    ...base,
    hidden: hiddenFixedPoint(spec, acts, sigmaW2, sigmaB2, q),
    layers: layerTheory,
    slopes: compareSlopes(L, measured, layerTheory.map((t) => t.predictedBackpropRelative)),
  };
}

/** The fixed point of the hidden-to-hidden map, when those layers share activation, σ_w² and σ_b². */
function hiddenFixedPoint(
  spec: NormalizedSpec, acts: (ScalarActivation | null)[], sigmaW2: number[], sigmaB2: number[], q: number[],
): HiddenFixedPoint | null {
  const L = spec.network.depth;
  // A residual stream has no single-layer fixed point: its q grows block by block.
  if (spec.network.blocks.length > 0) return null;
  // Hidden-to-hidden layers are 1..L−2; with fewer, the first layer stands in.
  const inner = L >= 3 ? Array.from({ length: L - 2 }, (_, i) => i + 1) : L === 2 ? [0] : [];
  if (inner.length === 0) return null;
  const a0 = acts[inner[0]!]!;
  const same = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y), 1e-300);
  for (const l of inner) {
    const a = acts[l]!;
    if (a.spec.name !== a0.spec.name || a.spec.alpha !== a0.spec.alpha) return null;
    if (!same(sigmaW2[l]!, sigmaW2[inner[0]!]!) || !same(sigmaB2[l]!, sigmaB2[inner[0]!]!)) return null;
  }
  const sW = sigmaW2[inner[0]!]!;
  const sB = sigmaB2[inner[0]!]!;
  const fp = fixedPoint(a0, sW, sB, q[inner[0]!]!);
  const c = chi1(a0, sW, fp.qStar);
  const name = a0.spec.alpha !== undefined ? `${a0.spec.name}(${a0.spec.alpha})` : a0.spec.name;
  return {
    activation: name,
    sigmaW2: sW,
    sigmaB2: sB,
    qStar: fp.qStar !== null && Number.isFinite(fp.qStar) ? fp.qStar : null,
    fixedPointKind: fp.kind,
    note: fp.note,
    chi1: c,
    phase: phaseOf(c),
    depthScale: Number.isFinite(depthScale(c)) ? depthScale(c) : null,
    predictedSlope: 0.5 * Math.log(c),
  };
}

/** Measured and predicted slopes over the hidden layers of the output-side half. */
function compareSlopes(L: number, measured: number[], predicted: number[]): SlopeComparison | null {
  const hidden = L - 1;
  if (hidden < 2) return null;
  const from = Math.floor(hidden / 2);
  const idx = Array.from({ length: hidden - from }, (_, i) => from + i);
  if (idx.length < 2) return null;
  const m = fitLogSlope(measured, idx);
  const p = fitLogSlope(predicted, idx);
  if (!m || !p) return null;
  const difference = m.slope - p.slope;
  return {
    layers: idx,
    measured: m.slope,
    predicted: p.slope,
    difference,
    withinTolerance: Math.abs(2 * difference) <= 0.1 * Math.abs(2 * p.slope) + 0.02,
  };
}
