// What one batch's measurement reads back: the per-layer readings and the batch-level values. Its own file
// so that measure.ts (which measures) and combine-shards.ts (which recombines shards) share the shapes
// without importing each other.
import type { HostReading } from './batch-stats.js';

/** Per-layer raw readings from one batch (float64 after read-back): one shape for host and device statistics. */
export type Reading = HostReading;

export interface BatchMeasurement {
  loss: number;
  readings: Reading[];
  /** Gradient norm of each auxiliary parameter, in the order of extras.aux. */
  auxGradNorms: number[];
  /** Per-example weight-gradient norms ‖∂ℓ_i/∂W‖ of the requested layers. */
  perExample: { layer: number; norms: number[] }[];
}
