// One analysis of an imported model, as the service runs it for `"model": {"id"}`: the data (inline tensors
// in the model's own layout, MNIST digits shaped as the model's input, or seeded N(0, σ²) inputs of its
// declared shape with seeded targets), the loss, BatchNorm on batch statistics unless `mode: "eval"`,
// measured (measure.ts), diagnosed (diagnose.ts) and made JSON-safe (non-finite numbers become
// "NaN"/"Infinity" strings, listed in nonFinite).
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../common/errors.js';
import { encodeNonFinite, nonFiniteSummary, type NonFiniteSummary } from '../common/json-safe.js';
import { Rng } from '../common/random.js';
import { loadDataset, sampleBatches, type Normalization } from '../data/datasets.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from '../spec/thresholds.js';
import { measureImported, type ImportedLoss, type ImportedMeasurement } from './measure.js';
import { diagnoseImported } from './diagnose.js';
import type { Measurable } from './types.js';

export type ImportedData =
  /** inputs: nested arrays in the model's layout (NCHW for a PyTorch export); targets: class indices, distributions or values. */
  | { source: 'inline'; inputs: unknown; targets: unknown }
  /** Inputs drawn N(0, 1) in the model's declared shape, targets uniform classes (or N(0, 1) values for mse), from the seed. */
  | { source: 'generated'; batchSize: number; seed?: number; std?: number }
  /** A seeded batch of the bundled MNIST digits, shaped as the model's input (1×28×28, 28×28×1, 28×28 or 784). */
  | { source: 'mnist'; batchSize: number; seed?: number; normalize?: Normalization };

export interface ImportedAnalysisInput {
  readonly data: ImportedData;
  readonly loss?: ImportedLoss;
  /** 'train' (default): BatchNormalization on batch statistics; 'eval': on its running statistics. */
  readonly mode?: 'train' | 'eval';
  /** The verdict's thresholds, every default filled in (normalizeThresholds); default DEFAULT_THRESHOLDS. */
  readonly thresholds?: Thresholds;
}

export interface ImportedAnalysisOptions {
  /** Most examples in a batch (the service's GRADLENS_MAX_BATCH_SIZE). */
  readonly maxBatchSize: number;
}

export interface ImportedAnalysisOutput {
  /** The measurement, JSON-safe (non-finite numbers as strings). */
  readonly result: unknown;
  readonly nonFinite: NonFiniteSummary;
}

/** What analyzeImported needs besides Measurable: the declared input shape (null: a dynamic dimension). */
export interface AnalysableModel extends Measurable {
  readonly inputs: readonly { name: string; shape: readonly (number | null)[] | null }[];
  /** An eval-mode export folded BatchNorm into the convolutions (said in the result; analysed as it is). */
  readonly batchNormFolded?: boolean;
}

/** How many numbers a nested array holds; -1 when something in it is not a number or an array. */
function leaves(value: unknown): number {
  if (typeof value === 'number') return 1;
  if (!Array.isArray(value)) return -1;
  let n = 0;
  for (const v of value) {
    const k = leaves(v);
    if (k < 0) return -1;
    n += k;
  }
  return n;
}

/** A tensor from nested arrays that must be rectangular (tf.tensor would read a ragged one by its first rows). */
function toTensor(value: unknown, field: string, dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const count = leaves(value);
  let t: tf.Tensor | undefined;
  try {
    if (count > 0) t = tf.tensor(value as number[], undefined, dtype);
  } catch {
    t = undefined;
  }
  if (!t || t.size !== count) {
    t?.dispose();
    throw new SpecError(field, `${field} must be a (nested) array of numbers, rectangular (every row the same length)`);
  }
  return t;
}

/** The batch and its targets, made here and owned by the caller (an analysis measures it; a training trains on it). */
export function importedBatch(model: AnalysableModel, data: ImportedData, loss: ImportedLoss, options: ImportedAnalysisOptions): { x: tf.Tensor; y: tf.Tensor } {
  if (data.source === 'inline') {
    const x = toTensor(data.inputs, 'data.inputs');
    if (x.shape[0]! > options.maxBatchSize) {
      x.dispose();
      throw new SpecError('data.inputs', `the batch has ${x.shape[0]} examples; the most is ${options.maxBatchSize} (GRADLENS_MAX_BATCH_SIZE)`);
    }
    const isIndices = loss === 'categorical_crossentropy' && Array.isArray(data.targets) && data.targets.every((t) => typeof t === 'number');
    return { x, y: toTensor(data.targets, 'data.targets', isIndices ? 'int32' : 'float32') };
  }
  const { batchSize, seed = 0 } = data;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > options.maxBatchSize) {
    throw new SpecError('data.batchSize', `data.batchSize must be an integer from 1 to ${options.maxBatchSize} (GRADLENS_MAX_BATCH_SIZE)`);
  }
  if (data.source === 'mnist') return mnistBatch(model, data, loss);
  const declared = model.inputs[0]?.shape;
  if (!declared || declared.slice(1).some((d) => d === null)) {
    throw new SpecError('data.source', 'generated inputs need the model to declare every input dimension but the batch; send inline inputs');
  }
  const shape = [batchSize, ...(declared.slice(1) as number[])];
  const rng = new Rng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(values, data.std ?? 1);
  const x = tf.tensor(values, shape);
  const outShape = tf.tidy(() => model.run(x, { batchNorm: 'batch' }).output.shape);
  if (loss === 'mse') {
    const t = new Float32Array(outShape.reduce((a, b) => a * b, 1));
    rng.fillNormal(t, 1);
    return { x, y: tf.tensor(t, outShape) };
  }
  const classes = outShape[1] ?? 1;
  return { x, y: tf.tensor1d(Array.from({ length: batchSize }, () => rng.int(classes)), 'int32') };
}

/** Per-example input shapes MNIST's 28 × 28 grey digits fit without moving a value (one channel: NCHW = NHWC). */
const MNIST_SHAPES = ['1,28,28', '28,28,1', '28,28', '784'];

/** The per-example shape of a model input MNIST fits; SpecError naming data.source otherwise. */
export function checkMnistInput(declared: readonly (number | null)[] | null): number[] {
  const dims = declared?.slice(1) ?? [];
  if (!MNIST_SHAPES.includes(dims.join(','))) {
    throw new SpecError('data.source', `mnist needs a model input of 1×28×28, 28×28×1, 28×28 or 784 values per example; the model's is [${dims.map((d) => d ?? '?').join(', ')}]`);
  }
  return dims as number[];
}

/**
 * The MNIST batch an analysis with this seed draws: batchSize digits, 784 values each (one channel, so the
 * same order for NCHW and NHWC), normalised (default standardize), and their labels. Exported for
 * scripts/mnist-batch.ts, which hands PyTorch the same batch for the fixtures' reference figures.
 */
export function mnistExamples(o: { batchSize: number; seed: number; normalize?: Normalization }): { x: Float32Array; labels: Int32Array } {
  const ds = loadDataset({ source: 'mnist', batchSize: o.batchSize, batches: 1, ...(o.normalize ? { normalize: o.normalize } : {}) }, o.seed);
  const batch = sampleBatches(ds, o.batchSize, 1, o.seed)[0]!;
  return { x: batch.x, labels: batch.labels! };
}

/** A seeded batch of MNIST digits in the model's declared per-example shape, with their class indices. */
function mnistBatch(model: AnalysableModel, data: Extract<ImportedData, { source: 'mnist' }>, loss: ImportedLoss): { x: tf.Tensor; y: tf.Tensor } {
  const dims = checkMnistInput(model.inputs[0]?.shape ?? null);
  if (loss !== 'categorical_crossentropy') throw new SpecError('loss', 'mnist has class targets: loss must be categorical_crossentropy');
  const { batchSize, seed = 0 } = data;
  const batch = mnistExamples({ batchSize, seed, ...(data.normalize ? { normalize: data.normalize } : {}) });
  const x = tf.tensor(batch.x, [batchSize, ...(dims as number[])]);
  const classes = tf.tidy(() => model.run(x, { batchNorm: 'batch' }).output.shape[1]);
  if (classes !== 10) {
    x.dispose();
    throw new SpecError('data.source', `mnist has 10 classes; the model's output has ${classes ?? 'no'} class dimension`);
  }
  return { x, y: tf.tensor1d(batch.labels!, 'int32') };
}

/** Analyses one batch through an imported model; SpecError for data that does not fit it. */
export async function analyzeImported(model: AnalysableModel, input: ImportedAnalysisInput, options: ImportedAnalysisOptions): Promise<ImportedAnalysisOutput> {
  const loss = input.loss ?? 'categorical_crossentropy';
  const { x, y } = importedBatch(model, input.data, loss, options);
  let measurement: ImportedMeasurement;
  try {
    measurement = await measureImported(model, { input: x, target: y, loss, batchNorm: input.mode === 'eval' ? 'running' : 'batch' });
  } finally {
    x.dispose();
    y.dispose();
  }
  const diagnosis = diagnoseImported(measurement, input.thresholds ?? DEFAULT_THRESHOLDS);
  const layers = measurement.layers.map((l, i) => ({ ...l, flags: diagnosis.flags[i]! }));
  const { value, paths } = encodeNonFinite({ ...measurement, layers, summary: diagnosis.summary, batchSize: x.shape[0], mode: input.mode ?? 'train', batchNormFolded: model.batchNormFolded ?? false });
  return { result: value, nonFinite: nonFiniteSummary(paths) };
}
