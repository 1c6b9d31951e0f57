// Rng.fillNormal / fillUniform draw exactly the numbers of the per-entry loops they replace (seeded weights must not change).
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Rng, setZigguratFill, type ZigguratFill } from '../../src/engine/common/random.js';
import { native, itNative } from '../support/native.js';
import { initialize, normalizeInitializer } from '../../src/engine/model/initializers.js';

const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

describe('Rng fill methods', () => {
  it('fillNormal equals scale * normal() entry by entry (Ziggurat slow paths included), across odd and even lengths', () => {
    const loop = new Rng(123), fill = new Rng(123);
    for (const [n, scale] of [[7, 0.5], [1, 2], [0, 1], [10, 1e-3], [4097, 0.088], [3, -1]] as const) {
      const want = new Float32Array(n);
      for (let i = 0; i < n; i++) want[i] = scale * loop.normal();
      const got = new Float32Array(n);
      fill.fillNormal(got, scale);
      expect(sameBits(got, want), `n=${n}`).toBe(true);
      // Interleave single draws so that both stay on the same stream between calls.
      expect(fill.normal()).toBe(loop.normal());
    }
    expect(fill.nextUint32()).toBe(loop.nextUint32());
  });

  it('fillUniform equals uniformIn(lo, hi) entry by entry', () => {
    const loop = new Rng(9), fill = new Rng(9);
    for (const [n, lo, hi] of [[5, -1, 1], [1000, -0.07, 0.07], [0, 0, 1], [3, 2, 2]] as const) {
      const want = Float32Array.from({ length: n }, () => loop.uniformIn(lo, hi));
      const got = new Float32Array(n);
      fill.fillUniform(got, lo, hi);
      expect(sameBits(got, want)).toBe(true);
    }
    expect(fill.normal()).toBe(loop.normal());
  });

  it('initialize gives the weights it gave before the fill methods (he_normal, glorot_uniform)', () => {
    const he = initialize(normalizeInitializer('he_normal', 'w'), 300, 129, new Rng(5));
    const heLoop = new Float32Array(300 * 129);
    const r1 = new Rng(5);
    for (let i = 0; i < heLoop.length; i++) heLoop[i] = Math.sqrt(2 / 300) * r1.normal();
    expect(sameBits(he, heLoop)).toBe(true);

    const glorot = initialize(normalizeInitializer('glorot_uniform', 'w'), 64, 33, new Rng(6));
    const limit = Math.sqrt(3 * (1 / ((64 + 33) / 2)));
    const r2 = new Rng(6);
    const glorotLoop = Float32Array.from({ length: 64 * 33 }, () => r2.uniformIn(-limit, limit));
    expect(sameBits(glorot, glorotLoop)).toBe(true);
  });
});

describe('the native rectangle test (zigguratFill)', () => {
  itNative('fillNormal through the addon draws the same bits as the JavaScript loop, and leaves the generator in the same state', () => {
    const addon = createRequire(import.meta.url)((native as { path: string }).path) as { zigguratFill: ZigguratFill };
    for (const [seed, n, scale] of [[1, 1_450_000, 0.05], [77, 4096, -3], [2, 100_003, 1]] as const) {
      const js = new Float32Array(n), c = new Float32Array(n);
      const r1 = new Rng(seed), r2 = new Rng(seed);
      setZigguratFill(null);
      r1.fillNormal(js, scale);
      setZigguratFill(addon.zigguratFill);
      try {
        r2.fillNormal(c, scale);
      } finally {
        setZigguratFill(null);
      }
      expect(sameBits(c, js), `seed ${seed}, n ${n}`).toBe(true);
      expect(r2.nextUint32()).toBe(r1.nextUint32());
      expect(r2.normal()).toBe(r1.normal());
    }
  });
});
