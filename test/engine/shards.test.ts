// Splitting a batch across workers: the shards' measurements recombined equal the unsharded analysis within float32 tolerance.
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { initParameters } from '../../src/engine/model/network.js';
import { measureAnalysisShard, runAnalysis, type AnalysisResult } from '../../src/engine/measure/measure.js';
import { combineShards, shardRanges, type ShardPartial } from '../../src/engine/measure/combine-shards.js';
import { derivativeCounts, derivativeCountsJs, layerPartial, layerReading, type LayerArrays } from '../../src/engine/measure/batch-stats.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

const SPECS: Record<string, AnalysisSpecInput> = {
  'relu/he on MNIST, 2 batches': {
    seed: 3, network: { depth: 6, width: 48, activation: 'relu', init: { weights: 'he_normal' } },
    data: { source: 'mnist', batchSize: 50, batches: 2 },
  },
  'saturating sigmoid on spirals': {
    seed: 4, network: { depth: 8, width: 24, activation: 'sigmoid', init: { weights: { name: 'random_normal', stddev: 3 } } },
    data: { source: 'spirals', batchSize: 41 },
  },
  'dying relu (negative bias), softmax output': {
    seed: 10, network: { depth: 6, width: 32, activation: 'relu', init: { bias: { name: 'constant', value: -2 } } },
    data: { source: 'blobs', batchSize: 64, classes: 4 },
  },
  'plain residual tanh, mse on sine': {
    seed: 6, network: { depth: 7, width: 20, activation: 'tanh', residual: { every: 2, scale: 0.5 } },
    data: { source: 'sine', batchSize: 30, batches: 2 },
  },
  'layer norm + gelu (gamma/beta gradients)': {
    seed: 7, network: { depth: 5, width: 16, activation: 'gelu', normalization: 'layer' },
    data: { source: 'moons', batchSize: 33 },
  },
  'fixup residual (scalar auxiliary gradients)': {
    seed: 9, network: { depth: 8, width: 16, activation: 'relu', residual: { every: 2, variant: 'fixup' } },
    data: { source: 'circles', batchSize: 32 },
  },
};

const FRACTION_KEYS = new Set(['deadFraction', 'saturatedFraction']);

function compare(a: unknown, b: unknown, path: string, problems: string[]): void {
  if (typeof a === 'number' && typeof b === 'number') {
    const key = path.split('.').pop()!.replace(/\[\d+\]$/, '');
    const tol = FRACTION_KEYS.has(key) ? 0.01 : key === 'activationMean' ? 1e-5 + 1e-4 * Math.abs(b) : 2e-4 * Math.max(Math.abs(a), Math.abs(b));
    if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= tol)) problems.push(`${path}: ${a} vs ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) problems.push(`${path}: length ${a.length} vs ${b.length}`);
    a.forEach((v, i) => compare(v, b[i], `${path}[${i}]`, problems));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) compare((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k, problems);
    return;
  }
  if (a !== b) problems.push(`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

function expectSame(sharded: AnalysisResult, whole: AnalysisResult, label: string): void {
  const problems: string[] = [];
  compare(sharded, whole, '', problems);
  expect(problems, label).toEqual([]);
}

describe('shard arithmetic', () => {
  it('splits rows contiguously and evenly, never into empty shards', async () => {
    expect(shardRanges(10, 3)).toEqual([[0, 3], [3, 6], [6, 10]]);
    expect(shardRanges(128, 2)).toEqual([[0, 64], [64, 128]]);
    expect(shardRanges(2, 5)).toEqual([[0, 1], [1, 2]]);
  });

  it('one shard is the whole batch: combineShards gives what layerReading gives', async () => {
    const rows = 4, units = 3;
    const f = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * s) * (i % 5 === 0 ? 0 : 1));
    const arrays: LayerArrays = {
      weight: f(6, 1.1), grad: f(6, 2.3), biasGrad: f(3, 0.7), delta: f(12, 1.9), pre: f(12, 0.4), post: f(12, 0.8), out: f(12, 0.8),
      derivative: f(12, 3.1), units, saturationLimit: Math.fround(0.05),
    };
    const partial: ShardPartial = { batch: rows, loss: 0.5, layers: [layerPartial(arrays)], auxGrads: [], perExample: [] };
    expect(combineShards([partial]).readings[0]).toEqual(layerReading(arrays));
  });

  it('dead units combine as dead in every shard, saturation as counts', async () => {
    const units = 3;
    // Shard A: unit 0 dead, unit 1 dead, unit 2 alive. Shard B: unit 0 dead, unit 1 alive (NaN), unit 2 alive.
    const a = derivativeCountsJs(Float32Array.from([0, 0, 1, 0, 0, 0.001]), units, Math.fround(0.01));
    const b = derivativeCountsJs(Float32Array.from([0, NaN, 0.5]), units, Math.fround(0.01));
    expect(Array.from(a.deadUnits)).toEqual([1, 1, 0]);
    expect(Array.from(b.deadUnits)).toEqual([1, 0, 0]);
    const layer = (d: typeof a, count: number) => ({
      weightNorm: 1, grad: new Float32Array(1), biasGrad: null, deltaSumSq: 0, count, preSumSq: 0, postSum: 0, postM2: 0, outSumSq: 0, derivative: d,
    });
    const m = combineShards([
      { batch: 2, loss: 1, layers: [layer(a, 6)], auxGrads: [], perExample: [] },
      { batch: 1, loss: 4, layers: [layer(b, 3)], auxGrads: [], perExample: [] },
    ]);
    expect(m.readings[0]!.dead).toBe(1 / 3);
    // |d| < 0.01: four zeros and 0.001 in A, one zero in B: 6 of 9.
    expect(m.readings[0]!.saturated).toBe(6 / 9);
    expect(m.loss).toBe((2 * 1 + 1 * 4) / 3);
    expect(derivativeCounts(Float32Array.from([0, NaN, 0.5]), units, null).saturated).toBeNull();
  });

  it('variance by the parallel formula equals the two-pass variance of the joined rows', async () => {
    const x = Float32Array.from({ length: 60 }, (_, i) => 1000 + Math.cos(i) * 1e-3);
    const part = (v: Float32Array): ShardPartial => ({
      batch: v.length, loss: 0, auxGrads: [], perExample: [],
      layers: [layerPartial({ weight: v, grad: v, biasGrad: null, delta: v, pre: v, post: v, out: v, derivative: null, units: 1, saturationLimit: null })],
    });
    const whole = combineShards([part(x)]).readings[0]!;
    const split = combineShards([part(x.subarray(0, 17)), part(x.subarray(17, 40)), part(x.subarray(40))]).readings[0]!;
    expect(split.actMean).toBeCloseTo(whole.actMean, 12);
    expect(Math.abs(split.actVar - whole.actVar)).toBeLessThan(1e-12 * whole.actVar + 1e-18);
  });
});

describe('a sharded analysis equals the unsharded one', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  for (const [name, input] of Object.entries(SPECS)) {
    it(`${name}: split in 2 and 3 in-process, and from shards measured apart`, async () => {
      const { spec, dataset } = normalizeSpec(input);
      const params = initParameters(spec.network, spec.seed);
      const whole = (await runAnalysis(spec, dataset, {}, params)).result;
      for (const split of [2, 3]) expectSame((await runAnalysis(spec, dataset, { split }, params)).result, whole, `${name}, split ${split}`);
      // What the worker pool does: each worker measures one shard of every batch; one combines them.
      const count = 2;
      const shards: ShardPartial[][] = [];
      for (let k = 0; k < count; k++) shards.push(await measureAnalysisShard(spec, dataset, params, k, count));
      const partials = Array.from({ length: spec.data.batches }, (_, b) => shards.map((s) => s[b]!));
      const combined = (await runAnalysis(spec, dataset, { partials }, params));
      expectSame(combined.result, whole, `${name}, from partials`);
      expect(tf.memory().numTensors).toBe(0);
    });
  }

  it('refuses to split a batch-normalised network', async () => {
    const { spec, dataset } = normalizeSpec({ seed: 1, network: { depth: 4, width: 8, normalization: 'batch' }, data: { source: 'moons', batchSize: 16 } });
    await expect(measureAnalysisShard(spec, dataset, initParameters(spec.network, spec.seed), 0, 2)).rejects.toThrow(/batch-normalised/);
  });
});
