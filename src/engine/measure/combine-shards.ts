// One batch split into shards (rows) measured apart, e.g. on different workers, and recombined into the whole batch's measurement.
//
// The loss is a mean over the batch, so with shard k holding B_k of the B examples and computing its own
// mean loss L_k, the batch loss is L = Σ w_k L_k with w_k = B_k / B, and every gradient is the same
// weighted sum of the shards' gradients. What the statistics need from each shard, and how it combines:
// - ∂L/∂W, ∂L/∂b, auxiliary gradients: Σ w_k G_k, element by element, then the norm and max of that
//   (a norm of a sum is not a function of the norms);
// - ∂L/∂h has one row per example: shard k's rows of the batch's δ are w_k δ_k, so
//   ‖δ‖² = Σ w_k² ‖δ_k‖² (sums of squares add);
// - mean h², mean output²: sums of squares and counts add;
// - activation mean and variance: sums add; the variance by the parallel formula
//   M2 = Σ M2_k + Σ n_k (mean_k − mean)² (Chan et al.), exact where Σx² − n·mean² would cancel;
// - dead units: dead in the batch when dead in every shard; saturated entries: counts add;
// - per-example gradient norms ‖x_i‖·‖∂ℓ_i/∂h_i‖ do not depend on the batch: rows are concatenated.
// Batch normalisation couples the examples of a batch, so a batch-normalised network cannot be split.
import type { BatchMeasurement, Reading } from './readings.js';
import type { LayerPartial } from './batch-stats.js';
import { normOf } from './batch-stats.js';

export interface ShardPartial {
  /** Examples in this shard. */
  batch: number;
  /** The shard's own mean loss. */
  loss: number;
  layers: LayerPartial[];
  /** Gradients of the auxiliary parameters (normalisation gamma/beta, gates, Fixup scalars) of the shard's loss. */
  auxGrads: Float32Array[];
  /** Per-example weight-gradient norms of this shard's rows. */
  perExample: { layer: number; norms: number[] }[];
}

/** Contiguous row ranges [start, end) of `count` shards over `batch` rows, as even as possible. */
export function shardRanges(batch: number, count: number): Array<[number, number]> {
  const k = Math.max(1, Math.min(count, batch));
  return Array.from({ length: k }, (_, i) => [Math.floor((i * batch) / k), Math.floor(((i + 1) * batch) / k)] as [number, number]);
}

/** ‖Σ w_k g_k‖ and max|Σ w_k g_k| in float64 without materialising the sum (one shard: its own norm). */
function weightedNorm(parts: Float32Array[], weights: number[]): { norm: number; maxAbs: number } {
  if (parts.length === 1 && weights[0] === 1) return normOf(parts[0]!);
  const n = parts[0]!.length;
  let sumSq = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (let k = 0; k < parts.length; k++) v += weights[k]! * parts[k]![i]!;
    sumSq += v * v;
    max = Math.max(max, Math.abs(v));
  }
  return { norm: Math.sqrt(sumSq), maxAbs: Number.isNaN(sumSq) ? NaN : max };
}

/** The whole batch's measurement from its shards, in row order. */
export function combineShards(shards: ShardPartial[]): BatchMeasurement {
  if (shards.length === 0) throw new RangeError('combineShards needs at least one shard');
  const B = shards.reduce((s, p) => s + p.batch, 0);
  const w = shards.map((p) => p.batch / B);
  const L = shards[0]!.layers.length;
  const readings: Reading[] = [];
  for (let l = 0; l < L; l++) {
    const parts = shards.map((p) => p.layers[l]!);
    const first = parts[0]!;
    const grad = weightedNorm(parts.map((p) => p.grad), w);
    const count = parts.reduce((s, p) => s + p.count, 0);
    const postSum = parts.reduce((s, p) => s + p.postSum, 0);
    const mean = count > 0 ? postSum / count : NaN;
    let m2 = 0;
    for (const p of parts) {
      if (p.count === 0) continue;
      const d = p.postSum / p.count - mean;
      m2 += p.postM2 + p.count * d * d;
    }
    let dead = -1;
    let saturated = -1;
    if (first.derivative) {
      const units = first.derivative.deadUnits.length;
      let deadUnits = 0;
      for (let j = 0; j < units; j++) {
        if (parts.every((p) => p.derivative!.deadUnits[j] === 1)) deadUnits++;
      }
      dead = units > 0 ? deadUnits / units : NaN;
      if (first.derivative.saturated !== null) {
        const entries = parts.reduce((s, p) => s + p.derivative!.entries, 0);
        const sat = parts.reduce((s, p) => s + p.derivative!.saturated!, 0);
        saturated = entries > 0 ? sat / entries : NaN;
      }
    }
    readings.push({
      weightNorm: first.weightNorm,
      gradNorm: grad.norm,
      gradMaxAbs: grad.maxAbs,
      biasGradNorm: first.biasGrad ? weightedNorm(parts.map((p) => p.biasGrad!), w).norm : NaN,
      deltaNorm: Math.sqrt(parts.reduce((s, p, k) => s + w[k]! * w[k]! * p.deltaSumSq, 0)),
      preMeanSq: count > 0 ? parts.reduce((s, p) => s + p.preSumSq, 0) / count : NaN,
      actMean: mean,
      actVar: count > 0 ? m2 / count : NaN,
      outMeanSq: count > 0 ? parts.reduce((s, p) => s + p.outSumSq, 0) / count : NaN,
      dead,
      saturated,
    });
  }
  const auxGradNorms = shards[0]!.auxGrads.map((_, i) => weightedNorm(shards.map((p) => p.auxGrads[i]!), w).norm);
  const perExample = shards[0]!.perExample.map(({ layer }, i) => ({
    layer, norms: shards.flatMap((p) => p.perExample[i]!.norms),
  }));
  return { loss: shards.reduce((s, p, k) => s + w[k]! * p.loss, 0), readings, auxGradNorms, perExample };
}
