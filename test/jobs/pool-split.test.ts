// Both cores: concurrent analyses spread over the workers, and a lone large analysis split across them equals the unsplit one.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { WorkerPool } from '../../src/jobs/pool.js';
import { JobCanceledError } from '../../src/jobs/errors.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import { TEST_LIMITS } from '../support/jobs.js';
import { until } from '../support/until.js';

const SPEC: AnalysisSpecInput = {
  seed: 5,
  network: { depth: 6, width: 40, activation: 'tanh', residual: { every: 2 } },
  data: { source: 'mnist', batchSize: 64, batches: 2 },
};

function expectClose(a: unknown, b: unknown, path = ''): void {
  if (typeof a === 'number' && typeof b === 'number') {
    const key = path.split('.').pop()!;
    const tol = key === 'activationMean' ? 1e-5 : /Fraction$/.test(key) ? 0.01 : 2e-4 * Math.max(Math.abs(a), Math.abs(b));
    if (!(a === b || Math.abs(a - b) <= tol)) throw new Error(`${path}: ${a} vs ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    expect(a.length, path).toBe(b.length);
    a.forEach((v, i) => expectClose(v, b[i], `${path}[${i}]`));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) expectClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    return;
  }
  expect(a, path).toEqual(b);
}

describe('WorkerPool with 2 workers: both cores', () => {
  let splitting: WorkerPool;
  let plain: WorkerPool;
  beforeAll(async () => {
    // shardMinFlops 1: split whenever both workers are idle.
    splitting = new WorkerPool({ size: 2, backend: 'cpu', limits: TEST_LIMITS, shardMinFlops: 1 });
    plain = new WorkerPool({ size: 2, backend: 'cpu', limits: TEST_LIMITS });
    await Promise.all([splitting.ready(), plain.ready()]);
    // ready() answers with the first worker; the second starts after it.
    await until(async () => [splitting.idle, plain.idle], ([a, b]) => a === 2 && b === 2);
  });
  afterAll(async () => {
    await Promise.all([splitting.close(), plain.close()]);
  });

  it('splits a lone analysis over both workers and gives the unsplit numbers', async () => {
    const whole = await plain.analyze(SPEC);
    expect(plain.splitAnalyses).toBe(0);
    const before = splitting.splitAnalyses;
    const split = await splitting.analyze(SPEC);
    expect(splitting.splitAnalyses).toBe(before + 1);
    expectClose(split.result, whole.result, 'result');
    expect(split.spec).toEqual(whole.spec);
  });

  it('runs concurrent analyses side by side, one per worker', async () => {
    // Two long analyses at once on the pool that never splits: both workers are busy at the same time.
    const long = { ...SPEC, data: { source: 'mnist' as const, batchSize: 256, batches: 6 } };
    let peak = 0;
    const watch = setInterval(() => { peak = Math.max(peak, plain.busy); }, 2);
    const results = await Promise.all([1, 2].map((seed) => plain.analyze({ ...long, seed })));
    clearInterval(watch);
    expect(results.map((r) => r.spec.seed)).toEqual([1, 2]);
    expect(peak).toBe(2);
    // With splitting on, queued analyses are not split: only one that finds both workers idle is.
    const before = splitting.splitAnalyses;
    const many = await Promise.all([3, 4, 5, 6].map((seed) => splitting.analyze({ ...SPEC, seed })));
    expect(many.map((m) => m.spec.seed)).toEqual([3, 4, 5, 6]);
    expect(splitting.splitAnalyses - before).toBeLessThanOrEqual(1);
  });

  it('cancels a split analysis and keeps the pool usable', async () => {
    const controller = new AbortController();
    const run = splitting.analyze({ ...SPEC, seed: 9, data: { source: 'mnist', batchSize: 512, batches: 8 } }, { signal: controller.signal });
    setTimeout(() => controller.abort(new JobCanceledError()), 50);
    await expect(run).rejects.toBeInstanceOf(JobCanceledError);
    const after = await splitting.analyze(SPEC);
    expect(after.result.layers).toHaveLength(6);
  });

  it('never splits a batch-normalised network (its statistics couple the batch)', async () => {
    const before = splitting.splitAnalyses;
    await splitting.analyze({ ...SPEC, network: { depth: 4, width: 16, normalization: 'batch' } });
    expect(splitting.splitAnalyses).toBe(before);
  });
});
