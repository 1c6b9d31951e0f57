// The classic result of Hochreiter & Schmidhuber (1997) as a training's status: on the adding problem at length
// 100, with the same optimizer, data, seed and budget of steps, a simple tanh RNN stalls at the loss of the best
// constant prediction while an LSTM of the same size learns well below it. The baseline is theory's: the target
// u_a + u_b of two U(0, 1) values has variance 2 · 1/12 = 1/6, the mse of predicting its mean 1 — the level a
// network that cannot carry the first marked value across ≥ 50 steps is left at. Both trainings record the
// gradient through time at every recordEvery step. Real compute on the test backend (native in CI); slow
// (the LSTM's 1200 steps are ~0.12 s of CPU each on native, ~2.5 min; the RNN's ~1/3 of that), so it is not a
// numeric file and runs once, on the suite's backend. The LSTM leaves the plateau late: seed 1 between steps 900
// and 1000 (fewer steps, 800, left it stalled), PyTorch with the same set-up between 750 and 1200 by seed.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { runTraining, type TrainingResult } from '../../src/engine/runs/training-run.js';
import type { TrainingSpecInput } from '../../src/schemas/training.js';

beforeAll(async () => {
  await useTestBackend();
});

const T = 100;
const UNITS = 32;
const STEPS = 1200;
const RECORD_EVERY = 300;
/** Var(u_a + u_b), u ~ U(0, 1) independent: the mse of the best constant prediction. */
const THEORY_BASELINE = 2 / 12;

function spec(layer: Record<string, unknown>): TrainingSpecInput {
  return {
    seed: 1,
    network: { input: [T, 2], layers: [layer, { kind: 'dense', units: 1, activation: 'linear' }] },
    data: { source: 'adding', length: T, samples: 1000, batchSize: 32 },
    loss: 'mse',
    steps: STEPS,
    recordEvery: RECORD_EVERY,
    optimizer: { name: 'adam', learningRate: 0.01 },
  } as unknown as TrainingSpecInput;
}

async function train(layer: Record<string, unknown>): Promise<TrainingResult> {
  const before = tf.memory().numTensors;
  const { result } = await runTraining(spec(layer));
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  return result;
}

function expectThroughTimeRecords(r: TrainingResult): void {
  expect(r.records.map((rec) => rec.step)).toEqual(Array.from({ length: STEPS / RECORD_EVERY + 1 }, (_, k) => k * RECORD_EVERY));
  for (const rec of r.records) {
    expect(rec.throughTime, `record at step ${rec.step}`).toHaveLength(1);
    const norms = rec.throughTime![0]!.norms;
    expect(norms).toHaveLength(T);
    norms.forEach((v) => expect(typeof v === 'number' && v >= 0).toBe(true));
  }
}

/** What both trainings must show: the baseline measured on the data agrees with theory, and the records. */
function expectCommon(r: TrainingResult): void {
  // Sampling error of the variance over 1000 examples ≈ 1/6 · √(1.4 / 1000) ≈ 0.006 (the triangular law's kurtosis 2.4).
  expect(Math.abs((r.baselineLoss as number) - THEORY_BASELINE)).toBeLessThan(0.02);
  expectThroughTimeRecords(r);
}

// The same spec but for the recurrent layer: data, seed, Adam 0.01, batch 32 and STEPS steps.
describe(`the adding problem at length ${T}, ${UNITS} units, Adam 0.01, batch 32, ${STEPS} steps`, () => {
  it('a simple tanh RNN stalls at the best constant prediction\'s loss', { timeout: 1_200_000 }, async () => {
    const rnn = await train({ kind: 'simple_rnn', units: UNITS, activation: 'tanh' });
    expectCommon(rnn);
    expect(rnn.status, rnn.reasons.join('; ')).toBe('stalled');
    expect(rnn.finalLoss as number).toBeGreaterThan(0.9 * THEORY_BASELINE);
  });

  it('an LSTM of the same size learns well below it', { timeout: 1_200_000 }, async () => {
    const lstm = await train({ kind: 'lstm', units: UNITS, forgetBias: 1 });
    expectCommon(lstm);
    expect(lstm.status, lstm.reasons.join('; ')).toBe('learning');
    expect(lstm.finalLoss as number).toBeLessThan(0.3 * THEORY_BASELINE);
  });
});
