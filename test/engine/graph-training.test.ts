// Trainings of layer graphs against a float64 PyTorch oracle (test/support/graph_train_reference.py): a small
// CNN with batch norm, layer norm, an identity and a projection shortcut, pooling and a dense head, trained for
// a few steps of SGD, momentum, Adam and RMSprop (and graphs with residual variants); PyTorch replays the same
// steps from the initial parameters and minibatches the training returns, and every step's loss, every row's
// weight-gradient norm and every parameter's total update agree.
// Plus: tensor counts flat across records, nothing left behind, cancellation, and the graph fields of rows.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { runTraining, type TrainingOutput } from '../../src/engine/runs/training-run.js';
import { DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { CancelledError } from '../../src/engine/common/errors.js';
import type { TrainingSpecInput } from '../../src/schemas/training.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../support/graph_train_reference.py', import.meta.url));
const TORCH_ENV = { ...process.env, OMP_NUM_THREADS: '1' };

beforeAll(async () => {
  await useTestBackend();
});

const STEPS = 3;
const SPEC: TrainingSpecInput = {
  seed: 5,
  network: {
    input: [8, 8, 1],
    layers: [
      // Biases before a batch norm get exactly 0 gradient: float32 noise against float64 zero is no test.
      { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm', activation: 'relu' },
      { kind: 'residual', shortcut: 'identity', activation: 'relu', layers: [
        { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm', activation: 'relu' },
        { kind: 'conv2d', filters: 4, kernel: 3 },
      ] },
      { kind: 'max_pool', size: 2 },
      { kind: 'residual', shortcut: 'projection', activation: 'tanh', layers: [
        { kind: 'conv2d', filters: 6, kernel: 3, stride: 2 }, { kind: 'layer_norm', activation: 'relu' }, { kind: 'conv2d', filters: 6, kernel: 3 },
      ] },
      { kind: 'global_avg_pool' },
      { kind: 'dense' },
    ],
  },
  data: { source: 'shapes', height: 8, width: 8, samples: 40, batchSize: 8 },
  steps: STEPS,
  recordEvery: 1,
  optimizer: { name: 'sgd', learningRate: 0.5 },
  include: ['parameters', 'batches'],
} as TrainingSpecInput;

interface Oracle {
  steps: { loss: number; weightGradNorms: number[] }[];
  final: { weights: number[]; bias: number[] | null; aux: number[][] }[];
}
type Params = { index: number; path?: string; weights: unknown; bias: number[] | null; auxParameters?: { name: string; values: number[] }[] }[];

function oracle(out: TrainingOutput): Oracle {
  const body = { spec: out.spec, parameters: out.result.parameters, batches: out.result.batches };
  const run = spawnSync(PYTHON, [SCRIPT], { input: JSON.stringify(body), env: TORCH_ENV, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`graph_train_reference.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as Oracle;
}

/** Every tensor of a row flattened: weights (nested [kh][kw][c_in][c_out] or [in][units]), bias, then gamma/beta. */
function flat(p: Params[number]): number[][] {
  return [(p.weights as unknown[]).flat(3) as number[], ...(p.bias ? [p.bias] : []), ...(p.auxParameters ?? []).map((a) => a.values)];
}

const norm = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** Every record's loss and every row's ‖∂L/∂W‖ against PyTorch's same step (an exact 0, e.g. behind a closed gate, must be 0). */
function expectStepsMatch(out: TrainingOutput, ref: Oracle): void {
  ref.steps.forEach((s, step) => {
    const rec = out.result.records[step]!;
    expect(Math.abs((rec.loss as number) - s.loss) / s.loss, `step ${step} loss ${rec.loss} vs ${s.loss}`).toBeLessThan(1e-4);
    s.weightGradNorms.forEach((g, row) => {
      const got = rec.layers[row]!.weightGradNorm as number;
      const what = `step ${step} ${out.result.layers[row]!.path}: ${got} vs ${g}`;
      if (g === 0) expect(got, what).toBe(0);
      else expect(Math.abs(got - g) / g, what).toBeLessThan(5e-4);
    });
  });
}

/** Each parameter tensor's total update Δ = final − initial against PyTorch's, relative to ‖Δ_torch‖. */
function expectUpdatesMatch(out: TrainingOutput, ref: Oracle, everyTensorMoves: boolean): void {
  const initial = out.result.parameters as Params, final = out.result.finalParameters as Params;
  expect(final).toHaveLength(ref.final.length);
  ref.final.forEach((r, row) => {
    const refTensors = [r.weights, ...(r.bias ? [r.bias] : []), ...r.aux];
    const start = flat(initial[row]!), end = flat(final[row]!);
    expect(end).toHaveLength(refTensors.length);
    refTensors.forEach((want, k) => {
      const ours = end[k]!.map((v, i) => v - start[k]![i]!);
      const theirs = want.map((v, i) => v - start[k]![i]!);
      const what = `${out.result.layers[row]!.path} tensor ${k}`;
      if (everyTensorMoves) expect(norm(theirs), `${what} moved`).toBeGreaterThan(1e-4);
      expect(norm(ours.map((v, i) => v - theirs[i]!)), `${what}: ‖Δ − Δ_torch‖ vs ‖Δ_torch‖ ${norm(theirs)}`).toBeLessThanOrEqual(1e-3 * norm(theirs) + 1e-7);
    });
  });
}

describe('a layer graph trained with SGD against PyTorch float64', () => {
  let out: TrainingOutput;
  let ref: Oracle;
  let counts: number[];
  let leaked: number;

  beforeAll(async () => {
    const before = tf.memory().numTensors;
    counts = [];
    out = await runTraining(SPEC, DEFAULT_LIMITS, { onRecord: () => counts.push(tf.memory().numTensors) });
    leaked = tf.memory().numTensors - before;
    ref = oracle(out);
  }, 120_000);

  it('reports the rows by path, kind, shape and block, as analyses do', () => {
    expect(out.result.layers.map((l) => `${l.path} ${l.kind} ${l.outputShape!.join('x')} ${l.block} ${l.shortcut}`)).toEqual([
      'conv1 conv2d 8x8x4 null false',
      'block1.conv1 conv2d 8x8x4 block1 false', 'block1.conv2 conv2d 8x8x4 block1 false',
      'block2.conv1 conv2d 2x2x6 block2 false', 'block2.conv2 conv2d 2x2x6 block2 false', 'block2.shortcut conv2d 2x2x6 block2 true',
      'dense1 dense 4 null false',
    ]);
    for (const r of out.result.records) expect(r.layers).toHaveLength(7);
  });

  it('every step\'s minibatch loss and every row\'s weight-gradient norm equal PyTorch\'s', () => {
    expect(out.result.records.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expectStepsMatch(out, ref);
  });

  it('every parameter\'s total update after the steps equals PyTorch\'s (weights, biases, gamma and beta)', () => {
    expectUpdatesMatch(out, ref, true);
  });

  it('keeps the tensor count flat across records and leaves nothing behind', () => {
    expect(counts).toHaveLength(STEPS + 1);
    // Records during the steps hold the next parameters beside the current ones; the last one holds only these.
    expect(new Set(counts.slice(0, STEPS)).size, `tensors at each record: ${counts.join(', ')}`).toBe(1);
    expect(counts[STEPS]!).toBeLessThanOrEqual(counts[0]!);
    expect(leaked).toBe(0);
  });
});

describe('the optimizers on a layer graph against torch.optim', () => {
  const optimizers = [
    { name: 'momentum', learningRate: 0.1, momentum: 0.9, nesterov: true },
    { name: 'adam', learningRate: 0.01 },
    { name: 'rmsprop', learningRate: 0.005 },
  ] as const;
  for (const optimizer of optimizers) {
    it(`${optimizer.name}: every step's loss and gradient norms, and every parameter's total update, as PyTorch's`, async () => {
      const out = await runTraining({ ...SPEC, optimizer } as TrainingSpecInput, DEFAULT_LIMITS);
      const ref = oracle(out);
      expectStepsMatch(out, ref);
      expectUpdatesMatch(out, ref, true);
    }, 120_000);
  }
});

describe('a layer graph training stops on cancel', () => {
  it('throws CancelledError after the first record and leaves no tensors', async () => {
    const before = tf.memory().numTensors;
    let records = 0;
    const spec = { ...SPEC, steps: 20, include: undefined } as TrainingSpecInput;
    await expect(runTraining(spec, DEFAULT_LIMITS, { onRecord: () => { records++; }, isCancelled: () => records > 0 })).rejects.toBeInstanceOf(CancelledError);
    expect(records).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});

/** A conv net with two residual blocks of the given variant (two conv rows each) and a dense head. */
function variantSpec(variant: 'rezero' | 'skipinit' | 'fixup', scale?: number): TrainingSpecInput {
  const block = (filters: number) => ({
    kind: 'residual', variant, ...(scale !== undefined ? { scale } : {}), activation: 'relu', layers: [
      { kind: 'conv2d', filters, kernel: 3, activation: 'relu' }, { kind: 'conv2d', filters, kernel: 3 },
    ],
  });
  return {
    ...SPEC,
    network: { input: [8, 8, 1], init: { weights: 'he_normal' }, layers: [
      { kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu' }, block(4), { kind: 'max_pool', size: 2 }, block(4),
      { kind: 'global_avg_pool' }, { kind: 'dense' },
    ] },
    steps: 4,
  } as TrainingSpecInput;
}

describe('residual variants on layer graphs against PyTorch float64 and closed forms', () => {
  for (const [variant, scale] of [['rezero', undefined], ['skipinit', 0.5], ['fixup', undefined]] as const) {
    it(`${variant}${scale !== undefined ? ` (scale ${scale})` : ''}: 4 SGD steps, every loss, gradient norm and update as PyTorch's`, async () => {
      const before = tf.memory().numTensors;
      const out = await runTraining(variantSpec(variant, scale), DEFAULT_LIMITS);
      expect(tf.memory().numTensors).toBe(before);
      const ref = oracle(out);
      expectStepsMatch(out, ref);
      expectUpdatesMatch(out, ref, false);
      // The learnable scalars are there, on the branch's last row, with their initial values.
      const initial = out.result.parameters as Params;
      const gates = initial.flatMap((p) => (p.auxParameters ?? []).filter((a) => a.name === 'gate' || a.name === 'fixup_scale').map((a) => `${p.path} ${a.name} ${a.values[0]}`));
      const name = variant === 'fixup' ? 'fixup_scale' : 'gate';
      const init = scale ?? (variant === 'fixup' ? 1 : 0);
      expect(gates).toEqual([`block1.conv2 ${name} ${init}`, `block2.conv2 ${name} ${init}`]);
    }, 120_000);
  }

  it('rezero at α = 0: the branch rows\' weight gradients are exactly 0 at step 0, the gates\' are not, and the branches open after one update', async () => {
    const out = await runTraining({ ...variantSpec('rezero'), include: undefined, steps: 1 } as TrainingSpecInput, DEFAULT_LIMITS);
    const [first, second] = out.result.records;
    const branch = out.result.layers.filter((l) => l.block !== null).map((l) => l.index);
    expect(branch).toHaveLength(4);
    for (const i of branch) {
      expect(first!.layers[i]!.weightGradNorm).toBe(0);
      // The last conv of each branch sees its gate's gradient after one update (the gate moved off 0).
      if (out.result.layers[i]!.path!.endsWith('conv2')) expect(second!.layers[i]!.weightGradNorm as number).toBeGreaterThan(0);
    }
    expect(first!.layers[0]!.weightGradNorm as number).toBeGreaterThan(0);
  }, 60_000);

  it('fixup\'s initialisation: the plain draws with the inner branch rows × L^(−1/(2m−2)) = 2^(−1/2), the last branch rows and the head zero', async () => {
    const spec = (variant: 'plain' | 'fixup'): TrainingSpecInput => {
      const s = variantSpec('fixup');
      const layers = (s.network.layers as { kind: string; variant?: string }[]).map((l) => (l.kind === 'residual' ? { ...l, variant } : l));
      return { ...s, network: { ...s.network, layers }, steps: 1, include: ['parameters'] } as TrainingSpecInput;
    };
    const plain = (await runTraining(spec('plain'), DEFAULT_LIMITS)).result.parameters as Params;
    const fixup = (await runTraining(spec('fixup'), DEFAULT_LIMITS)).result.parameters as Params;
    const w = (p: Params[number]): number[] => (p.weights as unknown[]).flat(3) as number[];
    const factor = 2 ** (-1 / 2);
    plain.forEach((p, row) => {
      const expected = p.path!.endsWith('.conv1') ? w(p).map((v) => Math.fround(v * factor))
        : p.path!.endsWith('.conv2') || p.path === 'dense1' ? w(p).map(() => 0) : w(p);
      expect(w(fixup[row]!), p.path).toEqual(expected);
    });
  }, 60_000);
});
