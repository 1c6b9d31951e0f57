// dropout { mode: "train" } on layer graphs against closed forms: x → dense (U linear units) → dropout(p) → dense head
// (1 unit), loss "output" (L = Σ outputs / B). The backprop signal at the first row is √B·‖∂L/∂H‖ with
// ∂L/∂h_bu = m_bu·v_u / ((1 − p)·B), m the keep mask and v the head's weights: exactly ‖v‖ in inference mode, and
// E[backpropNorm²] = ‖v‖² / (1 − p) with inverted dropout (the mean of B·U Bernoulli draws: a 5 % band is > 5σ here).
// Inference mode is the network without the layer, bit for bit; masks follow the seed; evaluations run it as inference.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import { runTraining } from '../../src/engine/runs/training-run.js';
import { DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { LayerInput } from '../../src/schemas/layers.js';
import type { TrainingSpecInput } from '../../src/schemas/training.js';

beforeAll(async () => {
  await useTestBackend();
});

const P = 0.5, U = 64, B = 512;
const layers = (dropout: LayerInput | null): LayerInput[] => [
  { kind: 'dense', units: U, useBias: false }, ...(dropout ? [dropout] : []), { kind: 'dense', units: 1, useBias: false },
];
const spec = (dropout: LayerInput | null, seed = 4): AnalysisSpecInput => ({
  seed, network: { layers: layers(dropout) }, data: { source: 'blobs', features: 8, classes: 2, batchSize: B }, loss: 'output', include: ['parameters'],
});

type Row = { backpropNorm: number; weightGradNorm: number };
async function rows(s: AnalysisSpecInput): Promise<{ rows: Row[]; head: number[] }> {
  const before = tf.memory().numTensors;
  const out = await analyze(s);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  const r = out.result as unknown as { layers: Row[]; parameters: { weights: number[][] }[] };
  return { rows: r.layers, head: r.parameters[1]!.weights.map((w) => w[0]!) };
}

const norm = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('dropout mode "train" on a layer graph against its closed form', () => {
  it('train mode: backpropNorm² at the first row is ‖v‖²/(1 − p) within the sampling band where inference mode gives ‖v‖ exactly; the masks follow the seed', async () => {
    // Inference mode (the default) is the network without the layer, bit for bit.
    const without = await rows(spec(null));
    const inference = await rows(spec({ kind: 'dropout', rate: P }));
    expect(inference.rows.map((r) => [r.backpropNorm, r.weightGradNorm])).toEqual(without.rows.map((r) => [r.backpropNorm, r.weightGradNorm]));
    expect(Math.abs(inference.rows[0]!.backpropNorm / norm(inference.head) - 1)).toBeLessThan(1e-5);
    const train = await rows(spec({ kind: 'dropout', rate: P, mode: 'train' }));
    expect(train.head).toEqual(inference.head);
    const ratio2 = (train.rows[0]!.backpropNorm / norm(train.head)) ** 2;
    expect(Math.abs(ratio2 * (1 - P) - 1), `backpropNorm²·(1 − p)/‖v‖² = ${ratio2 * (1 - P)}`).toBeLessThan(0.05);
    const again = await rows(spec({ kind: 'dropout', rate: P, mode: 'train' }));
    expect(again.rows[0]!.backpropNorm).toBe(train.rows[0]!.backpropNorm);
    const other = await rows(spec({ kind: 'dropout', rate: P, mode: 'train' }, 5));
    const otherRatio2 = (other.rows[0]!.backpropNorm / norm(other.head)) ** 2;
    expect(otherRatio2).not.toBe(ratio2);
    expect(Math.abs(otherRatio2 * (1 - P) - 1)).toBeLessThan(0.05);
  });

  it('in a training the steps drop and the evaluations do not: the initial evaluation loss is the inference network\'s', async () => {
    const training = (mode: 'train' | 'inference'): TrainingSpecInput => ({
      seed: 4, network: { layers: layers({ kind: 'dropout', rate: P, mode }) }, data: { source: 'blobs', features: 8, classes: 2, batchSize: B },
      loss: 'output', steps: 2, recordEvery: 1, optimizer: { name: 'sgd', learningRate: 0.01 },
    } as TrainingSpecInput);
    const before = tf.memory().numTensors;
    const train = (await runTraining(training('train'), DEFAULT_LIMITS)).result;
    const inference = (await runTraining(training('inference'), DEFAULT_LIMITS)).result;
    expect(tf.memory().numTensors).toBe(before);
    expect(train.initialLoss).toBe(inference.initialLoss);
    const b0 = (r: typeof train): number => r.records[0]!.layers[0]!.backpropNorm as number;
    const ratio2 = (b0(train) / b0(inference)) ** 2;
    expect(Math.abs(ratio2 * (1 - P) - 1), `step 0 backpropNorm² ratio ${ratio2}`).toBeLessThan(0.05);
    // Each step draws its own masks.
    expect(train.records[1]!.layers[0]!.backpropNorm).not.toBe(train.records[0]!.layers[0]!.backpropNorm);
  });
});
