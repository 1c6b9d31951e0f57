// analyzeImported: one analysis of an imported model with the service's data choices. Inline data in the
// model's layout gives PyTorch's figures (the committed fixtures' float64 ones); eval mode gives PyTorch's
// eval-mode figures; generated data is reproducible from its seed; bad data is a SpecError naming the field
// and the limit; non-finite numbers come back as strings; no tensor is left behind.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyzeImported, importOnnx, type ImportedMeasurement } from '../../src/engine/import/index.js';
import { SpecError } from '../../src/engine/common/errors.js';
import { DEFAULT_THRESHOLDS } from '../../src/engine/spec/thresholds.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const MNIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx-mnist');
const OPTIONS = { maxBatchSize: 64 };

interface Fixture {
  input: { shape: number[]; data: number[] };
  target: number[];
  loss64: number;
  parameters: { name: string; gradNorm64: number }[];
  eval?: { loss64: number; gradNorm64: Record<string, number> };
}
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
const model = (name: string) => importOnnx(readFileSync(join(FIXTURES, `${name}.onnx`)));

/** The flat fixture input as nested arrays of its shape (what a client sends inline). */
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

beforeAll(async () => {
  await useTestBackend();
});

describe('analyzeImported', () => {
  it('inline data in the model layout (NCHW): PyTorch loss and gradient norms, JSON-safe', async () => {
    const f = fixture('cnn_bn');
    const m = model('cnn_bn');
    const out = await analyzeImported(m, { data: { source: 'inline', inputs: nested(f.input.data, f.input.shape), targets: f.target } }, OPTIONS);
    m.dispose();
    const r = JSON.parse(JSON.stringify(out.result)) as ImportedMeasurement & { batchSize: number; mode: string };
    expect(out.nonFinite.count).toBe(0);
    expect(r).toMatchObject({ batchSize: 4, mode: 'train', lossName: 'categorical_crossentropy', batchNorm: 'batch' });
    expect(rel(r.loss, f.loss64)).toBeLessThan(1e-3);
    for (const p of f.parameters) expect(rel(r.parameters.find((q) => q.name === p.name)!.gradNorm, p.gradNorm64), p.name).toBeLessThan(1e-3);
  });

  it("mode 'eval': running statistics, PyTorch's eval-mode figures", async () => {
    const f = fixture('residual');
    const m = model('residual');
    const out = await analyzeImported(m, { data: { source: 'inline', inputs: nested(f.input.data, f.input.shape), targets: f.target }, mode: 'eval' }, OPTIONS);
    m.dispose();
    const r = out.result as ImportedMeasurement;
    expect(rel(r.loss, f.eval!.loss64)).toBeLessThan(1e-3);
    for (const p of r.parameters) expect(rel(p.gradNorm, f.eval!.gradNorm64[p.name]!), p.name).toBeLessThan(1e-3);
  });

  it('generated data: the declared shape at the asked batch size, the same for the same seed, another for another', async () => {
    const m = model('mlp');
    const run = async (seed: number) => (await analyzeImported(m, { data: { source: 'generated', batchSize: 10, seed } }, OPTIONS)).result as ImportedMeasurement & { batchSize: number };
    const [a, b, c] = [await run(3), await run(3), await run(4)];
    m.dispose();
    expect(a.batchSize).toBe(10);
    expect(a.layers[0]!.outputShape).toEqual([10, 16]);
    expect(b).toEqual(a);
    expect(c.loss).not.toBe(a.loss);
  });

  it('bad data: SpecError naming the field and the limit', async () => {
    const m = model('cnn_bn');
    try {
      await expect(analyzeImported(m, { data: { source: 'generated', batchSize: 65 } }, OPTIONS)).rejects.toThrow(/GRADLENS_MAX_BATCH_SIZE/);
      await expect(analyzeImported(m, { data: { source: 'inline', inputs: [[[[1, 2]]]], targets: [0] } }, OPTIONS)).rejects.toThrow(SpecError);
      await expect(analyzeImported(m, { data: { source: 'inline', inputs: [[[[1, 2]]]], targets: [0] } }, OPTIONS)).rejects.toMatchObject({ field: 'data.inputs', message: expect.stringContaining('[4, 1, 10, 10]') });
      await expect(analyzeImported(m, { data: { source: 'inline', inputs: [[1, 2], [3]], targets: [0, 1] } }, OPTIONS)).rejects.toMatchObject({ field: 'data.inputs' });
    } finally {
      m.dispose();
    }
  });

  it('non-finite numbers come back as strings and are listed', async () => {
    // Inputs near float32's largest overflow the first layer: ∞ − ∞ = NaN downstream.
    const f = fixture('regression') as Fixture & { targetShape: number[] };
    const m = model('regression');
    const huge = f.input.data.map((v) => v * 3e38);
    const out = await analyzeImported(m, { data: { source: 'inline', inputs: nested(huge, f.input.shape), targets: nested(f.target, f.targetShape) }, loss: 'mse' }, OPTIONS);
    m.dispose();
    expect(out.nonFinite.count).toBeGreaterThan(0);
    expect(JSON.stringify(out.result)).toMatch(/"(NaN|Infinity|-Infinity)"/);
    expect(JSON.parse(JSON.stringify(out.result))).toEqual(out.result);
  });

  it("mnist: the digits drawn for the seed, in the model's 1×28×28 layout, give PyTorch's figures on them (scripts/mnist-batch.ts)", async () => {
    const f = JSON.parse(readFileSync(join(MNIST, 'mnist_cnn.json'), 'utf8')) as Fixture & { mnist: { batchSize: number; seed: number } };
    const m = importOnnx(readFileSync(join(MNIST, 'mnist_cnn.onnx')));
    const before = tf.memory().numTensors;
    const out = await analyzeImported(m, { data: { source: 'mnist', batchSize: f.mnist.batchSize, seed: f.mnist.seed } }, OPTIONS);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
    const r = out.result as ImportedMeasurement;
    expect(rel(r.loss, f.loss64)).toBeLessThan(1e-3);
    for (const p of f.parameters) expect(rel(r.parameters.find((q) => q.name === p.name)!.gradNorm, p.gradNorm64), p.name).toBeLessThan(1e-3);
    // A model whose input is not 28 × 28 digits: refused, naming the field and the shapes that fit.
    const other = model('cnn_bn');
    await expect(analyzeImported(other, { data: { source: 'mnist', batchSize: 2 } }, OPTIONS)).rejects.toMatchObject({ field: 'data.source', message: expect.stringContaining('1×28×28') });
    other.dispose();
  });

  it('the verdict: the first layer\'s backward signal against the last one\'s, as for built networks', async () => {
    const f = fixture('residual');
    const m = model('residual');
    const out = await analyzeImported(m, { data: { source: 'inline', inputs: nested(f.input.data, f.input.shape), targets: f.target } }, OPTIONS);
    m.dispose();
    const r = out.result as ImportedMeasurement & { summary: { verdict: string; backpropFirstToLastRatio: number; firstToLastRatio: number; reasons: string[] }; layers: { flags: string[] }[] };
    const first = r.layers[0]!;
    const last = r.layers.at(-1)!;
    expect(r.summary.backpropFirstToLastRatio).toBeCloseTo(first.backpropNorm / last.backpropNorm, 12);
    const together = (l: { parameters: { gradNorm: number }[] }) => Math.hypot(...l.parameters.map((p) => p.gradNorm));
    expect(r.summary.firstToLastRatio).toBeCloseTo(together(first) / together(last), 12);
    const ratio = r.summary.backpropFirstToLastRatio;
    expect(r.summary.reasons[0]).toMatch(new RegExp(`^${r.summary.verdict}: `));
    for (const l of r.layers) expect(Array.isArray(l.flags)).toBe(true);
    // Thresholds move the verdict: a band that excludes this ratio makes it vanishing.
    const again = model('residual');
    const strict = await analyzeImported(again, {
      data: { source: 'inline', inputs: nested(f.input.data, f.input.shape), targets: f.target },
      thresholds: { ...DEFAULT_THRESHOLDS, vanishingRatio: Math.min(0.99, ratio * 2) },
    }, OPTIONS);
    again.dispose();
    expect(ratio * 2).toBeLessThan(0.99);
    expect((strict.result as { summary: { verdict: string } }).summary.verdict).toBe('vanishing');
  });

  it('leaves no tensors behind', async () => {
    const m = model('shapes');
    await analyzeImported(m, { data: { source: 'generated', batchSize: 3 } }, OPTIONS);
    const before = tf.memory().numTensors;
    await analyzeImported(m, { data: { source: 'generated', batchSize: 3 } }, OPTIONS);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
