// What-if: cures applied one at a time to the user's own network, ranked with numbers from actual runs.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import { normalizeSpec, DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { curesFor, applyCure, distanceToHealthy, variancePreservingInit } from '../../src/engine/diagnosis/what-if.js';
import { estimateCost } from '../../src/engine/spec/cost.js';
import { LimitError } from '../../src/engine/common/errors.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

const deepSigmoid: AnalysisSpecInput = {
  network: { depth: 12, width: 64, activation: 'sigmoid', init: { weights: 'glorot_uniform' } },
  data: { source: 'blobs', features: 16, batchSize: 64 },
  whatIf: true,
};

beforeAll(async () => {
  await useTestBackend();
});

describe('what-if for a deep sigmoid/Glorot network', () => {
  let out: Awaited<ReturnType<typeof analyze>>;
  let w: Body;
  beforeAll(async () => {
    out = (await analyze(deepSigmoid));
    w = (out.result as Body).whatIf;
  });

  it('ranks the variance-preserving initialisation (and ReLU + He) above leaving it alone, with measured numbers', async () => {
    const rank = (id: string): Body => w.ranking.find((r: Body) => r.id === id);
    const none = rank('none');
    const vp = rank('init:variance_preserving');
    expect(none.verdict).toBe('vanishing');
    expect(none.backpropFirstToLastRatio).toBeLessThan(1e-5);
    expect(vp.rank).toBeLessThan(none.rank);
    expect(vp.verdict).toBe('healthy');
    expect(vp.backpropFirstToLastRatio).toBeGreaterThan(0.1);
    expect(vp.change['network.init.weights'].name).toBe('variance_scaling');
    expect(vp.change['network.init.weights'].scale).toBeGreaterThan(16);
    expect(rank('activation+init:relu+he_normal').rank).toBeLessThan(none.rank);
    // Changing only the activation to ReLU keeps Glorot: χ₁ = ½, still vanishing, as theory says.
    expect(rank('activation:relu').verdict).toBe('vanishing');
    expect(w.summary).toMatch(/^Best single change: /);
  });

  it('"none" is the original analysis itself, and the ranking is by distance', async () => {
    const none = w.ranking.find((r: Body) => r.id === 'none');
    const r = out.result as Body;
    expect(none.backpropFirstToLastRatio).toBe(r.summary.backpropFirstToLastRatio);
    expect(none.backpropLogSlope).toBe(r.summary.backpropLogSlope.slope);
    const d = w.ranking.map((x: Body) => x.distance);
    expect([...d].sort((a, b) => a - b)).toEqual(d);
    expect(w.ranking.map((x: Body) => x.rank)).toEqual(d.map((_: number, i: number) => i + 1));
    expect(w.runs).toBe(w.ranking.length - 1);
    expect(out.cost.whatIfRuns).toBe(w.runs);
    expect(out.cost.totalFlops).toBeGreaterThan(out.cost.flops * w.runs);
    expect(out.timings.whatIfMs).toBeGreaterThan(0);
  });
});

describe('cures', () => {
  it('are skipped where they do not apply, with the reason', async () => {
    const { spec } = normalizeSpec({
      network: { depth: 8, width: 16, activation: 'tanh', init: { weights: 'glorot_normal' }, residual: { every: 2 }, normalization: 'batch' },
      data: { source: 'blobs', batchSize: 16 },
    });
    const { cures, skipped } = curesFor(spec);
    expect(skipped.map((s) => s.id).sort()).toEqual(['init:variance_preserving', 'normalization', 'residual']);
    expect(skipped.find((s) => s.id === 'init:variance_preserving')!.reason).toContain('already');
    expect(cures.map((c) => c.id)).toEqual(['activation:relu', 'activation+init:relu+he_normal', 'activation+init:selu+lecun_normal']);
  });

  it('variance-preserving initialisers: He for ReLU, LeCun for SELU/tanh, the critical σ_w² otherwise', async () => {
    expect(variancePreservingInit({ name: 'relu' }, 0)!.init).toBe('he_normal');
    expect(variancePreservingInit({ name: 'selu' }, 0)!.init).toBe('lecun_normal');
    expect(variancePreservingInit({ name: 'leaky_relu', alpha: 0.2 }, 0)!.sigmaW2).toBeCloseTo(2 / 1.04, 10);
    const gelu = variancePreservingInit({ name: 'gelu' }, 0)!;
    expect(gelu.sigmaW2).toBeGreaterThan(2);
    expect(gelu.sigmaW2).toBeLessThan(2.3);
  });

  it('applyCure sets dotted paths on a copy and turns off nested what-if', async () => {
    const base: AnalysisSpecInput = { network: { depth: 4, activation: 'sigmoid' }, data: { source: 'iris' }, whatIf: true, include: ['parameters'] };
    const cured = applyCure(base, { id: 'x', kind: 'init', description: '', change: { 'network.init.weights': 'he_normal' } });
    expect(cured.network.init).toEqual({ weights: 'he_normal' });
    expect(cured.whatIf).toBe(false);
    expect(cured.include).toEqual([]);
    expect(base.network.init).toBeUndefined();
  });

  it('distance: 0 for a flat flow, orders of magnitude otherwise', async () => {
    expect(distanceToHealthy(1, 0, 10)).toBe(0);
    expect(distanceToHealthy(1e-6, Math.log(1e-6) / 9, 10)).toBeCloseTo(6, 10);
    expect(distanceToHealthy(0, null, 10)).toBe(Infinity);
  });
});

describe('compute budget', () => {
  it('checks the summed cost of every what-if run before running any', async () => {
    const { spec } = normalizeSpec(deepSigmoid);
    const one = estimateCost(spec).flops;
    const limits = { ...DEFAULT_LIMITS, maxAnalysisFlops: one * 2 };
    // Without what-if it fits; with it, it does not, and nothing runs.
    await expect(analyze({ ...deepSigmoid, whatIf: false }, limits)).resolves.toBeDefined();
    const before = tf.memory().numTensors;
    let error: unknown;
    try {
      (await analyze(deepSigmoid, limits));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LimitError);
    expect((error as LimitError).limit).toBe('maxAnalysisFlops');
    expect((error as LimitError).message).toContain('what-if');
    expect(tf.memory().numTensors).toBe(before);
  });
});
