// Tensor leaks: analyses of every shape, and rejected specs, leave tf.memory().numTensors where it was.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { runAnalysis } from '../../src/engine/measure/measure.js';
import { SpecError } from '../../src/engine/common/errors.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

const SPECS: AnalysisSpecInput[] = [
  { network: { depth: 6, width: 8, activation: 'tanh', residual: { every: 2, scale: 0.5 } }, data: { source: 'iris', batchSize: 16 } },
  { network: { depth: 5, width: 8, activation: 'relu', residual: { every: 1 } }, data: { source: 'sine', batchSize: 16, batches: 3 }, loss: 'mse' },
  { network: { depth: 4, width: 10, activation: 'gelu' }, data: { source: 'iris', batchSize: 24, batches: 3 }, loss: 'categorical_crossentropy' },
  { network: { depth: 3, width: 12, activation: 'selu', init: { weights: 'lecun_normal' } }, data: { source: 'sine', batchSize: 32 }, loss: 'mse' },
  { network: { depth: 4, width: 6, activation: { name: 'elu', alpha: 2 } }, data: { source: 'moons', batchSize: 16, batches: 2 }, loss: 'binary_crossentropy' },
  { network: { depth: 4, width: 6, activation: 'hard_sigmoid', outputActivation: 'softmax' }, data: { source: 'iris', batchSize: 8 }, include: ['parameters', 'batch'] },
  { network: { depth: 8, width: 4, activation: 'mish', residual: { every: 3, scale: 0.3 } }, data: { source: 'sine', batchSize: 8, batches: 3 } },
  { network: { depth: 3, width: 5, activation: ['leaky_relu', 'softplus'], useBias: false }, data: { source: 'inline', x: [[1, 2], [3, -1], [0.5, 0.5]] }, loss: 'output' },
  { network: { depth: 5, width: 7, activation: 'relu6', init: { weights: 'orthogonal', bias: { name: 'random_normal', stddev: 0.1 } } }, data: { source: 'iris', batchSize: 150 } },
  { network: { depth: 4, width: 6, activation: 'swish', outputActivation: 'sigmoid' }, data: { source: 'xor', batchSize: 20, batches: 2 }, loss: 'mse' },
];

async function analyse(input: AnalysisSpecInput): Promise<number> {
  const { spec, dataset } = normalizeSpec(input);
  return (await runAnalysis(spec, dataset)).result.loss;
}

describe('tensor memory', () => {
  beforeAll(async () => {
    await useTestBackend();
    // Warm-up: the backend may allocate lasting helpers on first use.
    for (const spec of SPECS) (await analyse(spec));
  });

  it('ten mixed analyses (residual, several batches, categorical on iris, mse on sine) leave no tensors behind', async () => {
    expect(SPECS).toHaveLength(10);
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    for (const s of SPECS) losses.push(await analyse(s));
    expect(tf.memory().numTensors).toBe(before);
    // They really ran: finite losses, and a repeat gives the same numbers (seeded) without leaking either.
    losses.forEach((l) => expect(Number.isFinite(l)).toBe(true));
    const again: number[] = [];
    for (const s of SPECS) again.push(await analyse(s));
    expect(again).toEqual(losses);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an analysis whose spec normalizeSpec rejects leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const bad: AnalysisSpecInput[] = [
      { network: { depth: 4, widths: [5, 4, 3], residual: { every: 1 } }, data: { source: 'iris' } },
      { network: { depth: 3, width: 4, activation: 'softmax' }, data: { source: 'iris' } },
      { network: { depth: 3, width: 4, init: { weights: { name: 'he_normal', gain: 2 } as never } }, data: { source: 'sine' } },
      { network: { depth: 3, width: 4 }, data: { source: 'sine' }, loss: 'categorical_crossentropy' },
    ];
    for (const input of bad) {
      await expect(analyse(input)).rejects.toThrow(SpecError);
      expect(tf.memory().numTensors).toBe(before);
    }
    // And a good analysis right after still balances.
    (await analyse(SPECS[0]!));
    expect(tf.memory().numTensors).toBe(before);
  });
});
