// Measured backprop slopes of wide networks against the mean-field prediction, seed by seed, with the
// statistics that turn them into a pass/fail with a known false-failure rate; shared by
// test/engine/theory-slopes.test.ts and scripts/docs-tables.ts (docs/reading-the-results.md).
import {
  normalizeSpec, runAnalysis, initParameters, networkTheory, fitLogSlope,
} from '../../src/engine/index.js';
import type { Static } from 'typebox';
import type { ActivationSchema, InitializerSchema } from '../../src/schemas/spec.js';

export interface SlopeConfig {
  label: string;
  activation: Static<typeof ActivationSchema>;
  init: Static<typeof InitializerSchema>;
}

export const SLOPE_CONFIGS: SlopeConfig[] = [
  { label: 'ReLU + He (plain normal)', activation: 'relu', init: 'he_normal' },
  { label: 'ReLU + Glorot normal', activation: 'relu', init: 'glorot_normal' },
  { label: 'tanh + Glorot normal', activation: 'tanh', init: 'glorot_normal' },
  { label: 'sigmoid + Glorot normal', activation: 'sigmoid', init: 'glorot_normal' },
  { label: 'ReLU + tfjs heNormal (uncorrected)', activation: 'relu', init: { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'truncated_normal_uncorrected' } },
  { label: 'SELU + LeCun normal', activation: 'selu', init: 'lecun_normal' },
];

export interface SlopeSettings {
  depth: number;
  width: number;
  batch: number;
  /** The seeds: one network and one batch of standardised 16-feature blobs each. */
  seeds: number[];
}

export const seedRange = (first: number, count: number): number[] => Array.from({ length: count }, (_, i) => first + i);

/** The settings of test/engine/theory-slopes.test.ts (its comment says why). */
export const SLOPE_TEST_SETTINGS: SlopeSettings = { depth: 12, width: 128, batch: 64, seeds: seedRange(1, 48) };

/** Two-sided false-failure probability of one configuration's check. */
export const FALSE_FAILURE_RATE = 1e-3;

/**
 * Student's t quantile at 1 − FALSE_FAILURE_RATE/2 (z = 3.2905) for df degrees of freedom, by the
 * Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5): within 1e-5 of the exact value for df ≥ 20
 * (scipy.stats.t.ppf(0.9995, 47) = 3.50990; this gives 3.50990).
 */
export function tQuantile(df: number): number {
  const z = 3.2905267314919255;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
    + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3)
    + (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / (92160 * df ** 4);
}

/** The reference's criterion for the expected slope, on the ln‖δ‖² scale: 0.1·|predicted| + 0.02. */
export const theoryTolerance = (predicted: number): number => 0.1 * Math.abs(predicted) + 0.02;

export interface SlopeMeasurement {
  label: string;
  chi1: number | null;
  /** Mean over seeds of the predicted and the measured slope of ln‖δ‖² per layer toward the input. */
  predicted: number;
  measured: number;
  /** measured − predicted per seed, and their mean, sample standard deviation and standard error. */
  differences: number[];
  difference: number;
  sd: number;
  standardError: number;
  tolerance: number;
  /** tQuantile(n − 1) · standardError: what the seed noise adds to the tolerance. */
  noiseAllowance: number;
  agrees: boolean;
}

/** Per seed: the slope of ln‖δ‖² measured and predicted over the theory's slope layers (output-side half). */
async function oneSeed(config: SlopeConfig, settings: SlopeSettings, seed: number): Promise<{ measured: number; predicted: number; chi1: number | null }> {
  const { spec, dataset } = normalizeSpec({
    seed,
    network: { depth: settings.depth, width: settings.width, activation: config.activation, init: { weights: config.init } },
    data: { source: 'blobs', features: 16, batchSize: settings.batch },
  });
  const params = initParameters(spec.network, spec.seed);
  const { result, input } = await runAnalysis(spec, dataset, {}, params);
  const theory = networkTheory(spec, input, params, result);
  if (!theory.applicable || !theory.slopes) throw new Error(`${config.label}: theory does not apply (${theory.reason})`);
  const layers = theory.slopes.layers;
  // ×2: fitLogSlope works on ln‖δ‖; the criterion is on ln‖δ‖².
  return {
    measured: 2 * fitLogSlope(result.layers.map((s) => s.backpropNorm), layers)!.slope,
    predicted: 2 * fitLogSlope(theory.layers.map((t) => t.predictedBackpropRelative), layers)!.slope,
    chi1: theory.hidden?.chi1 ?? null,
  };
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

/**
 * The slope is a least-squares fit, linear in the logs, so the fit of the seed-averaged logs is the mean
 * of the per-seed fits; the seeds are independent, so the mean difference has standard error sd/√n.
 */
export async function measureSlopes(config: SlopeConfig, settings: SlopeSettings): Promise<SlopeMeasurement> {
  const runs: Awaited<ReturnType<typeof oneSeed>>[] = [];
  for (const seed of settings.seeds) runs.push(await oneSeed(config, settings, seed));
  const n = runs.length;
  const differences = runs.map((r) => r.measured - r.predicted);
  const difference = mean(differences);
  const sd = Math.sqrt(differences.reduce((a, d) => a + (d - difference) ** 2, 0) / (n - 1));
  const standardError = sd / Math.sqrt(n);
  const predicted = mean(runs.map((r) => r.predicted));
  const tolerance = theoryTolerance(predicted);
  const noiseAllowance = tQuantile(n - 1) * standardError;
  return {
    label: config.label, chi1: runs[0]!.chi1, predicted, measured: mean(runs.map((r) => r.measured)),
    differences, difference, sd, standardError, tolerance, noiseAllowance,
    agrees: Math.abs(difference) <= tolerance + noiseAllowance,
  };
}
