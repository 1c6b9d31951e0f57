// Sequence data for recurrent layers (issue 14), each example [time][features] flattened row-major: the
// adding problem and a memory task at a chosen length (Hochreiter & Schmidhuber 1997), next-step sine
// prediction, and sequential MNIST (rows or pixels as steps, optionally permuted; Le et al. 2015).
// It imports nothing from datasets.ts (which imports it): the caller lends its error and array reader.
import type { Rng } from '../common/random.js';
import { Rng as SeededRng } from '../common/random.js';

/** Throws datasets.ts's DataSpecError naming the field. */
export type Fail = (field: string, message: string) => never;

/** What a sequence source reads of the data spec (datasets.ts's DataSpec has these fields). */
export interface SequenceSpec {
  source: string;
  samples?: number;
  noise?: number;
  classes?: number;
  length?: number;
  permuted?: boolean;
}

/** The parts of MNIST's Dataset that sequential MNIST keeps, and its arrays read without a copy. */
export interface MnistLike {
  n: number;
  outputSize: number;
  task: 'classification' | 'binary' | 'regression';
  numClasses: number | null;
  normalization: 'standardize' | 'minmax' | 'none';
  description: string;
}
type Arrays = { x: Float32Array; y: Float32Array; labels: Int32Array | null };

/** The generated sequence sources (sequential_mnist is MNIST re-read, in sequentialMnist below). */
export const SEQUENCE_SOURCES = ['adding', 'memory', 'sine_wave'] as const;
export type SequenceSource = (typeof SEQUENCE_SOURCES)[number];

export const DEFAULT_LENGTH: Record<SequenceSource, number> = { adding: 100, memory: 50, sine_wave: 50 };
export const MAX_LENGTH = 2000;
/** The fixed pixel permutation of permuted sequential MNIST: one permutation for every request, as in Le et al. */
const PERMUTATION_SEED = 14;

export interface SequencePlan {
  n: number;
  inputSize: number;
  inputShape: number[];
  task: 'classification' | 'regression';
  outputSize: number;
  numClasses: number | null;
  what: string;
  draw(rng: Rng): { x: Float32Array; y: Float32Array; labels: Int32Array | null; n: number; inputSize: number };
}

function intOf(fail: Fail, value: number | undefined, fallback: number, field: string, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) fail(field, `${field} must be an integer from ${min} to ${max}, not ${String(value)}`);
  return v;
}

/** The adding problem: x_t = (u_t ~ U(0, 1), marker); one marker in each half; target the sum of the two marked u. */
function adding(n: number, T: number, rng: Rng): ReturnType<SequencePlan['draw']> {
  const x = new Float32Array(n * T * 2);
  const y = new Float32Array(n);
  const half = Math.ceil(T / 2);
  for (let i = 0; i < n; i++) {
    const base = i * T * 2;
    for (let t = 0; t < T; t++) x[base + 2 * t] = rng.uniform();
    const a = rng.int(half), b = half + rng.int(T - half);
    x[base + 2 * a + 1] = 1;
    x[base + 2 * b + 1] = 1;
    y[i] = x[base + 2 * a]! + x[base + 2 * b]!;
  }
  return { x, y, labels: null, n, inputSize: T * 2 };
}

/** Memory: a one-hot symbol of k at t = 0, zeros after it, a recall cue (channel k) at the last step; the class is the symbol. */
function memory(n: number, T: number, k: number, rng: Rng): ReturnType<SequencePlan['draw']> {
  const F = k + 1;
  const x = new Float32Array(n * T * F);
  const labels = new Int32Array(n);
  const y = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const c = rng.int(k);
    labels[i] = c;
    y[i * k + c] = 1;
    x[i * T * F + c] = 1;
    x[i * T * F + (T - 1) * F + k] = 1;
  }
  return { x, y, labels, n, inputSize: T * F };
}

/** Next-step sine: x_t = sin(ω t + φ) + noise, ω ~ U(0.1, 0.5) rad per step, φ ~ U(0, 2π); target sin(ω T + φ). */
function sineWave(n: number, T: number, noise: number, rng: Rng): ReturnType<SequencePlan['draw']> {
  const x = new Float32Array(n * T);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const w = 0.1 + 0.4 * rng.uniform(), phase = 2 * Math.PI * rng.uniform();
    for (let t = 0; t < T; t++) x[i * T + t] = Math.sin(w * t + phase) + (noise > 0 ? noise * rng.normal() : 0);
    y[i] = Math.sin(w * T + phase);
  }
  return { x, y, labels: null, n, inputSize: T };
}

/** A sequence source's parameters validated (DataSpecError naming the field) and what it would draw. */
export function sequencePlan(spec: SequenceSpec, source: SequenceSource, maxSamples: number, fail: Fail): SequencePlan {
  const T = intOf(fail, spec.length, DEFAULT_LENGTH[source], 'data.length', 2, MAX_LENGTH);
  const n = intOf(fail, spec.samples, 1000, 'data.samples', 2, maxSamples);
  if (n * T * 2 > 50_000_000) fail('data.samples', `data.samples × data.length is ${n} × ${T}: over 50 000 000 values`);
  switch (source) {
    case 'adding':
      return { n, inputSize: T * 2, inputShape: [T, 2], task: 'regression', outputSize: 1, numClasses: null, draw: (rng) => adding(n, T, rng),
        what: `Adding problem (Hochreiter & Schmidhuber 1997): ${n} sequences of ${T} steps × 2 features (a value U(0, 1), a marker); target the sum of the two marked values, one marker in each half (predicting 1 gives mse ≈ 0.167)` };
    case 'memory': {
      const k = intOf(fail, spec.classes, 8, 'data.classes', 2, 100);
      return { n, inputSize: T * (k + 1), inputShape: [T, k + 1], task: 'classification', outputSize: k, numClasses: k, draw: (rng) => memory(n, T, k, rng),
        what: `Memory task: ${n} sequences of ${T} steps × ${k + 1} features, a one-hot symbol of ${k} at step 0, zeros, a recall cue at step ${T - 1}; the class is the symbol (a lag of ${T - 1} steps)` };
    }
    case 'sine_wave': {
      const noise = spec.noise ?? 0;
      return { n, inputSize: T, inputShape: [T, 1], task: 'regression', outputSize: 1, numClasses: null, draw: (rng) => sineWave(n, T, noise, rng),
        what: `Next-step sine: ${n} sequences of ${T} steps of sin(ω t + φ) (ω ~ U(0.1, 0.5) per step, φ ~ U(0, 2π)) plus Gaussian noise ${noise}; target the value at step ${T}` };
    }
  }
}

/** Sequential MNIST from the bundled MNIST set: [28, 28] (rows as steps, length 28) or [784, 1] (pixels, length 784), optionally permuted. */
export function sequentialMnist<S extends string>(mnist: MnistLike, arrays: () => Arrays, spec: SequenceSpec & { source: S }, fail: Fail) {
  const T = spec.length ?? 28;
  if (T !== 28 && T !== 784) fail('data.length', `data.length for sequential_mnist is 28 (rows as steps) or 784 (pixels as steps), not ${T}`);
  const permuted = spec.permuted ?? false;
  const shape = T === 28 ? [28, 28] : [784, 1];
  let x: Float32Array | null = null;
  const read = (): Float32Array => {
    if (x) return x;
    const src = arrays().x;
    if (!permuted) return (x = src.slice());
    const perm = new Int32Array(784).map((_, i) => i);
    new SeededRng(PERMUTATION_SEED).shuffle(perm);
    x = new Float32Array(src.length);
    for (let i = 0; i < mnist.n; i++) for (let j = 0; j < 784; j++) x[i * 784 + j] = src[i * 784 + perm[j]!]!;
    return x;
  };
  const how = `${T === 28 ? 'rows as 28 steps of 28 pixels' : 'pixels as 784 steps of 1'}${permuted ? ', pixels in one fixed random permutation (permuted MNIST, Le et al. 2015)' : ''}`;
  return {
    source: spec.source, n: mnist.n, inputSize: 784, inputShape: shape, outputSize: mnist.outputSize, task: mnist.task, numClasses: mnist.numClasses,
    get x() { return read(); },
    get y() { return arrays().y; },
    get labels() { return arrays().labels; },
    normalization: mnist.normalization,
    description: mnist.description.replace('MNIST handwritten digits', `Sequential MNIST (${how})`),
  };
}

/** Sequence sources read as they are: their markers and one-hot symbols must not be standardised away. */
export function defaultNormalizationOf(source: string): 'none' | 'standardize' {
  return source === 'inline' || source === 'tokens' || (SEQUENCE_SOURCES as readonly string[]).includes(source) ? 'none' : 'standardize';
}
