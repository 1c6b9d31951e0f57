// The Ziggurat normal sampler: moments, tails and CDF of ~2 M draws match N(0,1) within standard errors; seeds are reproducible.
import { describe, expect, it } from 'vitest';
import { Rng, ZIGGURAT } from '../../src/engine/common/random.js';

const N = 2_000_000;
/** Bounds in standard errors: with ~15 checks, 5 SE gives a false-failure chance below 1e-5. */
const K = 5;

// Reference values of the standard normal.
const TAIL_3 = 0.0026997960632601866; // P(|Z| > 3)
const PHI: ReadonlyArray<readonly [number, number]> = [
  [-2, 0.022750131948179195],
  [-1, 0.15865525393145707],
  [-0.25, 0.4012936743170763],
  [0, 0.5],
  [0.5, 0.6914624612740131],
  [1.5, 0.9331927987311419],
  [2.5, 0.9937903346742238],
];

function draws(seed: number): Float64Array {
  const f32 = new Float32Array(N);
  new Rng(seed).fillNormal(f32, 1);
  return Float64Array.from(f32);
}

describe('Ziggurat N(0,1) sampler', () => {
  it('tables: R solved to Marsaglia & Tsang\'s 3.6541528853610088 and all 256 layers of equal area', () => {
    expect(ZIGGURAT.layers).toBe(256);
    expect(Math.abs(ZIGGURAT.r - 3.6541528853610088)).toBeLessThan(1e-12);
    const { x, f } = ZIGGURAT;
    expect(x[1]).toBe(ZIGGURAT.r);
    expect(x[256]).toBe(0);
    const v = x[0]! * f[1]!; // base layer: its width times f(R)
    for (let i = 1; i < 256; i++) {
      expect(x[i + 1]!).toBeLessThan(x[i]!);
      expect(Math.abs(x[i]! * (f[i + 1]! - f[i]!) / v - 1)).toBeLessThan(1e-9);
    }
  });

  it('mean 0, variance 1, kurtosis 3, odd moments 0 within standard errors over 2 M draws', () => {
    const z = draws(20240611);
    let s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (let i = 0; i < N; i++) {
      const x = z[i]!, x2 = x * x;
      s1 += x; s2 += x2; s3 += x2 * x; s4 += x2 * x2;
    }
    const m1 = s1 / N, m2 = s2 / N, m3 = s3 / N, m4 = s4 / N;
    expect(Math.abs(m1)).toBeLessThan(K * Math.sqrt(1 / N)); // Var(Z) = 1
    expect(Math.abs(m2 - 1)).toBeLessThan(K * Math.sqrt(2 / N)); // Var(Z²) = 2
    expect(Math.abs(m3)).toBeLessThan(K * Math.sqrt(15 / N)); // Var(Z³) = 15
    expect(Math.abs(m4 - 3)).toBeLessThan(K * Math.sqrt(96 / N)); // Var(Z⁴) = 105 - 9
    // Kurtosis m4/m2², standard error sqrt(24/N).
    expect(Math.abs(m4 / (m2 * m2) - 3)).toBeLessThan(K * Math.sqrt(24 / N));
  });

  it('tail fraction beyond 3σ ≈ 0.0027, tail beyond R is reached, both signs, CDF at fixed points matches Φ', () => {
    const z = draws(77);
    let beyond3 = 0, beyondR = 0, beyondRNeg = 0, max = 0;
    const below = new Array<number>(PHI.length).fill(0);
    for (let i = 0; i < N; i++) {
      const x = z[i]!, ax = Math.abs(x);
      if (ax > 3) beyond3++;
      if (x > ZIGGURAT.r) beyondR++;
      if (x < -ZIGGURAT.r) beyondRNeg++;
      if (ax > max) max = ax;
      for (let k = 0; k < PHI.length; k++) if (x <= PHI[k]![0]) below[k]!++;
    }
    const se = (p: number): number => Math.sqrt((p * (1 - p)) / N);
    expect(Math.abs(beyond3 / N - TAIL_3)).toBeLessThan(K * se(TAIL_3));
    // P(Z > R) = 1.29016e-4 on each side: the exponential tail fallback must supply these.
    const pR = 1.2901624382695052e-4;
    expect(Math.abs(beyondR / N - pR)).toBeLessThan(K * se(pR));
    expect(Math.abs(beyondRNeg / N - pR)).toBeLessThan(K * se(pR));
    expect(max).toBeGreaterThan(4.5);
    for (let k = 0; k < PHI.length; k++) {
      const [t, p] = PHI[k]!;
      expect(Math.abs(below[k]! / N - p), `Φ(${t})`).toBeLessThan(K * se(p));
    }
  });

  it('the same seed gives identical draws (normal() and fillNormal), pinned values, other seeds differ', () => {
    const a = new Rng(42), b = new Rng(42);
    const first = Array.from({ length: 6 }, () => a.normal());
    expect(first).toEqual([
      0.1514148797546409, -0.21067537285439947, -0.7875410544898268,
      -1.2571122176976497, 0.6729857352776571, 0.0957619754421066,
    ]);
    expect(Array.from({ length: 6 }, () => b.normal())).toEqual(first);
    const f1 = new Float32Array(100_000), f2 = new Float32Array(100_000);
    new Rng(99).fillNormal(f1, 1);
    new Rng(99).fillNormal(f2, 1);
    expect(Buffer.compare(Buffer.from(f1.buffer), Buffer.from(f2.buffer))).toBe(0);
    const f3 = new Float32Array(100_000);
    new Rng(100).fillNormal(f3, 1);
    expect(Buffer.compare(Buffer.from(f1.buffer), Buffer.from(f3.buffer))).not.toBe(0);
  });
});
