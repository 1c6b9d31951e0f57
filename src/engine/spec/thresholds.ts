// Verdict and flag thresholds: documented defaults, overridable per request through spec.thresholds.
import type { ThresholdsInput } from '../../schemas/spec.js';
import { SpecError } from '../common/errors.js';

export interface Thresholds {
  vanishingRatio: number;
  explodingRatio: number;
  perLayerFactor: number;
  minR2: number;
  onsetFactor: number;
  deadFraction: number;
  saturatedFraction: number;
  saturationDerivative: number;
  minGradRms: number;
}

/*
 * Why these defaults:
 * - 10× between the first and the output layer's backprop signal is one order of magnitude: with
 *   plain SGD the first layer then learns ten times slower (or faster) than the last, and it is where
 *   Schoenholz et al.'s trainability edge (L ≈ 6ξ, a variance ratio e^±6 ≈ 20× in norm) begins to
 *   bite. It keeps SELU (χ₁ = 1.072, ×1.035 per layer, ×3 over 32 layers) healthy, as it should be.
 * - perLayerFactor 2 catches short networks that halve the signal at every layer before the total
 *   crosses 10×, but only with a clean exponential fit (r² ≥ 0.9 over ≥ 3 layers).
 * - dead/saturated at 50% of the layer and |φ'| < 1% of its peak follow SageMaker Debugger's rules.
 * - minGradRms 1e-7 is SageMaker's absolute VanishingGradient threshold, kept only as a backstop.
 */
export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  vanishingRatio: 0.1,
  explodingRatio: 10,
  perLayerFactor: 2,
  minR2: 0.9,
  onsetFactor: 2,
  deadFraction: 0.5,
  saturatedFraction: 0.5,
  saturationDerivative: 0.01,
  minGradRms: 1e-7,
});

export function normalizeThresholds(input: ThresholdsInput | undefined): Thresholds {
  const t: Thresholds = { ...DEFAULT_THRESHOLDS, ...(input ?? {}) };
  for (const [key, value] of Object.entries(t)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new SpecError(`thresholds.${key}`, `thresholds.${key} must be a finite number`);
  }
  if (t.vanishingRatio >= 1) throw new SpecError('thresholds.vanishingRatio', 'thresholds.vanishingRatio must be below 1');
  if (t.explodingRatio <= 1) throw new SpecError('thresholds.explodingRatio', 'thresholds.explodingRatio must be above 1');
  return t;
}
