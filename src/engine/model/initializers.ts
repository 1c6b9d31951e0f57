// Weight and bias initialisers drawn from the seeded RNG, with their exact expected mean and variance.
import { Rng } from '../common/random.js';
import { SpecError } from '../common/errors.js';

import { INITIALIZER_NAMES, SCALING_DISTRIBUTIONS, type FanMode, type InitializerName, type ScalingDistribution } from '../../schemas/vocabulary.js';

export { INITIALIZER_NAMES, SCALING_DISTRIBUTIONS, type FanMode, type InitializerName, type ScalingDistribution };
/**
 * - `normal`: plain normal with the exact target variance (PyTorch's kaiming_normal_/xavier_normal_).
 * - `truncated_normal`: Keras (Python): redraw beyond ±2σ, std divided by 0.8796… so the variance is exact.
 * - `truncated_normal_uncorrected`: tfjs-layers' heNormal/glorotNormal/leCunNormal: redraw beyond ±2σ
 *   with no correction, so the variance is 0.7737 × nominal.
 * - `uniform`: U[−√(3v), √(3v)].
 */
// ScalingDistribution and SCALING_DISTRIBUTIONS: the vocabulary's (imported above).

/** A normalised initialiser: every parameter filled in. */
export interface InitializerSpec {
  name: InitializerName;
  value?: number;
  mean?: number;
  stddev?: number;
  min?: number;
  max?: number;
  gain?: number;
  scale?: number;
  mode?: FanMode;
  distribution?: ScalingDistribution;
}

export type InitializerInput = string | ({ name: string } & Partial<Omit<InitializerSpec, 'name'>>);

/** Keras' correction: the std of a standard normal truncated to ±2. */
export const TRUNCATION_STD = 0.87962566103423978;
const TRUNCATED_VARIANCE_FACTOR = TRUNCATION_STD * TRUNCATION_STD;

const SCALING_PRESETS: Record<string, { scale: number; mode: FanMode; distribution: ScalingDistribution }> = {
  glorot_uniform: { scale: 1, mode: 'fan_avg', distribution: 'uniform' },
  glorot_normal: { scale: 1, mode: 'fan_avg', distribution: 'normal' },
  he_uniform: { scale: 2, mode: 'fan_in', distribution: 'uniform' },
  he_normal: { scale: 2, mode: 'fan_in', distribution: 'normal' },
  lecun_uniform: { scale: 1, mode: 'fan_in', distribution: 'uniform' },
  lecun_normal: { scale: 1, mode: 'fan_in', distribution: 'normal' },
  // Glorot & Bengio's "standard" U[−1/√n, 1/√n] has variance 1/(3n): PyTorch's nn.Linear default.
  glorot_standard: { scale: 1 / 3, mode: 'fan_in', distribution: 'uniform' },
  // PyTorch's nn.Linear/nn.Conv2d reset_parameters: kaiming_uniform_(a=√5), bound gain·√(3/fan_in) with
  // gain² = 2/(1 + a²) = 1/3, i.e. U[±1/√fan_in]; its bias U[±1/√fan_in] with the weight's fan_in (initialize()).
  pytorch_default: { scale: 1 / 3, mode: 'fan_in', distribution: 'uniform' },
};

const ALLOWED_PARAMS: Record<InitializerName, readonly string[]> = {
  zeros: [], ones: [], constant: ['value'],
  random_normal: ['mean', 'stddev'], random_uniform: ['min', 'max'], truncated_normal: ['mean', 'stddev'],
  glorot_uniform: [], glorot_normal: [], glorot_standard: [], he_uniform: [], he_normal: [],
  lecun_uniform: [], lecun_normal: [], orthogonal: ['gain'], identity: ['gain'],
  variance_scaling: ['scale', 'mode', 'distribution'],
  pytorch_default: [], delta_orthogonal: ['gain'],
};

function finiteParam(raw: Record<string, unknown>, key: string, fallback: number, field: string): number {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new SpecError(`${field}.${key}`, `${field}.${key} must be a finite number`);
  return v;
}

/** Fills in every default and rejects unknown names and parameters, naming `field`. */
export function normalizeInitializer(input: InitializerInput, field: string): InitializerSpec {
  const raw: Record<string, unknown> = typeof input === 'string' ? { name: input } : { ...input };
  const name = String(raw.name).toLowerCase();
  if (!(INITIALIZER_NAMES as readonly string[]).includes(name)) {
    throw new SpecError(`${field}.name`, `${field}.name "${String(raw.name)}" is not a known initialiser; use one of ${INITIALIZER_NAMES.join(', ')}`);
  }
  const n = name as InitializerName;
  for (const key of Object.keys(raw)) {
    if (key !== 'name' && !ALLOWED_PARAMS[n].includes(key)) {
      throw new SpecError(`${field}.${key}`, `${field}.${key} is not a parameter of ${n} (allowed: ${ALLOWED_PARAMS[n].join(', ') || 'none'})`);
    }
  }
  switch (n) {
    case 'constant':
      return { name: n, value: finiteParam(raw, 'value', 0, field) };
    case 'random_normal':
    case 'truncated_normal': {
      const stddev = finiteParam(raw, 'stddev', 0.05, field);
      if (stddev < 0) throw new SpecError(`${field}.stddev`, `${field}.stddev must be >= 0`);
      return { name: n, mean: finiteParam(raw, 'mean', 0, field), stddev };
    }
    case 'random_uniform': {
      const min = finiteParam(raw, 'min', -0.05, field);
      const max = finiteParam(raw, 'max', 0.05, field);
      if (max < min) throw new SpecError(`${field}.max`, `${field}.max must be >= ${field}.min`);
      return { name: n, min, max };
    }
    case 'orthogonal':
    case 'identity':
    case 'delta_orthogonal':
      return { name: n, gain: finiteParam(raw, 'gain', 1, field) };
    case 'variance_scaling': {
      const scale = finiteParam(raw, 'scale', 1, field);
      if (scale <= 0) throw new SpecError(`${field}.scale`, `${field}.scale must be > 0`);
      const mode = (raw.mode ?? 'fan_in') as FanMode;
      if (!['fan_in', 'fan_out', 'fan_avg'].includes(mode)) {
        throw new SpecError(`${field}.mode`, `${field}.mode must be fan_in, fan_out or fan_avg`);
      }
      const distribution = (raw.distribution ?? 'truncated_normal') as ScalingDistribution;
      if (!SCALING_DISTRIBUTIONS.includes(distribution)) {
        throw new SpecError(`${field}.distribution`, `${field}.distribution must be one of ${SCALING_DISTRIBUTIONS.join(', ')}`);
      }
      return { name: n, scale, mode, distribution };
    }
    default:
      return { name: n };
  }
}

/** The variance-scaling parameters behind a named scheme, or null for schemes that are not one. */
export function scalingOf(spec: InitializerSpec): { scale: number; mode: FanMode; distribution: ScalingDistribution } | null {
  if (spec.name === 'variance_scaling') return { scale: spec.scale!, mode: spec.mode!, distribution: spec.distribution! };
  return SCALING_PRESETS[spec.name] ?? null;
}

function fanOf(mode: FanMode, fanIn: number, fanOut: number): number {
  if (mode === 'fan_in') return fanIn;
  if (mode === 'fan_out') return fanOut;
  return (fanIn + fanOut) / 2;
}

/** Expected mean and variance of one entry, from the formula (what theory should use). */
export function initializerMoments(spec: InitializerSpec, fanIn: number, fanOut: number): { mean: number; variance: number } | null {
  switch (spec.name) {
    case 'zeros': return { mean: 0, variance: 0 };
    case 'ones': return { mean: 1, variance: 0 };
    case 'constant': return { mean: spec.value!, variance: 0 };
    case 'random_normal': return { mean: spec.mean!, variance: spec.stddev! ** 2 };
    case 'truncated_normal': return { mean: spec.mean!, variance: spec.stddev! ** 2 * TRUNCATED_VARIANCE_FACTOR };
    case 'random_uniform': return { mean: (spec.min! + spec.max!) / 2, variance: (spec.max! - spec.min!) ** 2 / 12 };
    // Orthogonal rows/columns have unit norm: Var = gain² / max(fanIn, fanOut) per entry.
    case 'orthogonal':
    // delta_orthogonal: an orthogonal c_in × c_out matrix at one of kh·kw taps, zeros elsewhere: with the
    // conv fans (k²·c) the per-entry variance is gain²/max(fan_in, fan_out) as for orthogonal.
    case 'delta_orthogonal': return { mean: 0, variance: spec.gain! ** 2 / Math.max(fanIn, fanOut) };
    case 'identity': return null;
    default: {
      const s = scalingOf(spec)!;
      const target = s.scale / fanOf(s.mode, fanIn, fanOut);
      const factor = s.distribution === 'truncated_normal_uncorrected' ? TRUNCATED_VARIANCE_FACTOR : 1;
      return { mean: 0, variance: target * factor };
    }
  }
}

function truncatedNormal(rng: Rng): number {
  for (;;) {
    const z = rng.normal();
    if (z >= -2 && z <= 2) return z;
  }
}

/** Fills a row-major [rows][cols] orthogonal matrix (QR of a Gaussian matrix, sign-fixed as in Saxe et al.). */
export function orthogonal(rows: number, cols: number, gain: number, rng: Rng): Float32Array {
  // Orthonormalise the vectors of the longer side against each other (modified Gram-Schmidt in float64).
  const n = Math.max(rows, cols);
  const k = Math.min(rows, cols);
  const basis: Float64Array[] = [];
  for (let i = 0; i < k; i++) {
    const v = new Float64Array(n);
    for (let j = 0; j < n; j++) v[j] = rng.normal();
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += v[j]! * b[j]!;
        for (let j = 0; j < n; j++) v[j]! -= dot * b[j]!;
      }
    }
    let norm = 0;
    for (let j = 0; j < n; j++) norm += v[j]! * v[j]!;
    norm = Math.sqrt(norm);
    for (let j = 0; j < n; j++) v[j]! /= norm;
    basis.push(v);
  }
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      // basis vectors are columns when rows >= cols, rows otherwise
      const idx = rows >= cols ? j * cols + i : i * cols + j;
      out[idx] = gain * basis[i]![j]!;
    }
  }
  return out;
}

/** A layer's fans where they are not the matrix's rows and columns (a convolution: k²·c_in and k²·c_out). */
export interface Fans {
  fanIn: number;
  fanOut: number;
}

/**
 * Draws `rows × cols` values (row-major) for a weight matrix [fanIn = rows][fanOut = cols]
 * (the tfjs Dense layout; a conv2d kernel [kh·kw·c_in][c_out] with `fans` k²·c_in and k²·c_out) or, with
 * rows = 1, a bias vector.
 */
export function initialize(spec: InitializerSpec, rows: number, cols: number, rng: Rng, isBias = false, fans?: Fans): Float32Array {
  const size = rows * cols;
  const out = new Float32Array(size);
  // A bias vector has no fan: Keras uses its length for both; so do we. PyTorch's default bias uses
  // the weight's fan_in (`fans`, where the caller knows it).
  const biasFan = spec.name === 'pytorch_default' && fans ? fans.fanIn : cols;
  const fanIn = isBias ? biasFan : fans?.fanIn ?? rows;
  const fanOut = isBias ? biasFan : fans?.fanOut ?? cols;
  switch (spec.name) {
    case 'zeros': return out;
    case 'ones': return out.fill(1);
    case 'constant': return out.fill(spec.value!);
    case 'random_normal':
      for (let i = 0; i < size; i++) out[i] = spec.mean! + spec.stddev! * rng.normal();
      return out;
    case 'truncated_normal':
      for (let i = 0; i < size; i++) out[i] = spec.mean! + spec.stddev! * truncatedNormal(rng);
      return out;
    case 'random_uniform':
      rng.fillUniform(out, spec.min!, spec.max!);
      return out;
    case 'orthogonal':
    case 'delta_orthogonal':
      return orthogonal(rows, cols, spec.gain!, rng);
    case 'identity':
      for (let i = 0; i < Math.min(rows, cols); i++) out[i * cols + i] = spec.gain!;
      return out;
    default: {
      const s = scalingOf(spec)!;
      const variance = s.scale / fanOf(s.mode, fanIn, fanOut);
      const std = Math.sqrt(variance);
      // The fill methods draw exactly what the per-entry loops drew, twice as fast (random.ts).
      if (s.distribution === 'uniform') {
        const limit = Math.sqrt(3 * variance);
        rng.fillUniform(out, -limit, limit);
      } else if (s.distribution === 'normal') {
        rng.fillNormal(out, std);
      } else {
        const correction = s.distribution === 'truncated_normal' ? TRUNCATION_STD : 1;
        for (let i = 0; i < size; i++) out[i] = (std / correction) * truncatedNormal(rng);
      }
      return out;
    }
  }
}
