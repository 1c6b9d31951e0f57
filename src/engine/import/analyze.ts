// One analysis of an imported model, as the service will run it for `"model": {"id"}`: the data (inline
// tensors in the model's own layout, or seeded inputs of its declared shape with seeded targets), the loss,
// BatchNorm on batch statistics unless `mode: "eval"`, measured (measure.ts) and made JSON-safe (non-finite
// numbers become "NaN"/"Infinity" strings, listed in nonFinite).
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../common/errors.js';
import { encodeNonFinite, nonFiniteSummary, type NonFiniteSummary } from '../common/json-safe.js';
import { Rng } from '../common/random.js';
import { measureImported, type ImportedLoss, type ImportedMeasurement } from './measure.js';
import type { Measurable } from './types.js';

export type ImportedData =
  /** inputs: nested arrays in the model's layout (NCHW for a PyTorch export); targets: class indices, distributions or values. */
  | { source: 'inline'; inputs: unknown; targets: unknown }
  /** Inputs drawn N(0, 1) in the model's declared shape, targets uniform classes (or N(0, 1) values for mse), from the seed. */
  | { source: 'generated'; batchSize: number; seed?: number };

export interface ImportedAnalysisInput {
  readonly data: ImportedData;
  readonly loss?: ImportedLoss;
  /** 'train' (default): BatchNormalization on batch statistics; 'eval': on its running statistics. */
  readonly mode?: 'train' | 'eval';
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

/** The batch and its targets, made here and owned by the caller. */
function batchOf(model: AnalysableModel, data: ImportedData, loss: ImportedLoss, options: ImportedAnalysisOptions): { x: tf.Tensor; y: tf.Tensor } {
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
  const declared = model.inputs[0]?.shape;
  if (!declared || declared.slice(1).some((d) => d === null)) {
    throw new SpecError('data.source', 'generated inputs need the model to declare every input dimension but the batch; send inline inputs');
  }
  const shape = [batchSize, ...(declared.slice(1) as number[])];
  const rng = new Rng(seed);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  rng.fillNormal(values, 1);
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

/** Analyses one batch through an imported model; SpecError for data that does not fit it. */
export async function analyzeImported(model: AnalysableModel, input: ImportedAnalysisInput, options: ImportedAnalysisOptions): Promise<ImportedAnalysisOutput> {
  const loss = input.loss ?? 'categorical_crossentropy';
  const { x, y } = batchOf(model, input.data, loss, options);
  let measurement: ImportedMeasurement;
  try {
    measurement = await measureImported(model, { input: x, target: y, loss, batchNorm: input.mode === 'eval' ? 'running' : 'batch' });
  } finally {
    x.dispose();
    y.dispose();
  }
  const { value, paths } = encodeNonFinite({ ...measurement, batchSize: x.shape[0], mode: input.mode ?? 'train' });
  return { result: value, nonFinite: nonFiniteSummary(paths) };
}
