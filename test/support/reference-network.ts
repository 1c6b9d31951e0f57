// A float64 re-implementation of gradlens's dense networks (normalisation, residual variants, Fixup) and
// their losses, in plain JS without tfjs, with central-difference gradients of every parameter entry.
import { activation, type ActivationSpec } from '../../src/engine/model/activations.js';
import type { LossName } from '../../src/schemas/spec.js';

export type Mat = number[][];
export type Variant = 'plain' | 'rezero' | 'skipinit' | 'fixup';
export type Normalization = 'none' | 'batch' | 'layer';

/** The auxiliary parameters, as the product names them (see network.ts / docs section 5–6). */
export type AuxKey = `${number}:${'gamma' | 'beta' | 'gate' | 'fixup_bias_in' | 'fixup_bias_act' | 'fixup_scale'}`;

/** Everything the reference needs: the parameters, the batch and the structure, written from the spec's own words. */
export interface Reference {
  weights: Mat[];
  biases: (number[] | null)[];
  /** Auxiliary parameters by `${layer}:${name}`; scalars are one-entry arrays. */
  aux: Map<string, number[]>;
  x: Mat;
  y: Mat;
  hidden: ActivationSpec[];
  output: ActivationSpec;
  blocks: number[][];
  /** The fixed branch multiplier of plain residual blocks. */
  scale: number;
  variant: Variant;
  normalization: Normalization;
  loss: LossName;
}

/** Adds eps to one pre-activation entry h^l[row][col] (before any normalisation): ∂Loss/∂h by finite differences. */
export interface Probe {
  layer: number;
  row: number;
  col: number;
  eps: number;
}

/** PyTorch's BatchNorm1d / LayerNorm epsilon, as the spec documents it. */
const NORM_EPSILON = 1e-5;

const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

function softmaxRow(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function logSoftmaxRow(z: number[]): number[] {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

/** γ·(h − mean)/√(var + ε) + β, mean and (biased) variance per unit over the rows (batch) or per row over the units (layer). */
function normalize(h: Mat, kind: 'batch' | 'layer', gamma: number[] | undefined, beta: number[] | undefined): Mat {
  const rows = h.length;
  const units = h[0]!.length;
  const out: Mat = h.map((r) => [...r]);
  const apply = (cells: [number, number][]): void => {
    const values = cells.map(([i, j]) => h[i]![j]!);
    const mean = values.reduce((a, v) => a + v, 0) / values.length;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
    const inv = 1 / Math.sqrt(variance + NORM_EPSILON);
    for (const [i, j] of cells) out[i]![j] = (gamma ? gamma[j]! : 1) * (h[i]![j]! - mean) * inv + (beta ? beta[j]! : 0);
  };
  if (kind === 'batch') for (let j = 0; j < units; j++) apply(Array.from({ length: rows }, (_, i) => [i, j]));
  else for (let i = 0; i < rows; i++) apply(Array.from({ length: units }, (_, j) => [i, j]));
  return out;
}

/** The activation of layer l: the output's, a hidden one, or none at the end of a Fixup branch (it ends in the addition). */
function activationOf(ref: Reference, l: number): ActivationSpec {
  if (l === ref.weights.length - 1) return ref.output;
  const block = ref.blocks.find((b) => b.includes(l));
  if (ref.variant === 'fixup' && block && block[block.length - 1] === l) return { name: 'linear' };
  return ref.hidden[l]!;
}

/** The multiplier of a block's branch: the learnable gate (ReZero, SkipInit), Fixup's scalar, or the fixed scale. */
function branchMultiplier(ref: Reference, lastLayer: number): number {
  if (ref.variant === 'rezero' || ref.variant === 'skipinit') return ref.aux.get(`${lastLayer}:gate`)![0]!;
  if (ref.variant === 'fixup') return ref.aux.get(`${lastLayer}:fixup_scale`)![0]!;
  return ref.scale;
}

export interface ReferenceRun {
  loss: number;
  /** The dense layer's output h^l = input·W + b (+ Fixup's bias) before any normalisation. */
  dense: Mat[];
  /** What each activation sees: h^l, or its normalisation. */
  pre: Mat[];
}

/**
 * Float64 forward pass and loss. A layer computes h = (a + c_in)·W + b + c_act (c_in, c_act Fixup's
 * scalar biases, on branch layers only), z = normalise(h) on hidden layers when the network is
 * normalised, φ(z); a block maps its input x to x + α·F(x), α the block's multiplier.
 */
export function referenceForward(ref: Reference, probe: Probe | null = null): ReferenceRun {
  const L = ref.weights.length;
  const dense: Mat[] = [];
  const pre: Mat[] = [];
  let a: Mat = ref.x;
  let blockInput: Mat | null = null;
  for (let l = 0; l < L; l++) {
    const block = ref.blocks.find((b) => b.includes(l));
    if (block && block[0] === l) blockInput = a;
    const W = ref.weights[l]!;
    const b = ref.biases[l];
    const biasIn = ref.aux.get(`${l}:fixup_bias_in`)?.[0] ?? 0;
    const biasAct = ref.aux.get(`${l}:fixup_bias_act`)?.[0] ?? 0;
    const units = W[0]!.length;
    const h: Mat = a.map((row, i) =>
      Array.from({ length: units }, (_, j) => {
        let s = (b ? b[j]! : 0) + biasAct;
        for (let k = 0; k < row.length; k++) s += (row[k]! + biasIn) * W[k]![j]!;
        if (probe && probe.layer === l && probe.row === i && probe.col === j) s += probe.eps;
        return s;
      }),
    );
    dense.push(h);
    const z = ref.normalization !== 'none' && l < L - 1
      ? normalize(h, ref.normalization, ref.aux.get(`${l}:gamma`), ref.aux.get(`${l}:beta`))
      : h;
    pre.push(z);
    const act = activationOf(ref, l);
    let post: Mat;
    if (act.name === 'softmax') {
      post = z.map(softmaxRow);
    } else {
      const f = activation(act).f!;
      post = z.map((row) => row.map(f));
    }
    if (block && block[block.length - 1] === l) {
      const inp = blockInput!;
      const alpha = branchMultiplier(ref, l);
      post = post.map((row, i) => row.map((v, j) => inp[i]![j]! + alpha * v));
      blockInput = null;
    }
    a = post;
  }
  return { loss: lossOf(ref, pre[L - 1]!, a), dense, pre };
}

function lossOf(ref: Reference, logits: Mat, out: Mat): number {
  const B = out.length;
  const elements = B * out[0]!.length;
  let loss = 0;
  switch (ref.loss) {
    case 'output':
      // Batch mean of the sum of the outputs.
      for (const row of out) for (const v of row) loss += v;
      return loss / B;
    case 'mse':
      // Mean over every element of (output − y)².
      out.forEach((row, i) => row.forEach((v, j) => { loss += (v - ref.y[i]![j]!) ** 2; }));
      return loss / elements;
    case 'categorical_crossentropy':
      // −(1/B) Σ_i Σ_j y_ij log softmax(z_i)_j, from the logits.
      if (ref.output.name !== 'softmax') throw new Error('the reference computes categorical cross-entropy from softmax logits only');
      logits.forEach((z, i) => logSoftmaxRow(z).forEach((lp, j) => { loss -= ref.y[i]![j]! * lp; }));
      return loss / B;
    case 'binary_crossentropy':
      // Mean of −[y log σ(z) + (1 − y) log(1 − σ(z))], with log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z).
      if (ref.output.name !== 'sigmoid') throw new Error('the reference computes binary cross-entropy from sigmoid logits only');
      logits.forEach((z, i) => z.forEach((v, j) => {
        const y = ref.y[i]![j]!;
        loss += y * softplus(-v) + (1 - y) * softplus(v);
      }));
      return loss / elements;
  }
}

export const FD_STEP = 1e-5;

export interface ReferenceGradients {
  weight: Mat[];
  bias: (number[] | null)[];
  /** ∂Loss/∂(auxiliary parameter), every entry, by the same keys as Reference.aux. */
  aux: Map<string, number[]>;
  /** ∂Loss/∂h^l, h before any normalisation. */
  delta: Mat[];
}

/** Central differences of the reference loss w.r.t. every weight, bias, auxiliary parameter and pre-activation entry. */
export function finiteDifferences(ref: Reference): ReferenceGradients {
  const lossAt = (): number => referenceForward(ref).loss;
  const central = (set: (v: number) => void, v0: number): number => {
    set(v0 + FD_STEP);
    const up = lossAt();
    set(v0 - FD_STEP);
    const down = lossAt();
    set(v0);
    return (up - down) / (2 * FD_STEP);
  };
  const ofVector = (vec: number[]): number[] => vec.map((v, j) => central((u) => { vec[j] = u; }, v));
  const weight = ref.weights.map((W) => W.map(ofVector));
  const bias = ref.biases.map((b) => (b ? ofVector(b) : null));
  const aux = new Map([...ref.aux.entries()].map(([key, values]) => [key, ofVector(values)]));
  const { dense } = referenceForward(ref);
  const delta = dense.map((h, l) => h.map((row, i) => row.map((_, j) => {
    const up = referenceForward(ref, { layer: l, row: i, col: j, eps: FD_STEP }).loss;
    const down = referenceForward(ref, { layer: l, row: i, col: j, eps: -FD_STEP }).loss;
    return (up - down) / (2 * FD_STEP);
  })));
  return { weight, bias, aux, delta };
}

/** Points where the activation's derivative jumps: finite differences must not straddle them. */
export function kinksOf(act: ActivationSpec): number[] {
  switch (act.name) {
    case 'relu': case 'leaky_relu': case 'elu': case 'selu': return [0];
    case 'relu6': return [0, 6];
    case 'hard_sigmoid': return [-3, 3];
    default: return [];
  }
}

/** The smallest distance of any activation input to a kink of its activation, per layer (Infinity without kinks). */
export function kinkDistances(ref: Reference): number[] {
  const { pre } = referenceForward(ref);
  return pre.map((z, l) => {
    const kinks = kinksOf(activationOf(ref, l));
    let closest = Infinity;
    for (const k of kinks) for (const v of z.flat()) closest = Math.min(closest, Math.abs(v - k));
    return closest;
  });
}
