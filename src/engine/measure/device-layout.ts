// The device path's single read-back, by name: each layer's row of statistics is written and read through one list of fields.
//
// The device path (measure.ts) reduces every statistic with tfjs ops and reads them all back in one
// transfer: L rows of LAYER_FIELDS (one per layer), then the per-example parts, then the auxiliary
// gradients' parts. Norms travel as [max|t|, Σ(t / max|t|)²] pairs so that float32 neither underflows
// (1e-27 gradients of a vanishing chain) nor overflows; normFromParts puts them together in float64.
import type { HostReading } from './batch-stats.js';

/** The fields of one layer's row, in the order they are laid out. Writer and reader both go through this list. */
export const LAYER_FIELDS = [
  'weightMax', 'weightScaledSumSq',
  'gradMax', 'gradScaledSumSq',
  'biasGradMax', 'biasGradScaledSumSq',
  'deltaMax', 'deltaScaledSumSq',
  'preMeanSq', 'actMean', 'actVar', 'outMeanSq',
  'dead', 'saturated',
] as const;

export type LayerField = (typeof LAYER_FIELDS)[number];

/** Entries per layer row. */
export const LAYER_ROW = LAYER_FIELDS.length;

/** One layer's row in LAYER_FIELDS order: what the device path stacks into the read-back. */
export function layerRow<T>(fields: Record<LayerField, T>): T[] {
  return LAYER_FIELDS.map((f) => fields[f]);
}

/** The named fields of one layer's row (LAYER_ROW entries, as layerRow laid them out). */
export function readLayerRow(row: ArrayLike<number>): Record<LayerField, number> {
  if (row.length !== LAYER_ROW) throw new RangeError(`a layer row has ${LAYER_ROW} entries, not ${row.length}`);
  const fields = {} as Record<LayerField, number>;
  LAYER_FIELDS.forEach((f, i) => { fields[f] = row[i]!; });
  return fields;
}

/** ‖t‖ from its [max|t|, Σ(t / max|t|)²] pair; a non-finite max (Inf or NaN inside) is reported as such. */
export function normFromParts(maxAbs: number, scaledSumSq: number): number {
  if (!Number.isFinite(maxAbs)) return maxAbs;
  return maxAbs * Math.sqrt(scaledSumSq);
}

/** A layer's reading (the shape the host path gives too) from its named row. */
export function readingFromRow(r: Record<LayerField, number>): HostReading {
  return {
    weightNorm: normFromParts(r.weightMax, r.weightScaledSumSq),
    gradNorm: normFromParts(r.gradMax, r.gradScaledSumSq),
    gradMaxAbs: r.gradMax,
    biasGradNorm: normFromParts(r.biasGradMax, r.biasGradScaledSumSq),
    deltaNorm: normFromParts(r.deltaMax, r.deltaScaledSumSq),
    preMeanSq: r.preMeanSq,
    actMean: r.actMean,
    actVar: r.actVar,
    outMeanSq: r.outMeanSq,
    dead: r.dead,
    saturated: r.saturated,
  };
}

/** Reads the read-back front to back, in the order its parts were concatenated. */
export class ReadCursor {
  private at = 0;

  constructor(private readonly values: Float32Array) {}

  next(): number {
    return this.values[this.at++]!;
  }

  take(n: number): Float32Array {
    const part = this.values.subarray(this.at, this.at + n);
    this.at += n;
    return part;
  }

  /** Entries not read yet (0 once every part has been read). */
  get remaining(): number {
    return this.values.length - this.at;
  }
}
