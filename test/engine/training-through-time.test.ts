// records[].throughTime of a training against a float64 oracle on the host: a tanh simple RNN with a linear
// dense head trained a few SGD steps; from the parameters and minibatch the result returns (include:
// ["parameters", "batches"]) the oracle runs h_t = tanh(x_t W + h_{t−1} U + b) forward and ∂ℓ_i/∂h_t backward
// (∂ℓ_i/∂h_{T−1} = 2(out_i − y_i)·W_d, ∂ℓ_i/∂h_t = (∂ℓ_i/∂h_{t+1} ⊙ (1 − h_{t+1}²))·Uᵀ) and takes the RMS over
// the examples — the documented norms[t] — for the first record (initial parameters) and the last (final ones).
// Plus: an entry per recurrent layer in every record, none for a network without one, the through-time
// budget refused before compute, and no tensors left behind.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { prepareTraining, runTraining } from '../../src/engine/runs/training-run.js';
import { memoryHorizonOf } from '../../src/engine/diagnosis/through-time-verdict.js';
import { MAX_TRAINING_THROUGH_TIME_VALUES, type TrainingSpecInput } from '../../src/schemas/training.js';
import type { ParametersJson } from '../../src/engine/measure/measure.js';
import { Rng } from '../../src/engine/common/random.js';
import { SpecError } from '../../src/engine/common/errors.js';

beforeAll(async () => {
  await useTestBackend();
});

const T = 12;
const F = 2;
const UNITS = 4;

function sequences(n: number): { x: number[][][]; y: number[][] } {
  const rng = new Rng(3);
  const x = Array.from({ length: n }, () => Array.from({ length: T }, () => Array.from({ length: F }, () => rng.normal())));
  return { x, y: x.map(() => [rng.normal()]) };
}

const SPEC = {
  seed: 4,
  network: { input: [T, F], layers: [{ kind: 'simple_rnn', units: UNITS }, { kind: 'dense', units: 1, activation: 'linear' }] },
  data: { source: 'inline', ...sequences(10), batchSize: 5 },
  loss: 'mse',
  steps: 4,
  recordEvery: 2,
  optimizer: { name: 'sgd', learningRate: 0.5 },
  include: ['parameters', 'batches'],
} as unknown as TrainingSpecInput;

type Row = { weights: number[][]; bias: number[] | null; auxParameters?: { name: string; values: number[] }[] };

/** RMS over the examples of ‖∂ℓ_i/∂h_t‖ for t = 0 … T−1, in float64 from the parameters and the rows. */
function oracleNorms(params: ParametersJson, xs: number[][], ys: number[][]): number[] {
  const [rnn, head] = params as unknown as Row[];
  const W = rnn!.weights, b = rnn!.bias ?? new Array<number>(UNITS).fill(0);
  const u = rnn!.auxParameters!.find((a) => a.name === 'recurrent_kernel')!.values;
  const U = (i: number, j: number): number => u[i * UNITS + j]!;
  const sq = new Array<number>(T).fill(0);
  xs.forEach((flat, n) => {
    const h: number[][] = [];
    let prev = new Array<number>(UNITS).fill(0);
    for (let t = 0; t < T; t++) {
      prev = prev.map((_, j) => {
        let a = b[j]!;
        for (let f = 0; f < F; f++) a += flat[t * F + f]! * W[f]![j]!;
        for (let i = 0; i < UNITS; i++) a += prev[i]! * U(i, j);
        return Math.tanh(a);
      });
      h.push(prev);
    }
    const out = h[T - 1]!.reduce((s, v, j) => s + v * head!.weights[j]![0]!, head!.bias?.[0] ?? 0);
    let g = head!.weights.map((w) => 2 * (out - ys[n]![0]!) * w[0]!);
    for (let t = T - 1; t >= 0; t--) {
      sq[t]! += g.reduce((s, v) => s + v * v, 0);
      if (t === 0) break;
      const da = g.map((v, j) => v * (1 - h[t]![j]! ** 2));
      g = Array.from({ length: UNITS }, (_, i) => da.reduce((s, v, j) => s + v * U(i, j), 0));
    }
  });
  return sq.map((s) => Math.sqrt(s / xs.length));
}

describe('trainings record the gradient through time', () => {
  it('every record has norms[t] per recurrent layer, equal to a float64 oracle on the first and last record', async () => {
    const before = tf.memory().numTensors;
    const { result } = await runTraining(SPEC);
    expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
    expect(result.records.map((r) => r.step)).toEqual([0, 2, 4]);
    for (const r of result.records) {
      expect(r.throughTime).toHaveLength(1);
      expect(r.throughTime![0]!.layer).toBe(0);
      expect(r.throughTime![0]!.norms).toHaveLength(T);
      expect(r.throughTime![0]!.gateMean).toBeNull();
    }
    const { indices, examples } = result.batches!;
    const rowsOf = (s: number) => indices[s]!.map((i) => examples.index.indexOf(i));
    const cases = [
      { record: result.records[0]!, params: result.parameters!, rows: rowsOf(0) },
      { record: result.records[2]!, params: result.finalParameters!, rows: rowsOf(4) },
    ];
    for (const { record, params, rows } of cases) {
      const expected = oracleNorms(params, rows.map((r) => examples.x[r]!), rows.map((r) => examples.y[r]!));
      const got = record.throughTime![0]!.norms as number[];
      got.forEach((v, t) => expect(Math.abs(v - expected[t]!) / expected[t]!, `step ${record.step}, t = ${t}: ${v} vs ${expected[t]}`).toBeLessThan(1e-4));
      expect(record.throughTime![0]!.memoryHorizon).toBe(memoryHorizonOf(expected, 0.1));
    }
  });

  it('an lstm records its forget gate mean; a network without recurrent layers records no throughTime', async () => {
    const lstm = { ...SPEC, network: { input: [T, F], layers: [{ kind: 'lstm', units: 3, forgetBias: 1 }, { kind: 'dense', units: 1 }] }, include: undefined } as unknown as TrainingSpecInput;
    const { result } = await runTraining(lstm);
    // At initialisation the forget gate is σ(x W_f + h U_f + 1): its mean lies strictly between 0 and 1, near σ(1) = 0.73.
    const g0 = result.records[0]!.throughTime![0]!.gateMean as number;
    expect(g0).toBeGreaterThan(0.5);
    expect(g0).toBeLessThan(0.95);
    const dense = { ...SPEC, network: { input: [T * F], layers: [{ kind: 'dense', units: 3 }, { kind: 'dense', units: 1 }] }, data: { source: 'inline', x: sequences(10).x.map((s) => s.flat()), y: sequences(10).y, batchSize: 5 }, include: undefined } as unknown as TrainingSpecInput;
    const plain = await runTraining(dense);
    for (const r of plain.result.records) expect(r.throughTime).toBeUndefined();
  });

  it('refuses, before compute, more through-time norms than MAX_TRAINING_THROUGH_TIME_VALUES, naming recordEvery and the limit', () => {
    const long = { ...SPEC, network: { input: [1000, 1], layers: [{ kind: 'simple_rnn', units: 2 }, { kind: 'dense', units: 1 }] }, data: { source: 'sine_wave', length: 1000, samples: 20, batchSize: 4 }, steps: 900, recordEvery: 1, include: undefined } as unknown as TrainingSpecInput;
    const records = Math.floor(MAX_TRAINING_THROUGH_TIME_VALUES / 1000);
    // 901 records of 1000 norms are over the limit; the recordEvery the message advises fits.
    const err = ((): unknown => { try { prepareTraining(long); return null; } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).field).toBe('recordEvery');
    expect((err as SpecError).message).toMatch(new RegExp(`901 records of 1000 through-time norms.*at most ${MAX_TRAINING_THROUGH_TIME_VALUES} \\(MAX_TRAINING_THROUGH_TIME_VALUES\\).*recordEvery ≥ ${Math.ceil(900 / (records - 1))}`));
    expect(() => prepareTraining({ ...long, recordEvery: Math.ceil(900 / (records - 1)) })).not.toThrow();
  });
});
