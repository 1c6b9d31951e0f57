// Host-side batch statistics: the JavaScript reductions against plain float64 definitions, the addon's C reductions against them,
// and the statistics of derivative arrays as each backend produces them.
import * as tf from '@tensorflow/tfjs';
import { describeNative } from '../support/native.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/common/random.js';
import {
  derivativeCounts, derivativeCountsJs, derivativeFractions, derivativeFractionsJs, layerReading, momentsJs, momentsOf,
  perExampleNorms, rowNorms, rowNormsJs, setReductionImplementation, varianceAround, varianceAroundJs,
} from '../../src/engine/measure/batch-stats.js';
import { nativeReductions, registerNativeKernels, restoreStockKernels } from '../../src/engine/backends/native-kernels.js';
import { ACTIVATION_NAMES, activation, normalizeActivation } from '../../src/engine/model/activations.js';
import { hostReader } from '../../src/engine/measure/measure.js';
import { useBackend, useTestBackend } from '../backends.js';

const rng = new Rng(11);

function values(n: number, scale = 1, specials: number[] = []): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  for (const v of specials) a[rng.int(n)] = v;
  return a;
}

/** The definitions, written the slow obvious way. */
function reference(a: Float32Array): { sum: number; sumSq: number; maxAbs: number } {
  let sum = 0, sumSq = 0, maxAbs = 0, nan = false;
  for (const v of a) {
    sum += v;
    sumSq += v * v;
    if (Number.isNaN(v)) nan = true;
    else maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  return { sum, sumSq, maxAbs: nan ? NaN : maxAbs };
}

const close = (a: number, b: number, rtol: number): boolean =>
  Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= rtol * Math.max(Math.abs(a), Math.abs(b));

describe('JavaScript reductions', () => {
  it('moments match the definitions, odd and even lengths, NaN and infinities propagated', () => {
    for (const n of [0, 1, 2, 3, 255, 256, 4097]) {
      for (const specials of [[], [NaN], [Infinity], [-Infinity], [NaN, Infinity], [0, -0]]) {
        if (n === 0 && specials.length > 0) continue;
        const a = values(n, 3, specials);
        const got = momentsJs(a), want = reference(a);
        expect(got.n).toBe(n);
        for (const k of ['sum', 'sumSq', 'maxAbs'] as const) {
          expect(close(got[k], want[k], 1e-12), `${k} n=${n} specials=${specials.join()}: ${got[k]} vs ${want[k]}`).toBe(true);
        }
      }
    }
  });

  it('neither underflows nor overflows where float32 sums of squares would', () => {
    const tiny = values(1000, 1e-27), huge = values(1000, 1e30);
    expect(Math.sqrt(momentsJs(tiny).sumSq)).toBeGreaterThan(1e-26);
    expect(Number.isFinite(momentsJs(huge).sumSq)).toBe(true);
  });

  it('variance is the two-pass population variance, exact where Σx² − n·mean² would cancel', () => {
    const a = new Float32Array(4096);
    for (let i = 0; i < a.length; i++) a[i] = 0.5 + (i % 2 === 0 ? 1 : -1) * 2 ** -20;
    const mean = reference(a).sum / a.length;
    expect(varianceAroundJs(a, mean)).toBeCloseTo(2 ** -40, 50);
    expect(varianceAroundJs(new Float32Array(0), 0)).toBeNaN();
  });

  it('derivative fractions: dead units are zero in every row, NaN passes gradient, saturation is strict', () => {
    const units = 4;
    const d = Float32Array.from([
      0, 1, NaN, 0.001,
      0, 0, 0, 0.5,
      -0, 0, 0, 0.005,
    ]);
    // Units 0 (all zero, -0 included) is dead; 1, 2 (NaN) and 3 are not.
    const { dead, saturated } = derivativeFractionsJs(d, units, Math.fround(0.01));
    expect(dead).toBe(1 / 4);
    // |d| < 0.01: the seven zeros, 0.001 and 0.005 (not NaN, 1 or 0.5).
    expect(saturated).toBe(9 / 12);
    expect(derivativeFractionsJs(d, units, null).saturated).toBe(-1);
  });

  it('row norms and per-example norms, with the device path\'s rule for non-finite tensors', () => {
    const x = Float32Array.from([3, 4, 0, 0, 1, 0]);
    expect(Array.from(rowNormsJs(x, 2))).toEqual([5, 0, 1]);
    const delta = Float32Array.from([1, 0, 0, 2, 2, 0]);
    expect(perExampleNorms(x, 2, delta, 2, 3)).toEqual([3 * 5 * 1, 3 * 0 * 2, 3 * 1 * 2]);
    const inf = Float32Array.from([Infinity, 0, 1, 0, 1, 0]);
    expect(perExampleNorms(inf, 2, delta, 2, 3)).toEqual([Infinity, Infinity, Infinity]);
  });

  it('layerReading reads post once where out is the same array, and reports -1 without a derivative', () => {
    const post = Float32Array.from([1, 2, 3, 4]);
    const r = layerReading({
      weight: Float32Array.from([3, 4]), grad: Float32Array.from([-6, 8]), biasGrad: null, delta: Float32Array.from([0, 2]),
      pre: Float32Array.from([1, -1, 1, -1]), post, out: post, derivative: null, units: 2, saturationLimit: null,
    });
    expect(r).toEqual({
      weightNorm: 5, gradNorm: 10, gradMaxAbs: 8, biasGradNorm: NaN, deltaNorm: 2, preMeanSq: 1,
      actMean: 2.5, actVar: 1.25, outMeanSq: 7.5, dead: -1, saturated: -1,
    });
  });
});

describeNative('native reductions (addon)', () => {
  beforeAll(async () => {
    await useBackend('native');
  });
  afterAll(async () => {
    setReductionImplementation('auto');
    await useTestBackend();
  });

  it('are in use only while native kernels are registered', () => {
    expect(nativeReductions()).not.toBeNull();
    restoreStockKernels(tf);
    expect(nativeReductions()).toBeNull();
    registerNativeKernels(tf);
    expect(nativeReductions()).not.toBeNull();
  });

  it('agree with the JavaScript reductions to 1e-12 on random arrays with special values', () => {
    for (let trial = 0; trial < 60; trial++) {
      const n = trial < 5 ? trial : 1 + rng.int(20_000);
      const specials = trial % 5 === 0 ? [NaN] : trial % 7 === 0 ? [Infinity, -Infinity] : trial % 3 === 0 ? [1e-40, 3e38, -0] : [];
      const a = values(n, trial % 2 ? 1e-20 : 10, n > 0 ? specials : []);
      const nat = momentsOf(a), js = momentsJs(a);
      for (const k of ['sum', 'sumSq', 'maxAbs'] as const) {
        expect(close(nat[k], js[k], 1e-12), `${k} trial ${trial}: ${nat[k]} vs ${js[k]}`).toBe(true);
      }
      const mean = n > 0 ? js.sum / n : 0;
      expect(close(varianceAround(a, mean), varianceAroundJs(a, mean), 1e-12)).toBe(true);
      const cols = [1, 3, 7, 64, 256][trial % 5]!;
      const rows = Math.floor(n / cols);
      if (rows > 0) {
        const m = a.subarray(0, rows * cols);
        const rn = rowNorms(m, cols), rj = rowNormsJs(m, cols);
        for (let r = 0; r < rows; r++) expect(close(rn[r]!, rj[r]!, 1e-12), `row ${r}`).toBe(true);
        // A derivative-like array: many exact zeros, some tiny, some NaN.
        const d = Float32Array.from(m, (v, i) => (i % 3 === 0 ? 0 : i % 11 === 0 ? NaN : v * 1e-3));
        for (const limit of [null, Math.fround(0.01), Math.fround(0.0025)]) {
          expect(derivativeFractions(d, cols, limit)).toEqual(derivativeFractionsJs(d, cols, limit));
        }
      }
    }
  });

  it('reject arrays of the wrong type or shape instead of reading out of bounds', () => {
    const r = nativeReductions()!;
    expect(() => r.moments(new Float32Array(4), new Float64Array(2))).toThrow(RangeError);
    expect(() => r.derivativeStats(new Float32Array(5), 2, 0.1, new Float64Array(2))).toThrow(RangeError);
    expect(() => r.rowSumSq(new Float32Array(6), 4, new Float64Array(2))).toThrow(RangeError);
    expect(() => r.rowSumSq(new Float32Array(8), 4, new Float64Array(1))).toThrow(RangeError);
    expect(() => r.moments(new Float64Array(4) as unknown as Float32Array, new Float64Array(3))).toThrow(TypeError);
  });
});

describe("derivative statistics from this backend's own arrays, every activation", () => {
  let backend: string;
  beforeAll(async () => {
    backend = await useTestBackend();
  });

  // 32 examples x 6 units; unit j spans centre[j] ± spread[j]/2: some units sit wholly in a flat region
  // (dead for relu at −5, for relu6 at 8), others cross the kinks at 0, ±3 and 6.
  const centre = [-5, -2, 0, 2, 5, 8], spread = [2, 6, 10, 2, 4, 2];
  const rows = 32, units = centre.length;
  const h = Float32Array.from({ length: rows * units }, (_, k) => {
    const r = Math.floor(k / units), j = k % units;
    return centre[j]! + spread[j]! * (r / (rows - 1) - 0.5);
  });

  it.each(ACTIVATION_NAMES.filter((n) => n !== 'softmax'))('%s: read back as a Float32Array; dead units and saturation as the scalar φ′ gives them', async (name) => {
    const act = activation(normalizeActivation(name, 'a'));
    const d = tf.tidy(() => act.derivative!(tf.tensor2d(h, [rows, units])));
    const values = (await hostReader([d]))(d);
    d.dispose();
    // The cpu backend stores cast(bool → float32) as the bool's Uint8Array (relu6, hard_sigmoid before
    // its scaling): the native reductions reject anything but a Float32Array.
    expect(values, backend).toBeInstanceOf(Float32Array);
    const limit = act.saturating ? Math.fround(0.01 * act.peakDerivative) : null;
    const reference = derivativeCountsJs(Float32Array.from(h, act.df!), units, limit);
    const got = derivativeCounts(values, units, limit);
    expect(got, `${name} on ${backend}`).toEqual(reference);
  });
});
