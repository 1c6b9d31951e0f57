// Per-layer batch statistics computed on the host in float64 from the backend's own arrays (the fast path of measureBatch).
//
// Why on the host: on the cpu and wasm backends a tensor's values already live in (or are one memcpy away
// from) JavaScript, so reading them costs nothing next to the ~15 tfjs kernels per layer the device path
// dispatches (abs, max, divNoNan, square, sum, moments, derivative, equal, cast, mean...), most of which
// the stock cpu backend runs in slow generic loops. Accumulating in float64 also makes the max-scaling
// of the float32 path unnecessary: Σx² of any float32 values neither underflows nor overflows a double.
//
// Semantics follow the device path exactly where they are not about rounding: NaN anywhere makes a norm
// and a max NaN, an infinity makes them Infinity, a unit is dead when no example has a non-zero
// derivative (NaN counts as non-zero), and the saturation threshold is compared in float32.
//
// With the native path registered, the addon's C loops do the passes (a few ms per W2 analysis instead
// of ~15 ms of JavaScript); these JavaScript versions are the reference its tests compare against.
import { nativeReductions, type NativeReductions } from '../backends/native-kernels.js';

/** Which implementation runs: 'auto' uses the addon's while native kernels are registered. */
let forced: 'auto' | 'js' = 'auto';

/** Tests and benchmarks compare the two implementations. */
export function setReductionImplementation(which: 'auto' | 'js'): void {
  forced = which;
}

function native(): NativeReductions | null {
  return forced === 'js' ? null : nativeReductions();
}

const scratch = new Float64Array(3);

export interface Moments {
  /** Σx, Σx² and max|x| in float64; max is NaN when any entry is NaN. */
  sum: number;
  sumSq: number;
  maxAbs: number;
  n: number;
}

/** Σx, Σx², max|x| in one pass. */
export function momentsOf(a: Float32Array): Moments {
  const nat = native();
  if (nat) {
    nat.moments(a, scratch);
    return { sum: scratch[0]!, sumSq: scratch[1]!, maxAbs: scratch[2]!, n: a.length };
  }
  return momentsJs(a);
}

export function momentsJs(a: Float32Array): Moments {
  let s0 = 0, s1 = 0, q0 = 0, q1 = 0, m0 = 0, m1 = 0;
  const n = a.length;
  const even = n - (n & 1);
  // Two accumulators each: independent dependency chains run twice as fast and the order stays fixed.
  // Math.max/Math.abs rather than comparisons: random signs make branches mispredict (8x slower).
  for (let i = 0; i < even; i += 2) {
    const x = a[i]!, y = a[i + 1]!;
    s0 += x; s1 += y;
    q0 += x * x; q1 += y * y;
    m0 = Math.max(m0, Math.abs(x));
    m1 = Math.max(m1, Math.abs(y));
  }
  if (even < n) {
    const x = a[even]!;
    s0 += x;
    q0 += x * x;
    m0 = Math.max(m0, Math.abs(x));
  }
  const sumSq = q0 + q1;
  return { sum: s0 + s1, sumSq, maxAbs: Number.isNaN(sumSq) ? NaN : Math.max(m0, m1), n };
}

/** ‖x‖ and max|x|. */
export function normOf(a: Float32Array): { norm: number; maxAbs: number } {
  const m = momentsOf(a);
  return { norm: Math.sqrt(m.sumSq), maxAbs: m.maxAbs };
}

/** Σ(x − mean)², the second pass of a variance (no Σx² − n·mean² cancellation). */
export function centeredSumSq(a: Float32Array, mean: number): number {
  const nat = native();
  if (nat) return nat.centered(a, mean);
  return centeredSumSqJs(a, mean);
}

export function centeredSumSqJs(a: Float32Array, mean: number): number {
  let v0 = 0, v1 = 0;
  const n = a.length;
  const even = n - (n & 1);
  for (let i = 0; i < even; i += 2) {
    const d = a[i]! - mean, e = a[i + 1]! - mean;
    v0 += d * d;
    v1 += e * e;
  }
  if (even < n) {
    const d = a[even]! - mean;
    v0 += d * d;
  }
  return v0 + v1;
}

/** Population variance around a given mean. */
export function varianceAround(a: Float32Array, mean: number): number {
  return a.length > 0 ? centeredSumSq(a, mean) / a.length : NaN;
}

export function varianceAroundJs(a: Float32Array, mean: number): number {
  return a.length > 0 ? centeredSumSqJs(a, mean) / a.length : NaN;
}

/** What φ'(h) says about a layer on one batch (or one shard of it). */
export interface DerivativeCounts {
  /** 1 for each unit whose derivative is exactly 0 for every example (NaN counts as non-zero). */
  deadUnits: Uint8Array;
  /** Entries with |φ'(h)| < limit (NaN is not), or null without a limit. */
  saturated: number | null;
  entries: number;
}

/**
 * Dead units and saturated entries from φ'(h) laid out [batch, units] (limit already float32), as
 * counts so that shards of a batch add up: a unit is dead in the batch when it is dead in every shard.
 */
export function derivativeCounts(d: Float32Array, units: number, saturationLimit: number | null): DerivativeCounts {
  const nat = native();
  if (nat && units > 0) {
    const deadUnits = new Uint8Array(units);
    nat.derivativeStats(d, units, saturationLimit ?? -1, scratch, deadUnits);
    return { deadUnits, saturated: saturationLimit === null ? null : scratch[1]!, entries: d.length };
  }
  return derivativeCountsJs(d, units, saturationLimit);
}

export function derivativeCountsJs(d: Float32Array, units: number, saturationLimit: number | null): DerivativeCounts {
  const alive = new Uint8Array(units);
  let saturated = 0;
  const rows = units > 0 ? d.length / units : 0;
  // Branch-free: a derivative's sign and size are data, and mispredicted branches dominate otherwise.
  // NaN !== 0 counts as passing gradient, as tf.equal(max, 0) is false for NaN; NaN < limit is false.
  const limit = saturationLimit ?? -1;
  for (let r = 0, k = 0; r < rows; r++) {
    for (let j = 0; j < units; j++, k++) {
      const v = d[k]!;
      alive[j] = alive[j]! | +(v !== 0);
      saturated += +(Math.abs(v) < limit);
    }
  }
  const deadUnits = new Uint8Array(units);
  for (let j = 0; j < units; j++) deadUnits[j] = alive[j] === 0 ? 1 : 0;
  return { deadUnits, saturated: saturationLimit === null ? null : saturated, entries: d.length };
}

/** Dead fraction of units and saturated fraction of entries (-1 where not measured). */
export function derivativeFractions(d: Float32Array, units: number, saturationLimit: number | null): { dead: number; saturated: number } {
  return fractionsOf(derivativeCounts(d, units, saturationLimit));
}

export function derivativeFractionsJs(d: Float32Array, units: number, saturationLimit: number | null): { dead: number; saturated: number } {
  return fractionsOf(derivativeCountsJs(d, units, saturationLimit));
}

function fractionsOf(c: DerivativeCounts): { dead: number; saturated: number } {
  let dead = 0;
  for (let j = 0; j < c.deadUnits.length; j++) dead += c.deadUnits[j]!;
  return {
    dead: c.deadUnits.length > 0 ? dead / c.deadUnits.length : NaN,
    saturated: c.saturated === null ? -1 : c.entries > 0 ? c.saturated / c.entries : NaN,
  };
}

/** sqrt(Σ_j x[i, j]²) for each row of a [rows, cols] array. */
export function rowNorms(a: Float32Array, cols: number): Float64Array {
  const nat = native();
  if (nat && cols > 0) {
    const out = new Float64Array(a.length / cols);
    nat.rowSumSq(a, cols, out);
    for (let r = 0; r < out.length; r++) out[r] = Math.sqrt(out[r]!);
    return out;
  }
  return rowNormsJs(a, cols);
}

export function rowNormsJs(a: Float32Array, cols: number): Float64Array {
  const rows = cols > 0 ? a.length / cols : 0;
  const out = new Float64Array(rows);
  for (let r = 0, k = 0; r < rows; r++) {
    let q = 0;
    for (let j = 0; j < cols; j++, k++) q += a[k]! * a[k]!;
    out[r] = Math.sqrt(q);
  }
  return out;
}

/**
 * Per-example ‖∂ℓ_i/∂W‖ = B·‖input_i‖·‖δ_i‖. Where a whole tensor's max|x| is not finite, the device
 * path reports that value for every example; so does this.
 */
export function perExampleNorms(input: Float32Array, inputCols: number, delta: Float32Array, deltaCols: number, batch: number): number[] {
  const inMax = momentsOf(input).maxAbs, deltaMax = momentsOf(delta).maxAbs;
  const a = rowNorms(input, inputCols), d = rowNorms(delta, deltaCols);
  const out = new Array<number>(batch);
  for (let i = 0; i < batch; i++) {
    out[i] = batch * (Number.isFinite(inMax) ? a[i]! : inMax) * (Number.isFinite(deltaMax) ? d[i]! : deltaMax);
  }
  return out;
}

/** The host arrays of one layer after a forward + backward pass. */
export interface LayerArrays {
  weight: Float32Array;
  grad: Float32Array;
  biasGrad: Float32Array | null;
  delta: Float32Array;
  pre: Float32Array;
  post: Float32Array;
  /** The same array as post where the layer adds no residual (then it is not read twice). */
  out: Float32Array;
  /** φ'(h), or null for activations without an element-wise derivative (softmax). */
  derivative: Float32Array | null;
  units: number;
  /** float32 saturation limit, or null when the activation has no flat asymptote. */
  saturationLimit: number | null;
}

/** What measure.ts calls a Reading, for one layer. */
export interface HostReading {
  weightNorm: number;
  gradNorm: number;
  gradMaxAbs: number;
  biasGradNorm: number;
  deltaNorm: number;
  preMeanSq: number;
  actMean: number;
  actVar: number;
  outMeanSq: number;
  dead: number;
  saturated: number;
}

/**
 * One layer's statistics on one shard of a batch, in the form shards combine (src/engine/measure/combine-shards.ts):
 * gradient tensors (the batch gradient is their weighted sum), sums, sums of squares and counts.
 * A whole batch is a single shard.
 */
export interface LayerPartial {
  weightNorm: number;
  /** ∂L_shard/∂W and ∂L_shard/∂b of the shard's own mean loss. */
  grad: Float32Array;
  biasGrad: Float32Array | null;
  /** ‖∂L_shard/∂h‖² (rows are this shard's examples). */
  deltaSumSq: number;
  /** Entries of h, φ(h) and the layer output: rows × units. */
  count: number;
  preSumSq: number;
  postSum: number;
  /** Σ(φ(h) − shard mean)², for the parallel variance formula. */
  postM2: number;
  outSumSq: number;
  /** Null for activations without an element-wise derivative (softmax). */
  derivative: DerivativeCounts | null;
}

export function layerPartial(l: LayerArrays): LayerPartial {
  const pre = momentsOf(l.pre);
  const post = momentsOf(l.post);
  const out = l.out === l.post ? post : momentsOf(l.out);
  const mean = post.n > 0 ? post.sum / post.n : NaN;
  return {
    weightNorm: normOf(l.weight).norm,
    grad: l.grad,
    biasGrad: l.biasGrad,
    deltaSumSq: momentsOf(l.delta).sumSq,
    count: post.n,
    preSumSq: pre.sumSq,
    postSum: post.sum,
    postM2: post.n > 0 ? centeredSumSq(l.post, mean) : NaN,
    outSumSq: out.sumSq,
    derivative: l.derivative ? derivativeCounts(l.derivative, l.units, l.saturationLimit) : null,
  };
}

/** A single shard's reading (the whole batch): what measureBatch reports on the host path. */
export function layerReading(l: LayerArrays): HostReading {
  const p = layerPartial(l);
  const grad = normOf(p.grad);
  const fractions = p.derivative ? fractionsOf(p.derivative) : { dead: -1, saturated: -1 };
  return {
    weightNorm: p.weightNorm,
    gradNorm: grad.norm,
    gradMaxAbs: grad.maxAbs,
    biasGradNorm: p.biasGrad ? normOf(p.biasGrad).norm : NaN,
    deltaNorm: Math.sqrt(p.deltaSumSq),
    preMeanSq: p.count > 0 ? p.preSumSq / p.count : NaN,
    actMean: p.count > 0 ? p.postSum / p.count : NaN,
    actVar: p.count > 0 ? p.postM2 / p.count : NaN,
    outMeanSq: p.count > 0 ? p.outSumSq / p.count : NaN,
    dead: fractions.dead,
    saturated: fractions.saturated,
  };
}
