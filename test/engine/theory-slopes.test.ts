// Measured backprop slopes of wide networks against the mean-field prediction, averaged over seeds.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { normalizeSpec } from '../../src/engine/spec.js';
import { runAnalysis } from '../../src/engine/analysis.js';
import { initParameters } from '../../src/engine/network.js';
import { networkTheory } from '../../src/engine/theory-network.js';
import { fitLogSlope } from '../../src/engine/stats.js';
import type { InitializerInput } from '../../src/engine/initializers.js';

/*
 * Settings (reference §10, scaled to the pure-JS cpu backend): width 128 ≥ 10 × depth 12, so
 * Σ 1/n_l ≈ 0.09; batch 128 of standardised 16-feature blobs; twelve seeds; the slope of ln‖δ‖ fitted
 * over the hidden layers of the output-side half (where q^l has settled), on the logs averaged over
 * seeds, against the same fit of the predicted per-layer norms (layer-local χ₁, so tanh + Glorot,
 * whose q decays as a power law, is compared with what it really does). Pass, on the ln‖δ‖² scale:
 * |s − pred| ≤ 0.1·|pred| + 0.02 (the reference's criterion). Over four disjoint sets of twelve seeds
 * (1–12, 13–24, 25–36, 37–48) the misses were ReLU + He 0.007, 0.024, 0.000, 0.006 (tolerance 0.020),
 * ReLU + Glorot ≤ 0.015 (0.089), tanh + Glorot ≤ 0.011 (0.030), sigmoid + Glorot ≤ 0.018 (0.309): the
 * ReLU + He criterion sits at the seed-to-seed noise of this width, so one set in four misses it by
 * 1.2×. SELU's finite-width drift exceeds the tolerance at this width, so it is not here.
 */
const DEPTH = 12;
const WIDTH = 128;
const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

function measuredAndPredicted(activation: string, init: InitializerInput): { measured: number; predicted: number; chi1: number | null } {
  const L = DEPTH;
  const logSum = new Array<number>(L).fill(0);
  let predicted: number[] = [];
  let layers: number[] = [];
  let chi: number | null = null;
  for (const seed of SEEDS) {
    const { spec, dataset } = normalizeSpec({
      seed,
      network: { depth: DEPTH, width: WIDTH, activation, init: { weights: init } },
      data: { source: 'blobs', features: 16, batchSize: 128 },
    });
    const params = initParameters(spec.network, spec.seed);
    const { result, input } = runAnalysis(spec, dataset, {}, params);
    const theory = networkTheory(spec, input, params, result);
    expect(theory.applicable).toBe(true);
    result.layers.forEach((s, l) => { logSum[l]! += Math.log(s.backpropNorm); });
    predicted = theory.layers.map((t) => t.predictedBackpropRelative);
    layers = theory.slopes!.layers;
    chi = theory.hidden?.chi1 ?? null;
  }
  const meanLog = logSum.map((s) => Math.exp(s / SEEDS.length));
  // ×2: fitLogSlope works on ln‖δ‖; the reference's tolerance is on ln‖δ‖².
  return { measured: 2 * fitLogSlope(meanLog, layers)!.slope, predicted: 2 * fitLogSlope(predicted, layers)!.slope, chi1: chi };
}

const within = (s: number, pred: number): boolean => Math.abs(s - pred) <= 0.1 * Math.abs(pred) + 0.02;

describe(`measured slopes agree with mean-field theory (depth ${DEPTH}, width ${WIDTH}, ${SEEDS.length} seeds)`, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('ReLU + He (plain normal, σ_w² = 2): flat, ln χ₁ = 0', () => {
    const r = measuredAndPredicted('relu', 'he_normal');
    expect(r.chi1).toBeCloseTo(1, 6);
    expect(r.predicted).toBeCloseTo(0, 6);
    expect(within(r.measured, r.predicted), `measured ${r.measured} vs ${r.predicted}`).toBe(true);
  });

  it('ReLU + Glorot (σ_w² = 1): ln ½ per layer', () => {
    const r = measuredAndPredicted('relu', 'glorot_normal');
    expect(r.predicted).toBeCloseTo(Math.log(0.5), 6);
    expect(within(r.measured, r.predicted), `measured ${r.measured} vs ${r.predicted}`).toBe(true);
  });

  it('tanh + Glorot (σ_w² = 1): the layer-local χ₁ of a decaying q', () => {
    const r = measuredAndPredicted('tanh', 'glorot_normal');
    expect(r.predicted).toBeLessThan(-0.05);
    expect(r.predicted).toBeGreaterThan(-0.2);
    expect(within(r.measured, r.predicted), `measured ${r.measured} vs ${r.predicted}`).toBe(true);
  });

  it('sigmoid + Glorot (σ_w² = 1): ln 0.0557 per layer', () => {
    const r = measuredAndPredicted('sigmoid', 'glorot_normal');
    expect(r.predicted).toBeCloseTo(Math.log(0.0557), 2);
    expect(within(r.measured, r.predicted), `measured ${r.measured} vs ${r.predicted}`).toBe(true);
  });

  it('ReLU + tfjs-layers heNormal (uncorrected truncation): realised σ_w² = 1.547, ln 0.774 per layer, not 0', () => {
    const r = measuredAndPredicted('relu', { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'truncated_normal_uncorrected' });
    expect(r.predicted).toBeCloseTo(Math.log(0.7737), 3);
    expect(within(r.measured, r.predicted), `measured ${r.measured} vs ${r.predicted}`).toBe(true);
    expect(within(r.measured, 0)).toBe(false);
  });
});
