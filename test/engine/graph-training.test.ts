// Trainings of layer graphs against a float64 PyTorch oracle (test/support/graph_train_reference.py): a small
// CNN with batch norm, layer norm, an identity and a projection shortcut, pooling and a dense head, trained for
// a few SGD steps; PyTorch replays the same steps from the initial parameters and minibatches the training
// returns, and every step's loss, every row's weight-gradient norm and every parameter's total update agree.
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
type Params = { index: number; weights: unknown; bias: number[] | null; auxParameters?: { name: string; values: number[] }[] }[];

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
    ref.steps.forEach((s, step) => {
      const rec = out.result.records[step]!;
      expect(Math.abs((rec.loss as number) - s.loss) / s.loss, `step ${step} loss ${rec.loss} vs ${s.loss}`).toBeLessThan(1e-4);
      s.weightGradNorms.forEach((g, row) => {
        const got = rec.layers[row]!.weightGradNorm as number;
        expect(Math.abs(got - g) / g, `step ${step} ${out.result.layers[row]!.path}: ${got} vs ${g}`).toBeLessThan(5e-4);
      });
    });
  });

  it('every parameter\'s total update after the steps equals PyTorch\'s (weights, biases, gamma and beta)', () => {
    const initial = out.result.parameters as Params, final = out.result.finalParameters as Params;
    expect(final).toHaveLength(ref.final.length);
    ref.final.forEach((r, row) => {
      const refTensors = [r.weights, ...(r.bias ? [r.bias] : []), ...r.aux];
      const start = flat(initial[row]!), end = flat(final[row]!);
      expect(end).toHaveLength(refTensors.length);
      refTensors.forEach((want, k) => {
        const ours = end[k]!.map((v, i) => v - start[k]![i]!);
        const theirs = want.map((v, i) => v - start[k]![i]!);
        const err = norm(ours.map((v, i) => v - theirs[i]!)) / norm(theirs);
        expect(norm(theirs), `${out.result.layers[row]!.path} tensor ${k} moved`).toBeGreaterThan(1e-4);
        expect(err, `${out.result.layers[row]!.path} tensor ${k}: ‖Δ − Δ_torch‖/‖Δ_torch‖`).toBeLessThan(1e-3);
      });
    });
  });

  it('keeps the tensor count flat across records and leaves nothing behind', () => {
    expect(counts).toHaveLength(STEPS + 1);
    // Records during the steps hold the next parameters beside the current ones; the last one holds only these.
    expect(new Set(counts.slice(0, STEPS)).size, `tensors at each record: ${counts.join(', ')}`).toBe(1);
    expect(counts[STEPS]!).toBeLessThanOrEqual(counts[0]!);
    expect(leaked).toBe(0);
  });
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
