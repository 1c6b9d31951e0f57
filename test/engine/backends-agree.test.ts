// Every documented activation in every network shape gives the same gradients on every backend that loads as on cpu (pure JavaScript).
//
// Two views of the same networks on each backend, both against the cpu backend in this process:
// - the product path: runAnalysis (forward, autodiff, host statistics) and its per-layer norms;
// - whole tensors: ∂L/∂W, ∂L/∂b, ∂L/∂h and the auxiliary parameters' gradients from the network's own
//   forward pass and tfjs autodiff, compared element by element through ‖g − g_cpu‖ / ‖g_cpu‖.
//
// Tolerances, relative: RTOL = 2e-6, and RTOL_BATCH_NORM = 3e-5 for batch-normalised networks. The
// backends compute in float32 and differ in how they sum: the cpu backend's JavaScript kernels
// accumulate each dot product in a double and round once (its gradients do not change by one bit when
// the batch rows are reversed), while OpenBLAS and XNNPACK accumulate in float32, and wasm has its own
// exp, tanh and erf. Each op then differs by a few float32 ulps (2^-24 ≈ 6e-8) times the length of the
// sums, over ~40 ops per gradient of these 6-layer networks. Measured here, over all cases: at most
// 1.0e-6 without batch norm (layer norm, wasm) and 1.2e-5 with it (native; hard_sigmoid and sigmoid).
// Batch norm's backward pass projects ∂L/∂z onto what the batch mean and variance leave free,
// δ_h = (γ/σ)(δ_z − mean δ_z − n·mean(δ_z n)), and where δ_z is mostly the removed part the
// difference keeps δ_z's absolute rounding: the relative error grows by ‖δ_z‖/‖δ_h‖ at each of the
// five batch-norm layers. The tolerances leave ~2x room for another CPU's rounding; a real defect (a
// kernel that drops a term, a dtype slip, an unsupported case throwing) moves gradients by far more.
// Where a gradient is exactly zero in exact arithmetic (a bias followed by batch norm, whose mean
// removes it; β before a linear-ish activation and the next batch norm) both backends report rounding
// noise: that is compared against the tolerance times the layer's ∂L/∂W (for b) or ∂L/∂γ (for β).
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADED_BACKENDS, useBackend, type InProcessBackend } from '../backends.js';
import { ACTIVATION_NAMES } from '../../src/engine/model/activations.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { readTogether, runAnalysis, targetsFor, type AnalysisResult } from '../../src/engine/measure/measure.js';
import { activationsFor, auxIsVector, forward, initParameters, lossOf } from '../../src/engine/model/network.js';
import { sampleBatches } from '../../src/engine/data/datasets.js';
import { deriveSeed } from '../../src/engine/common/random.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

const RTOL = 2e-6;
const RTOL_BATCH_NORM = 3e-5;

const HIDDEN = ACTIVATION_NAMES.filter((a) => a !== 'softmax');

const SHAPES: Record<string, Partial<NonNullable<AnalysisSpecInput['network']>>> = {
  plain: {},
  residual: { residual: { every: 2 } },
  'layer norm': { normalization: 'layer' },
  'batch norm': { normalization: 'batch' },
};

/** The residual variants with learnable auxiliary parameters, once each (ReLU, as their papers use). */
const VARIANTS: Record<string, Partial<NonNullable<AnalysisSpecInput['network']>>> = {
  rezero: { residual: { every: 2, variant: 'rezero' } },
  skipinit: { residual: { every: 2, variant: 'skipinit' } },
  fixup: { residual: { every: 2, variant: 'fixup' } },
};

interface Case { name: string; input: AnalysisSpecInput; rtol: number }

const CASES: Case[] = [
  ...HIDDEN.flatMap((activation) => Object.entries(SHAPES).map(([shape, extra]) => ({
    name: `${activation}, ${shape}`,
    // Softmax + categorical cross-entropy at the output (blobs has 3 classes), so softmax is covered too.
    input: { seed: 5, network: { depth: 6, width: 16, activation, ...extra }, data: { source: 'blobs', batchSize: 32 } } as AnalysisSpecInput,
    rtol: extra.normalization === 'batch' ? RTOL_BATCH_NORM : RTOL,
  }))),
  ...Object.entries(VARIANTS).map(([variant, extra]) => ({
    name: `relu, ${variant}`,
    input: { seed: 5, network: { depth: 6, width: 16, activation: 'relu', ...extra }, data: { source: 'blobs', batchSize: 32 } } as AnalysisSpecInput,
    rtol: RTOL,
  })),
];

interface Measured {
  /** runAnalysis' per-layer numbers. */
  layers: Pick<AnalysisResult['layers'][number], 'weightGradNorm' | 'backpropNorm' | 'biasGradNorm'>[];
  loss: number;
  /** Whole gradient tensors by name (w0, b0, delta0, aux:gamma@1, …), in float64 copies. */
  tensors: Map<string, Float64Array>;
}

/** ∂L/∂(every parameter) and ∂L/∂h^l of one batch, through the network's forward pass and tfjs autodiff. */
async function wholeGradients(input: AnalysisSpecInput): Promise<Map<string, Float64Array>> {
  const { spec, dataset } = normalizeSpec(input);
  const params = initParameters(spec.network, spec.seed);
  const [batch] = sampleBatches(dataset, spec.data.batchSize, 1, deriveSeed(spec.seed, 'batches'));
  const { layers } = params;
  const target = targetsFor(dataset, spec.loss, batch!);
  // Kept past the scope and read together afterwards: webgpu reads asynchronously only.
  const named: [string, tf.Tensor][] = [];
  tf.tidy(() => {
    const x = tf.tensor2d(batch!.x, [batch!.size, layers[0]!.inputUnits]);
    const y = tf.tensor2d(target.values, [batch!.size, target.width]);
    const weights = layers.map((l) => tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units]));
    const biases = layers.map((l) => (params.biases[l.index] ? tf.tensor1d(params.biases[l.index]!) : null));
    const aux = (params.aux ?? []).map((p) => ({ layer: p.layer, name: p.name, tensor: auxIsVector(p.name) ? tf.tensor1d(p.values) : tf.scalar(p.values[0]!) }));
    const probes = layers.map((l) => tf.zeros([batch!.size, l.units]) as tf.Tensor2D);
    const withBias = biases.filter((b): b is tf.Tensor1D => b !== null);
    const acts = activationsFor(layers);
    const L = layers.length;
    const f = (...args: tf.Tensor[]): tf.Scalar => {
      let k = L;
      const bs = biases.map((b) => (b ? (args[k++] as tf.Tensor1D) : null));
      const ps = args.slice(k, k + L) as tf.Tensor2D[];
      const auxT = aux.map((p, i) => ({ ...p, tensor: args[k + L + i]! }));
      const { logits, output } = forward({
        layers, acts, residualScale: spec.network.residual.scale, weights: args.slice(0, L) as tf.Tensor2D[], biases: bs,
        probes: ps, x, aux: auxT, normalization: spec.network.normalization,
      });
      return lossOf(spec.loss, layers[L - 1]!.activation, logits, output, y);
    };
    const { grads } = tf.valueAndGrads(f)([...weights, ...withBias, ...probes, ...aux.map((p) => p.tensor)]);
    const keep = (key: string, t: tf.Tensor): void => { named.push([key, tf.keep(t)]); };
    let k = L;
    layers.forEach((l, i) => keep(`w${l.index}`, grads[i]!));
    biases.forEach((b, i) => { if (b) keep(`b${i}`, grads[k++]!); });
    layers.forEach((l) => keep(`delta${l.index}`, grads[k++]!));
    aux.forEach((p) => keep(`aux:${p.name}@${p.layer}`, grads[k++]!));
  });
  try {
    const values = await readTogether(named.map(([, t]) => t));
    return new Map(named.map(([key], i) => [key, Float64Array.from(values[i]!)]));
  } finally {
    tf.dispose(named.map(([, t]) => t));
  }
}

async function measure(input: AnalysisSpecInput): Promise<Measured> {
  const { spec, dataset } = normalizeSpec(input);
  const { result } = (await runAnalysis(spec, dataset));
  return {
    loss: result.loss,
    layers: result.layers.map((l) => ({ weightGradNorm: l.weightGradNorm, backpropNorm: l.backpropNorm, biasGradNorm: l.biasGradNorm })),
    tensors: await wholeGradients(input),
  };
}

const norm = (a: Float64Array): number => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

function relDiff(a: number, b: number): number {
  return a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

/** Where `got` differs from the cpu reference by more than the tolerance; also the largest relative difference seen. */
function differences(got: Measured, ref: Measured, rtol: number): { problems: string[]; worst: number } {
  const problems: string[] = [];
  let worst = 0;
  const check = (what: string, diff: number, scale: number, floor = 0): void => {
    const rel = diff === 0 ? 0 : diff / Math.max(scale, floor);
    if (!(rel <= rtol)) problems.push(`${what}: relative difference ${rel.toExponential(2)} > ${rtol}`);
    if (Number.isFinite(rel)) worst = Math.max(worst, rel);
  };
  check('loss', Math.abs(got.loss - ref.loss), Math.abs(ref.loss));
  ref.layers.forEach((r, l) => {
    const g = got.layers[l]!;
    check(`layer ${l} weightGradNorm`, Math.abs(g.weightGradNorm - r.weightGradNorm), r.weightGradNorm);
    check(`layer ${l} backpropNorm`, Math.abs(g.backpropNorm - r.backpropNorm), r.backpropNorm);
    if (r.biasGradNorm !== null) check(`layer ${l} biasGradNorm`, Math.abs(g.biasGradNorm! - r.biasGradNorm), r.biasGradNorm, r.weightGradNorm);
  });
  expect([...got.tensors.keys()]).toEqual([...ref.tensors.keys()]);
  for (const [name, r] of ref.tensors) {
    const g = got.tensors.get(name)!;
    expect(g.length, name).toBe(r.length);
    const d = new Float64Array(r.length);
    for (let i = 0; i < r.length; i++) d[i] = g[i]! - r[i]!;
    // Bias gradients share their layer's scale (exactly 0 before batch norm: rounding noise on both sides).
    const floor = name.startsWith('b') ? norm(ref.tensors.get(`w${name.slice(1)}`)!)
      : name.startsWith('aux:beta') ? norm(ref.tensors.get(name.replace('beta', 'gamma'))!) : 0;
    check(`∂L/∂${name} (whole tensor)`, norm(d), norm(r), floor);
  }
  return { problems, worst };
}

const others = LOADED_BACKENDS.filter((b) => b !== 'cpu');

describe(`gradients on ${others.join(', ')} equal cpu's for every activation × {plain, residual, layer norm, batch norm} (relative ${RTOL.toExponential()}, batch norm ${RTOL_BATCH_NORM.toExponential()})`, () => {
  const reference = new Map<string, Measured>();

  beforeAll(async () => {
    await useBackend('cpu');
    for (const c of CASES) reference.set(c.name, (await measure(c.input)));
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('covers every hidden activation of the catalogue in each shape', async () => {
    expect(CASES.length).toBe(HIDDEN.length * 4 + 3);
    expect(HIDDEN).toContain('relu6');
    expect(HIDDEN.length).toBe(ACTIVATION_NAMES.length - 1);
  });

  it.each(others.map((b) => [b] as [InProcessBackend]))('%s', async (backend) => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const failures: string[] = [];
    let worst = 0;
    for (const c of CASES) {
      let got: Measured;
      try {
        got = (await measure(c.input));
      } catch (err) {
        failures.push(`${c.name}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        continue;
      }
      const d = differences(got, reference.get(c.name)!, c.rtol);
      worst = Math.max(worst, d.worst / c.rtol);
      failures.push(...d.problems.map((p) => `${c.name}: ${p}`));
    }
    expect(failures, `${backend} against cpu`).toEqual([]);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    // The tolerance is not hiding a large discrepancy: report what was seen.
    console.info(`${backend}: largest difference from cpu over ${CASES.length} networks: ${worst.toFixed(2)} of the tolerance`);
  });
});
