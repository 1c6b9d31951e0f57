// Finite-difference gradient checks of the whole analysis path against a float64 re-implementation of the network.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { normalizeSpec, type NormalizedSpec } from '../../src/engine/spec.js';
import { runAnalysis, type AnalysisResult } from '../../src/engine/analysis.js';
import { ACTIVATION_NAMES, activation, type ActivationInput, type ActivationSpec } from '../../src/engine/activations.js';
import { Rng } from '../../src/engine/random.js';
import type { AnalysisSpecInput, LossName } from '../../src/schemas/spec.js';

type Mat = number[][];

/** Everything the float64 reference needs, taken from the analysis' own output and normalised spec. */
interface Reference {
  weights: Mat[];
  biases: (number[] | null)[];
  x: Mat;
  y: Mat;
  hidden: ActivationSpec[];
  output: ActivationSpec;
  blocks: number[][];
  scale: number;
  loss: LossName;
}

interface Probe {
  layer: number;
  row: number;
  col: number;
  eps: number;
}

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

/**
 * Float64 forward pass and loss. A residual block maps x to x + scale·F(x), F being its layers (dense then
 * activation); `probe` adds eps to one pre-activation entry h^l[row][col] (for ∂Loss/∂H by finite differences).
 */
function referenceForward(ref: Reference, probe: Probe | null = null): { loss: number; pre: Mat[] } {
  const L = ref.weights.length;
  const pre: Mat[] = [];
  let a: Mat = ref.x;
  let blockInput: Mat | null = null;
  for (let l = 0; l < L; l++) {
    const block = ref.blocks.find((b) => b.includes(l));
    if (block && block[0] === l) blockInput = a;
    const W = ref.weights[l]!;
    const b = ref.biases[l];
    const units = W[0]!.length;
    const h: Mat = a.map((row, i) =>
      Array.from({ length: units }, (_, j) => {
        let s = b ? b[j]! : 0;
        for (let k = 0; k < row.length; k++) s += row[k]! * W[k]![j]!;
        if (probe && probe.layer === l && probe.row === i && probe.col === j) s += probe.eps;
        return s;
      }),
    );
    pre.push(h);
    const act = l === L - 1 ? ref.output : ref.hidden[l]!;
    let post: Mat;
    if (act.name === 'softmax') {
      post = h.map(softmaxRow);
    } else {
      const f = activation(act).f!;
      post = h.map((row) => row.map(f));
    }
    if (block && block[block.length - 1] === l) {
      const inp = blockInput!;
      post = post.map((row, i) => row.map((v, j) => inp[i]![j]! + ref.scale * v));
      blockInput = null;
    }
    a = post;
  }
  const logits = pre[L - 1]!;
  const out = a;
  const B = out.length;
  const elements = B * out[0]!.length;
  let loss = 0;
  switch (ref.loss) {
    case 'output':
      // Batch mean of the sum of the outputs.
      for (const row of out) for (const v of row) loss += v;
      loss /= B;
      break;
    case 'mse':
      // Mean over every element of (output − y)².
      out.forEach((row, i) => row.forEach((v, j) => { loss += (v - ref.y[i]![j]!) ** 2; }));
      loss /= elements;
      break;
    case 'categorical_crossentropy':
      // −(1/B) Σ_i Σ_j y_ij log softmax(z_i)_j, from the logits.
      expect(ref.output.name).toBe('softmax');
      logits.forEach((z, i) => logSoftmaxRow(z).forEach((lp, j) => { loss -= ref.y[i]![j]! * lp; }));
      loss /= B;
      break;
    case 'binary_crossentropy':
      // Mean of −[y log σ(z) + (1 − y) log(1 − σ(z))], with log σ(z) = −softplus(−z), log(1 − σ(z)) = −softplus(z).
      expect(ref.output.name).toBe('sigmoid');
      logits.forEach((z, i) => z.forEach((v, j) => {
        const y = ref.y[i]![j]!;
        loss += y * softplus(-v) + (1 - y) * softplus(v);
      }));
      loss /= elements;
      break;
  }
  return { loss, pre };
}

const STEP = 1e-5;

/** Central differences of the reference loss w.r.t. every weight and bias, and every pre-activation entry. */
function finiteDifferences(ref: Reference): { weight: Mat[]; bias: (number[] | null)[]; delta: Mat[] } {
  const lossAt = (): number => referenceForward(ref).loss;
  const central = (set: (v: number) => void, v0: number): number => {
    set(v0 + STEP);
    const up = lossAt();
    set(v0 - STEP);
    const down = lossAt();
    set(v0);
    return (up - down) / (2 * STEP);
  };
  const weight = ref.weights.map((W) => W.map((row) => row.map((v, j) => central((u) => { row[j] = u; }, v))));
  const bias = ref.biases.map((b) => (b ? b.map((v, j) => central((u) => { b[j] = u; }, v)) : null));
  const { pre } = referenceForward(ref);
  const delta = pre.map((h, l) => h.map((row, i) => row.map((_, j) => {
    const up = referenceForward(ref, { layer: l, row: i, col: j, eps: STEP }).loss;
    const down = referenceForward(ref, { layer: l, row: i, col: j, eps: -STEP }).loss;
    return (up - down) / (2 * STEP);
  })));
  return { weight, bias, delta };
}

const frobenius = (m: Mat | number[]): number =>
  Math.sqrt((m as (number | number[])[]).flat().reduce((s: number, v: number) => s + v * v, 0));
const maxAbs = (m: Mat): number => Math.max(...m.flat().map(Math.abs));

/** Points where the activation's derivative jumps: finite differences must not straddle them. */
function kinksOf(act: ActivationSpec): number[] {
  switch (act.name) {
    case 'relu': case 'leaky_relu': case 'elu': case 'selu': return [0];
    case 'relu6': return [0, 6];
    case 'hard_sigmoid': return [-3, 3];
    default: return [];
  }
}

function expectRelClose(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.abs(expected);
  expect(err, `${what}: analysis ${actual} vs reference ${expected} (relative error ${err})`).toBeLessThan(rel);
}

/** Deterministic normal-ish inline inputs: rows × cols, values N(0, 1) rounded to 4 decimals. */
function inlineX(rows: number, cols: number, seed: number): Mat {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.round(rng.normal() * 1e4) / 1e4));
}

interface Case {
  title: string;
  input: AnalysisSpecInput;
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

function caseFor(
  title: string,
  act: ActivationInput | ActivationInput[],
  loss: LossName,
  shape: { depth: number; widths?: number[]; width?: number; residual?: { every: number; scale: number } },
  seed: number,
): Case {
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
  return { title, input: { seed, network: net, data, loss, include: ['parameters', 'batch'] } };
}

const HIDDEN = ACTIVATION_NAMES.filter((a) => a !== 'softmax');
const LOSSES: LossName[] = ['mse', 'categorical_crossentropy', 'binary_crossentropy', 'output'];

const cases: Case[] = [];
HIDDEN.forEach((name, i) => {
  // Non-default alphas so the parameter matters (elu alpha ≠ 1 puts a kink at 0).
  const act: ActivationInput = name === 'leaky_relu' ? { name, alpha: 0.2 } : name === 'elu' ? { name, alpha: 1.5 } : name;
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

function referenceOf(spec: NormalizedSpec, result: AnalysisResult): Reference {
  expect(result.parameters).toBeDefined();
  expect(result.batch).toHaveLength(1);
  return {
    weights: result.parameters!.map((p) => p.weights.map((r) => [...r])),
    biases: result.parameters!.map((p) => (p.bias ? [...p.bias] : null)),
    x: result.batch![0]!.x,
    y: result.batch![0]!.y,
    hidden: spec.network.activations,
    output: spec.network.outputActivation,
    blocks: spec.network.blocks,
    scale: spec.network.residual.scale,
    loss: spec.loss,
  };
}

describe('finite-difference gradient check of the whole analysis path', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('covers every hidden activation, every loss and both residual layouts', () => {
    const covered = new Set(cases.map((c) => c.input.loss));
    expect([...covered].sort()).toEqual([...LOSSES].sort());
    const acts = new Set(cases.flatMap((c) => {
      const a = c.input.network.activation!;
      return (Array.isArray(a) ? a : [a]).map((v) => (typeof v === 'string' ? v : v.name));
    }));
    for (const name of HIDDEN) expect(acts.has(name), name).toBe(true);
  });

  it.each(cases.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const { spec, dataset } = normalizeSpec(c.input);
    if (c.input.network.residual) {
      // The residual layouts must actually produce blocks for this check to mean anything.
      const every = c.input.network.residual.every;
      expect(spec.network.blocks.length).toBeGreaterThan(0);
      spec.network.blocks.forEach((b) => expect(b).toHaveLength(every));
    }
    const { result } = runAnalysis(spec, dataset);
    const ref = referenceOf(spec, result);
    const B = ref.x.length;
    expect(result.batchSize).toBe(B);

    // No pre-activation of a kinked activation may sit within reach of the finite-difference step.
    const { loss, pre } = referenceForward(ref);
    pre.forEach((h, l) => {
      const act = l === pre.length - 1 ? ref.output : ref.hidden[l]!;
      for (const k of kinksOf(act)) {
        const closest = Math.min(...h.flat().map((v) => Math.abs(v - k)));
        expect(closest, `layer ${l} (${act.name}) pre-activation ${closest} from its kink at ${k}`).toBeGreaterThan(1e-3);
      }
    });

    expect(Math.abs(result.loss - loss)).toBeLessThan(1e-5 * Math.abs(loss) + 1e-6);

    const fd = finiteDifferences(ref);
    result.layers.forEach((layer, l) => {
      const gw = frobenius(fd.weight[l]!);
      const gb = frobenius(fd.bias[l]!);
      const delta = Math.sqrt(B) * frobenius(fd.delta[l]!);
      // A check against a zero gradient would only test 0 = 0.
      expect(gw, `layer ${l} FD weight gradient`).toBeGreaterThan(1e-4);
      expect(delta, `layer ${l} FD backprop`).toBeGreaterThan(1e-4);
      expectRelClose(layer.weightGradNorm, gw, 1e-3, `layer ${l} weightGradNorm`);
      expectRelClose(layer.weightGradMaxAbs, maxAbs(fd.weight[l]!), 1e-3, `layer ${l} weightGradMaxAbs`);
      expectRelClose(layer.biasGradNorm!, gb, 1e-3, `layer ${l} biasGradNorm`);
      expectRelClose(layer.backpropNorm, delta, 1e-3, `layer ${l} backpropNorm`);
      // ‖W‖_F and the residual block assignment come straight from the parameters and the spec.
      expectRelClose(layer.weightNorm, frobenius(ref.weights[l]!), 1e-6, `layer ${l} weightNorm`);
      const block = spec.network.blocks.findIndex((b) => b.includes(l));
      expect(layer.residualBlock).toBe(block === -1 ? null : block);
    });
  });

  it('backpropNorm is sqrt(B)·‖∂Loss/∂H‖_F: the same rows repeated twice give the same value, ‖∂Loss/∂H‖_F shrinks by √2', () => {
    const base = caseFor('dup', 'tanh', 'mse', { depth: 3, width: 4 }, 5).input;
    const doubled: AnalysisSpecInput = {
      ...base,
      data: { ...base.data, x: [...base.data.x!, ...base.data.x!], y: [...(base.data.y as number[][]), ...(base.data.y as number[][])] },
    };
    const run = (input: AnalysisSpecInput): { result: AnalysisResult; ref: Reference } => {
      const { spec, dataset } = normalizeSpec(input);
      const { result } = runAnalysis(spec, dataset);
      return { result, ref: referenceOf(spec, result) };
    };
    const one = run(base);
    const two = run(doubled);
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
