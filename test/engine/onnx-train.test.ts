// trainImported on every backend that loads: an imported PyTorch export (the mlp and cnn_bn fixtures of
// scripts/onnx-fixtures.py) trained with momentum gives, step by step, the loss and every parameter's gradient
// norm of PyTorch float64 replaying the training from the fixture's seeded source model; a non-finite loss
// stops the run as diverged with its step recorded; no tensor is left behind. Reads are asynchronous (webgpu).
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { importOnnx, trainImported, type ImportedTrainingRecord } from '../../src/engine/import/index.js';
import { normalizeOptimizer } from '../../src/engine/model/optimizers.js';
import { torchOracle } from '../support/torch-oracle.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
interface Fixture { input: { shape: number[]; data: number[] }; target: number[] }
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
interface Replay { steps: { loss: number; parameters: Record<string, { norm: number; gradNorm: number }> }[] }

/** Trains the fixture model; the result and the tensors left afterwards (the model disposed). */
async function train(name: string, optimizer: Parameters<typeof normalizeOptimizer>[0], steps: number) {
  const f = fixture(name);
  const model = importOnnx(readFileSync(join(FIXTURES, `${name}.onnx`)));
  try {
    const out = await trainImported(model, {
      data: { source: 'inline', inputs: nested(f.input.data, f.input.shape), targets: f.target },
      loss: 'categorical_crossentropy', mode: 'train', steps, recordEvery: 1, optimizer: normalizeOptimizer(optimizer),
    }, { maxBatchSize: 64 });
    return out.result as { records: ImportedTrainingRecord[]; status: string; stepsCompleted: number; reasons: string[] };
  } finally {
    model.dispose();
  }
}

beforeAll(async () => {
  await useTestBackend();
});

describe('trainImported', () => {
  for (const name of ['mlp', 'cnn_bn']) {
    it(`${name}, momentum: every step's loss and parameter gradient norms are PyTorch float64's to 1e-3; no tensor left`, async () => {
      const optimizer = { name: 'momentum' as const, learningRate: 0.05, momentum: 0.9 };
      const before = tf.memory().numTensors;
      const r = await train(name, optimizer, 6);
      expect(tf.memory().numTensors).toBe(before);
      const replay = torchOracle<Replay>('model_train_reference.py', { name, steps: 6, optimizer: normalizeOptimizer(optimizer), dtype: 'float64' });
      expect(r.records).toHaveLength(7);
      for (const rec of r.records) {
        const ref = replay.steps[rec.step]!;
        expect(rel(rec.loss, ref.loss), `step ${rec.step} loss`).toBeLessThan(1e-3);
        for (const p of rec.parameters) expect(rel(p.gradNorm, ref.parameters[p.name]!.gradNorm), `step ${rec.step} ${p.name}`).toBeLessThan(1e-3);
      }
    });
  }

  it('a learning rate that blows the loss up stops the run as diverged, the step that broke recorded', async () => {
    const r = await train('mlp', { name: 'sgd', learningRate: 1e39 }, 5);
    expect(r.status).toBe('diverged');
    expect(r.stepsCompleted).toBeLessThan(5);
    const last = r.records[r.records.length - 1]!;
    expect(last.step).toBe(r.stepsCompleted);
    expect(r.reasons.join(' ')).toMatch(/stopped/);
  });
});
