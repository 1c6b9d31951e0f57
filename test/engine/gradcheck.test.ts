// Finite-difference gradient checks of the whole analysis path against a float64 re-implementation of the
// network (test/support/reference-network.ts): every activation and loss, residual blocks, batch and layer
// norm, ReZero, SkipInit and Fixup with their auxiliary parameters; whole gradient tensors, entry by entry.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestBackend } from '../backends.js';
import * as tf from '@tensorflow/tfjs';
import { normalizeSpec, type NormalizedSpec } from '../../src/engine/spec/normalize.js';
import { batchGradients, readTogether, runAnalysis, type AnalysisResult } from '../../src/engine/measure/measure.js';
import { ACTIVATION_NAMES } from '../../src/engine/model/activations.js';
import { auxIsVector, initParameters, type NetworkParameters } from '../../src/engine/model/network.js';
import { Rng } from '../../src/engine/common/random.js';
import type { AnalysisSpecInput, LossName, NetworkInput } from '../../src/schemas/spec.js';
import {
  finiteDifferences, kinkDistances, referenceForward, type Mat, type Reference, type ReferenceGradients,
} from '../support/reference-network.js';

const frobenius = (m: Mat | number[]): number =>
  Math.sqrt((m as (number | number[])[]).flat().reduce((s: number, v: number) => s + v * v, 0));
const maxAbs = (m: Mat | number[]): number => Math.max(...(m as (number | number[])[]).flat().map(Math.abs));

function expectRelClose(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.abs(expected);
  expect(err, `${what}: analysis ${actual} vs reference ${expected} (relative error ${err})`).toBeLessThan(rel);
}

/**
 * Entry-by-entry tolerance of a whole gradient tensor: |autodiff − FD| ≤ TENSOR_RTOL·max|FD| of that
 * tensor. float32 forward/backward passes of these small networks land within 8.3e-6 of it (the largest
 * over every tensor of every case here, cpu backend); a wrong factor anywhere (a doubled γ gradient,
 * Fixup's bias tripled, batch statistics left out of the backward pass) is of the order of 1.
 */
const TENSOR_RTOL = 1e-4;

/** `scale`: what the tolerance is relative to; max|expected| unless the tensor is a sum that cancels (see below). */
function expectTensorClose(actual: ArrayLike<number>, expected: number[], what: string, scale = maxAbs(expected)): void {
  expect(actual.length, `${what}: entries`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    if (err > worst) { worst = err; at = i; }
  }
  const detail = at >= 0 ? ` (entry ${at}: autodiff ${actual[at]} vs finite differences ${expected[at]})` : '';
  if (scale === 0) {
    // A gradient that is 0 by construction (Fixup's zeroed layers at step 0) must come out exactly 0.
    expect(worst, `${what}: finite differences are exactly 0, autodiff deviates by ${worst}${detail}`).toBe(0);
    return;
  }
  expect(worst / scale, `${what}: largest deviation ${worst} is ${worst / scale} of max|∂| ${scale}${detail}`).toBeLessThan(TENSOR_RTOL);
}

/** Deterministic normal-ish inline inputs: rows × cols, values N(0, 1) rounded to 4 decimals. */
function inlineX(rows: number, cols: number, seed: number): Mat {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.round(rng.normal() * 1e4) / 1e4));
}

interface Case {
  title: string;
  input: AnalysisSpecInput;
  /**
   * 'all': replace every parameter by a seeded draw away from its initial value (auxiliary parameters
   * included, Fixup's zeroed layers too): at initialisation γ = 1, β = 0, Fixup's biases are 0 and its
   * last branch layers 0, so a wrong factor on them would not show in the loss and many gradients are 0.
   * 'weights': move W and b only, the auxiliary parameters keep their initial values (Fixup's biases at
   * 0 with gradient flowing: a wrong factor on them shows in their gradients only, not in the loss).
   */
  perturb?: 'all' | 'weights';
  /** Some gradients are exactly 0 by construction here (Fixup at step 0): they must come out exactly 0. */
  zeroByDesign?: boolean;
}

/**
 * Seeds moved (by +4, so the row count 3 + seed % 4 stays) when the Ziggurat normal sampler changed
 * every seeded weight: at the formula's seed these cases had a dead ReLU/ReLU6 layer, so a finite-
 * difference weight gradient of exactly 0 (the check's own precondition, asserted below, failed).
 */
const RESEED: Record<string, number> = {
  'relu, plain depth 4 widths [5,4,3], output': 18,
  'relu6, plain depth 4 widths [5,4,3], categorical_crossentropy': 28,
  'relu6, residual every 1 scale 0.7, depth 5 width 4, binary_crossentropy': 158,
  'relu6, residual every 2 scale 1, depth 6 width 4, output': 88,
};

interface Shape {
  depth: number;
  widths?: number[];
  width?: number;
  residual?: NetworkInput['residual'];
  normalization?: NetworkInput['normalization'];
}

function caseFor(title: string, act: NonNullable<NetworkInput['activation']>, loss: LossName, shape: Shape, seed: number, extra: Partial<Case> = {}): Case {
  seed = RESEED[title] ?? seed;
  const rows = 3 + (seed % 4); // 3..6 rows
  const x = inlineX(rows, 3, 1000 + seed);
  const net: AnalysisSpecInput['network'] = {
    depth: shape.depth,
    activation: act,
    init: {
      weights: { name: 'random_normal', stddev: 0.8 },
      bias: { name: 'random_normal', stddev: 0.5 },
    },
  };
  if (shape.widths) net.widths = shape.widths;
  if (shape.width) net.width = shape.width;
  if (shape.residual) net.residual = shape.residual;
  if (shape.normalization) net.normalization = shape.normalization;
  const data: AnalysisSpecInput['data'] = { source: 'inline', x };
  const rng = new Rng(2000 + seed);
  switch (loss) {
    case 'mse':
      data.y = x.map(() => [rng.normal(), rng.normal()]);
      break;
    case 'categorical_crossentropy':
      data.y = x.map((_, i) => i % 3); // three classes, every one present
      net.outputActivation = 'softmax';
      break;
    case 'binary_crossentropy':
      data.y = x.map((_, i) => i % 2); // two classes: one sigmoid unit with 0/1 targets
      net.outputActivation = 'sigmoid';
      break;
    case 'output':
      net.outputUnits = 2;
      net.outputActivation = 'tanh';
      break;
  }
  return { title, input: { seed, network: net, data, loss, include: ['parameters', 'batch'] }, ...extra };
}

const HIDDEN = ACTIVATION_NAMES.filter((a) => a !== 'softmax');
const LOSSES: LossName[] = ['mse', 'categorical_crossentropy', 'binary_crossentropy', 'output'];

const cases: Case[] = [];
HIDDEN.forEach((name, i) => {
  // Non-default alphas so the parameter matters (elu alpha ≠ 1 puts a kink at 0).
  const act: NonNullable<NetworkInput['activation']> = name === 'leaky_relu' ? { name, alpha: 0.2 } : name === 'elu' ? { name, alpha: 1.5 } : name;
  const loss = LOSSES[i % LOSSES.length]!;
  cases.push(caseFor(`${name}, plain depth 4 widths [5,4,3], ${loss}`, act, loss, { depth: 4, widths: [5, 4, 3] }, 11 + i));
  cases.push(caseFor(`${name}, residual every 1 scale 0.7, depth 5 width 4, ${LOSSES[(i + 1) % 4]}`, act,
    LOSSES[(i + 1) % 4]!, { depth: 5, width: 4, residual: { every: 1, scale: 0.7 } }, 141 + i));
  cases.push(caseFor(`${name}, residual every 2 scale 1, depth 6 width 4, ${LOSSES[(i + 2) % 4]}`, act,
    LOSSES[(i + 2) % 4]!, { depth: 6, width: 4, residual: { every: 2, scale: 1 } }, 71 + i));
});
// A mixed stack: a different activation per hidden layer, with a residual block in the middle.
cases.push(caseFor('mixed activations, residual every 2 scale 0.5, depth 5', ['tanh', 'gelu', 'relu', 'mish'],
  'categorical_crossentropy', { depth: 5, width: 4, residual: { every: 2, scale: 0.5 } }, 99));

/**
 * Normalisation and the residual variants, with every auxiliary parameter. "at init" cases keep the
 * spec's initial values (γ = 1, β = 0, the gate at residual.scale): a γ → γ² and β → 2β rewrite gives
 * the same loss there and only the gradients can tell. "perturbed" cases move every parameter.
 */
const variantCases: Case[] = [
  caseFor('batch norm, tanh, depth 4 widths [5,4,3], mse, at init', 'tanh', 'mse', { depth: 4, widths: [5, 4, 3], normalization: 'batch' }, 201),
  caseFor('batch norm, relu, depth 5 width 4, categorical_crossentropy, at init', 'relu', 'categorical_crossentropy', { depth: 5, width: 4, normalization: 'batch' }, 206),
  caseFor('batch norm, gelu, depth 5 width 4, binary_crossentropy, perturbed', 'gelu', 'binary_crossentropy', { depth: 5, width: 4, normalization: 'batch' }, 203, { perturb: 'all' }),
  caseFor('batch norm + residual every 2, swish, depth 6 width 4, mse, perturbed', 'swish', 'mse',
    { depth: 6, width: 4, normalization: 'batch', residual: { every: 2, scale: 0.8 } }, 204, { perturb: 'all' }),
  caseFor('layer norm, sigmoid, depth 4 widths [5,4,3], output, at init', 'sigmoid', 'output', { depth: 4, widths: [5, 4, 3], normalization: 'layer' }, 211),
  caseFor('layer norm, elu(1.5), depth 5 width 4, mse, perturbed', { name: 'elu', alpha: 1.5 }, 'mse', { depth: 5, width: 4, normalization: 'layer' }, 212, { perturb: 'all' }),
  caseFor('layer norm + ReZero every 1, tanh, depth 5 width 4, categorical_crossentropy, perturbed', 'tanh', 'categorical_crossentropy',
    { depth: 5, width: 4, normalization: 'layer', residual: { every: 1, variant: 'rezero' } }, 213, { perturb: 'all' }),
  caseFor('ReZero every 1 gate 0.5, tanh, depth 5 width 4, mse, at init', 'tanh', 'mse', { depth: 5, width: 4, residual: { every: 1, variant: 'rezero', scale: 0.5 } }, 221),
  caseFor('ReZero every 2, relu, depth 6 width 4, categorical_crossentropy, perturbed', 'relu', 'categorical_crossentropy',
    { depth: 6, width: 4, residual: { every: 2, variant: 'rezero' } }, 222, { perturb: 'all' }),
  caseFor('SkipInit every 2 gate 0.3, softplus, depth 6 width 4, binary_crossentropy, at init', 'softplus', 'binary_crossentropy',
    { depth: 6, width: 4, residual: { every: 2, variant: 'skipinit', scale: 0.3 } }, 231),
  caseFor('SkipInit every 1, mish, depth 5 width 4, output, perturbed', 'mish', 'output', { depth: 5, width: 4, residual: { every: 1, variant: 'skipinit' } }, 232, { perturb: 'all' }),
  caseFor('Fixup every 2, relu, depth 6 width 4, mse, at init (zeroed layers)', 'relu', 'mse', { depth: 6, width: 4, residual: { every: 2, variant: 'fixup' } }, 241, { zeroByDesign: true }),
  caseFor('Fixup every 2, relu, depth 6 width 4, mse, perturbed', 'relu', 'mse', { depth: 6, width: 4, residual: { every: 2, variant: 'fixup' } }, 242, { perturb: 'all' }),
  caseFor('Fixup every 2, tanh, depth 6 width 4, output, weights perturbed (Fixup scalars at init)', 'tanh', 'output',
    { depth: 6, width: 4, residual: { every: 2, variant: 'fixup' } }, 245, { perturb: 'weights' }),
  caseFor('Fixup every 1, tanh, depth 5 width 4, categorical_crossentropy, perturbed', 'tanh', 'categorical_crossentropy',
    { depth: 5, width: 4, residual: { every: 1, variant: 'fixup' } }, 243, { perturb: 'all' }),
  caseFor('Fixup every 2 + batch norm, gelu, depth 6 width 4, binary_crossentropy, perturbed', 'gelu', 'binary_crossentropy',
    { depth: 6, width: 4, normalization: 'batch', residual: { every: 2, variant: 'fixup', scale: 0.7 } }, 244, { perturb: 'all' }),
];

/** Seeded draws away from the initial values for every weight, bias and auxiliary parameter. */
function perturbed(params: NetworkParameters, seed: number, what: 'all' | 'weights'): NetworkParameters {
  const rng = new Rng(seed);
  const draw = (values: Float32Array, around: (v: number) => number): Float32Array => values.map((v) => around(v));
  return {
    ...params,
    weights: params.weights.map((w) => draw(w, (v) => v + 0.6 * rng.normal())),
    biases: params.biases.map((b) => (b ? draw(b, (v) => v + 0.3 * rng.normal()) : null)),
    aux: what === 'weights' ? params.aux : (params.aux ?? []).map((p) => ({
      ...p,
      values: draw(p.values, (v) => (p.name === 'gamma' || p.name === 'fixup_scale' ? 1 + 0.4 * rng.normal() : v + 0.4 * rng.normal())),
    })),
  };
}

/** The auxiliary parameters the spec promises (schemas/spec.ts), independently of the product's plan. */
function promisedAux(spec: NormalizedSpec): string[] {
  const net = spec.network;
  const keys: string[] = [];
  for (let l = 0; l < net.depth; l++) {
    const block = net.blocks.find((b) => b.includes(l));
    if (block && net.residual.variant === 'fixup') keys.push(`${l}:fixup_bias_in`, `${l}:fixup_bias_act`);
    if (l < net.depth - 1 && net.normalization !== 'none') keys.push(`${l}:gamma`, `${l}:beta`);
    if (block && block[block.length - 1] === l) {
      if (net.residual.variant === 'rezero' || net.residual.variant === 'skipinit') keys.push(`${l}:gate`);
      if (net.residual.variant === 'fixup') keys.push(`${l}:fixup_scale`);
    }
  }
  return keys.sort();
}

/** The float64 reference, built from what the analysis itself reports with include: ["parameters", "batch"]. */
function referenceOf(spec: NormalizedSpec, result: AnalysisResult): Reference {
  expect(result.parameters).toBeDefined();
  expect(result.batch).toHaveLength(1);
  const aux = new Map<string, number[]>();
  for (const p of result.parameters!) for (const a of p.auxParameters ?? []) aux.set(`${p.index}:${a.name}`, [...a.values]);
  expect([...aux.keys()].sort(), 'auxiliary parameters in include: ["parameters"]').toEqual(promisedAux(spec));
  return {
    weights: result.parameters!.map((p) => (p.weights as number[][]).map((r) => [...r])),
    biases: result.parameters!.map((p) => (p.bias ? [...p.bias] : null)),
    aux,
    x: result.batch![0]!.x as Mat,
    y: result.batch![0]!.y,
    hidden: spec.network.activations,
    output: spec.network.outputActivation,
    blocks: spec.network.blocks,
    scale: spec.network.residual.scale,
    variant: spec.network.residual.variant,
    normalization: spec.network.normalization,
    loss: spec.loss,
  };
}

interface AutodiffGradients {
  loss: number;
  weight: Float32Array[];
  bias: (Float32Array | null)[];
  aux: Map<string, Float32Array>;
  delta: Float32Array[];
}

/** The product's own gradient computation (the one every analysis statistic is made of), read back whole. */
async function autodiff(spec: NormalizedSpec, params: NetworkParameters, ref: Reference): Promise<AutodiffGradients> {
  const { layers } = params;
  tf.engine().startScope();
  try {
    const weights = layers.map((l) => tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units]));
    const biases = layers.map((l) => (params.biases[l.index] ? tf.tensor1d(params.biases[l.index]!) : null));
    const auxParams = params.aux ?? [];
    const aux = auxParams.map((p) => ({ layer: p.layer, name: p.name, tensor: auxIsVector(p.name) ? tf.tensor1d(p.values) : tf.scalar(p.values[0]!) }));
    const g = batchGradients({
      layers, weights, biases, residualScale: spec.network.residual.scale, loss: spec.loss,
      x: tf.tensor2d(ref.x), y: spec.loss === 'output' ? null : tf.tensor2d(ref.y), aux, normalization: spec.network.normalization,
    });
    // One asynchronous read of everything (webgpu cannot read synchronously in Node).
    const withBias = g.biases.filter((b): b is tf.Tensor => b !== null);
    const values = await readTogether([g.value, ...g.weights, ...withBias, ...g.aux, ...g.deltas]);
    let k = 0;
    const next = (): Float32Array => Float32Array.from(values[k++]!);
    const loss = next()[0]!;
    const weight = g.weights.map(next);
    const bias = g.biases.map((b) => (b ? next() : null));
    const auxValues = new Map(auxParams.map((p) => [`${p.layer}:${p.name}`, next()]));
    return { loss, weight, bias, aux: auxValues, delta: g.deltas.map(next) };
  } finally {
    tf.engine().endScope();
  }
}

/** Runs the case, checks its preconditions, and returns the analysis, the product's gradients and the reference's. */
async function check(c: Case): Promise<{ spec: NormalizedSpec; result: AnalysisResult; ref: Reference; fd: ReferenceGradients; ad: AutodiffGradients }> {
  const { spec, dataset } = normalizeSpec(c.input);
  if (c.input.network.residual) {
    // The residual layouts must actually produce blocks for this check to mean anything.
    const every = c.input.network.residual.every;
    expect(spec.network.blocks.length).toBeGreaterThan(0);
    spec.network.blocks.forEach((b) => expect(b).toHaveLength(every));
  }
  const initial = initParameters(spec.network, spec.seed);
  const params = c.perturb ? perturbed(initial, 5000 + spec.seed, c.perturb) : initial;
  const { result } = (await runAnalysis(spec, dataset, {}, params));
  const ref = referenceOf(spec, result);
  expect(result.batchSize).toBe(ref.x.length);

  // No activation input of a kinked activation may sit within reach of the finite-difference step.
  kinkDistances(ref).forEach((d, l) => expect(d, `layer ${l}: an activation input ${d} from a kink`).toBeGreaterThan(1e-3));
  const { loss } = referenceForward(ref);
  expect(Math.abs(result.loss - loss), `loss ${result.loss} vs reference ${loss}`).toBeLessThan(1e-5 * Math.abs(loss) + 1e-6);
  const fd = finiteDifferences(ref);
  const ad = await autodiff(spec, params, ref);
  return { spec, result, ref, fd, ad };
}

/** Every whole tensor: ∂Loss/∂W, ∂Loss/∂b, ∂Loss/∂h and every auxiliary parameter's gradient, entry by entry. */
function expectWholeTensors(fd: ReferenceGradients, ad: AutodiffGradients, ref: Reference, zeroByDesign: boolean): void {
  fd.weight.forEach((w, l) => {
    if (!zeroByDesign) expect(maxAbs(w), `layer ${l} FD weight gradient (a check against 0 would only test 0 = 0)`).toBeGreaterThan(1e-4);
    expectTensorClose(ad.weight[l]!, w.flat(), `layer ${l} ∂Loss/∂W`);
    // ∂Loss/∂b_j = Σ_i δ_ij, which batch norm makes exactly 0 (the mean subtraction cancels b): float32
    // leaves rounding of the order of eps·Σ_i |δ_ij| there, so that is the scale of the comparison.
    const deltaColumns = fd.delta[l]![0]!.map((_, j) => fd.delta[l]!.reduce((sum, row) => sum + Math.abs(row[j]!), 0));
    if (fd.bias[l]) expectTensorClose(ad.bias[l]!, fd.bias[l]!, `layer ${l} ∂Loss/∂b`, Math.max(maxAbs(fd.bias[l]!), ...deltaColumns));
    expectTensorClose(ad.delta[l]!, fd.delta[l]!.flat(), `layer ${l} ∂Loss/∂h`);
  });
  expect([...ad.aux.keys()].sort()).toEqual([...fd.aux.keys()].sort());
  for (const [key, g] of fd.aux) {
    const cancelled = cancelledByBatchNorm(key, ref);
    if (!zeroByDesign && !cancelled) expect(maxAbs(g), `${key} FD gradient`).toBeGreaterThan(1e-5);
    expectTensorClose(ad.aux.get(key)!, g, `${key} gradient`, cancelled ? cancellationScale(key, fd, ref) : maxAbs(g));
  }
}

/**
 * Fixup's scalar biases shift every row of a batch-normalised layer alike, so the batch mean removes
 * them: their gradient is exactly 0 there, and float32 leaves rounding of the order of the sum it cancels.
 */
function cancelledByBatchNorm(key: string, ref: Reference): boolean {
  const [layer, name] = key.split(':');
  return ref.normalization === 'batch' && Number(layer) < ref.weights.length - 1 && (name === 'fixup_bias_in' || name === 'fixup_bias_act');
}

/** Σ_ij |δ_ij|·(1 + max_j Σ_k |W_kj|): what ∂Loss/∂c_act = Σ δ and ∂Loss/∂c_in = Σ (δWᵀ) add up. */
function cancellationScale(key: string, fd: ReferenceGradients, ref: Reference): number {
  const l = Number(key.split(':')[0]);
  const sumDelta = fd.delta[l]!.flat().reduce((a, v) => a + Math.abs(v), 0);
  const W = ref.weights[l]!;
  const colSum = Math.max(...W[0]!.map((_, j) => W.reduce((a, row) => a + Math.abs(row[j]!), 0)));
  return sumDelta * (1 + colSum);
}

/** The analysis' reported norms against the norms of the finite-difference tensors. */
function expectReportedNorms(result: AnalysisResult, spec: NormalizedSpec, fd: ReferenceGradients, ref: Reference): void {
  const B = ref.x.length;
  result.layers.forEach((layer, l) => {
    const gw = frobenius(fd.weight[l]!);
    const delta = Math.sqrt(B) * frobenius(fd.delta[l]!);
    // noise: the size of what cancels where a gradient is 0 analytically (batch norm's ∂Loss/∂b, Fixup's
    // biases under batch norm); there float32 leaves rounding of about 1e-7 of it, not a relative match.
    const close = (actual: number, expected: number, what: string, noise = 0): void => {
      if (noise > 0 && expected <= 1e-6 * noise) expect(actual, `${what}: 0 analytically, ${actual} against a cancelled sum of ${noise}`).toBeLessThan(1e-5 * noise);
      else if (expected === 0) expect(actual, `${what} is 0 by construction`).toBe(0);
      else expectRelClose(actual, expected, 1e-3, what);
    };
    const deltaSum = fd.delta[l]!.flat().reduce((a, v) => a + Math.abs(v), 0);
    close(layer.weightGradNorm, gw, `layer ${l} weightGradNorm`);
    close(layer.weightGradMaxAbs, maxAbs(fd.weight[l]!), `layer ${l} weightGradMaxAbs`);
    if (fd.bias[l]) close(layer.biasGradNorm!, frobenius(fd.bias[l]!), `layer ${l} biasGradNorm`, ref.normalization === 'batch' ? deltaSum : 0);
    close(layer.backpropNorm, delta, `layer ${l} backpropNorm`);
    // ‖W‖_F and the residual block assignment come straight from the parameters and the spec.
    if (frobenius(ref.weights[l]!) > 0) expectRelClose(layer.weightNorm, frobenius(ref.weights[l]!), 1e-6, `layer ${l} weightNorm`);
    const block = spec.network.blocks.findIndex((b) => b.includes(l));
    expect(layer.residualBlock).toBe(block === -1 ? null : block);
    for (const a of layer.auxParameters ?? []) {
      const key = `${l}:${a.name}`;
      close(a.gradNorm, frobenius(fd.aux.get(key)!), `layer ${l} ${a.name} gradNorm`, cancelledByBatchNorm(key, ref) ? cancellationScale(key, fd, ref) : 0);
    }
    expect((layer.auxParameters ?? []).map((a) => `${l}:${a.name}`).sort()).toEqual([...fd.aux.keys()].filter((k) => k.startsWith(`${l}:`)).sort());
  });
}

describe('finite-difference gradient check of the whole analysis path', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('covers every hidden activation, every loss, both residual layouts, both normalisations and every residual variant', async () => {
    const all = [...cases, ...variantCases];
    const covered = new Set(all.map((c) => c.input.loss));
    expect([...covered].sort()).toEqual([...LOSSES].sort());
    const acts = new Set(all.flatMap((c) => {
      const a = c.input.network.activation!;
      return (Array.isArray(a) ? a : [a]).map((v) => (typeof v === 'string' ? v : v.name));
    }));
    for (const name of HIDDEN) expect(acts.has(name), name).toBe(true);
    const norms = new Set(variantCases.map((c) => c.input.network.normalization ?? 'none'));
    expect([...norms].sort()).toEqual(['batch', 'layer', 'none']);
    const variants = new Set(variantCases.map((c) => c.input.network.residual?.variant).filter(Boolean));
    expect([...variants].sort()).toEqual(['fixup', 'rezero', 'skipinit']);
  });

  it.each([...cases, ...variantCases].map((c) => [c.title, c] as const))('%s', async (_title, c) => {
    const { spec, result, ref, fd, ad } = await check(c);
    expect(Math.abs(ad.loss - result.loss)).toBeLessThan(1e-6 * Math.abs(result.loss) + 1e-7);
    expectWholeTensors(fd, ad, ref, c.zeroByDesign ?? false);
    expectReportedNorms(result, spec, fd, ref);
  });

  it('Fixup at step 0: only the output layer has a gradient; every other tensor is exactly 0 both ways', async () => {
    const c = variantCases.find((v) => v.zeroByDesign)!;
    const { fd, ad } = await check(c);
    const L = fd.weight.length;
    expect(maxAbs(fd.weight[L - 1]!)).toBeGreaterThan(1e-3);
    for (let l = 0; l < L - 1; l++) {
      expect(maxAbs(fd.weight[l]!), `layer ${l}`).toBe(0);
      expect(maxAbs([...ad.weight[l]!]), `layer ${l}`).toBe(0);
    }
  });

  it('backpropNorm is sqrt(B)·‖∂Loss/∂H‖_F: the same rows repeated twice give the same value, ‖∂Loss/∂H‖_F shrinks by √2', async () => {
    const base = caseFor('dup', 'tanh', 'mse', { depth: 3, width: 4 }, 5).input;
    const doubled: AnalysisSpecInput = {
      ...base,
      data: { ...base.data, x: [...base.data.x!, ...base.data.x!], y: [...(base.data.y as number[][]), ...(base.data.y as number[][])] },
    };
    const run = async (input: AnalysisSpecInput): Promise<{ result: AnalysisResult; ref: Reference }> => {
      const { spec, dataset } = normalizeSpec(input);
      const { result } = (await runAnalysis(spec, dataset));
      return { result, ref: referenceOf(spec, result) };
    };
    const one = (await run(base));
    const two = (await run(doubled));
    expect(two.ref.x.length).toBe(2 * one.ref.x.length);
    const fd1 = finiteDifferences(one.ref);
    const fd2 = finiteDifferences(two.ref);
    one.result.layers.forEach((layer, l) => {
      // Batch-mean loss: duplicating the batch leaves the loss and dLoss/dW unchanged and halves each δ entry.
      expectRelClose(frobenius(fd2.delta[l]!), frobenius(fd1.delta[l]!) / Math.SQRT2, 1e-6, `layer ${l} FD ‖δ‖ ratio`);
      expectRelClose(two.result.layers[l]!.backpropNorm, layer.backpropNorm, 1e-4, `layer ${l} backpropNorm`);
      expectRelClose(two.result.layers[l]!.weightGradNorm, layer.weightGradNorm, 1e-4, `layer ${l} weightGradNorm`);
    });
    expectRelClose(two.result.loss, one.result.loss, 1e-5, 'loss');
  });
});
