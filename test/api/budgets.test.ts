// FLOP budgets per kind of work: a default server admits ordinary trainings and sweeps, and every refusal names its variable.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { Runner } from '../../src/jobs/runner.js';
import { prepareTraining } from '../../src/engine/runs/training-run.js';
import { expandSweep } from '../../src/engine/runs/sweep-run.js';
import { DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { DEEP_MNIST_SWEEP, DEEP_MNIST_TRAINING, README_BENCHMARK_TRAINING } from '../../scripts/budget-examples.js';

/**
 * Admission is what is under test, not compute: a runner that never finishes what it is given (until it is
 * cancelled) keeps minutes of accepted work from running in the test process.
 */
function idleRunner(): Runner {
  const never = (options?: { signal?: AbortSignal }) => new Promise<never>((_resolve, reject) => {
    options?.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
  });
  return {
    ready: async () => ({ name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: 'test', requested: 'cpu', skipped: [] }),
    concurrency: 1,
    analyze: (_input, options) => never(options),
    analyzeEncoded: (_input, options) => never(options),
    train: (_input, options) => never(options),
    analyzeModel: (_task, options) => never(options),
    theory: () => never(),
    close: async () => undefined,
  };
}

async function app(env: Record<string, string> = {}): Promise<FastifyInstance> {
  // No rate limits: this file submits more than 60 computations a minute on purpose.
  const config = loadConfig({ GRADLENS_RATE_LIMIT_MAX: '0', ...env }, { jobs: { workers: 0, db: ':memory:' } });
  const built = await buildApp(config, { logger: false, runner: idleRunner() });
  await built.ready();
  return built;
}

const post = async (target: FastifyInstance, url: string, payload: unknown, headers: Record<string, string> = {}) => {
  const res = await target.inject({ method: 'POST', url, payload: payload as object, headers });
  return { status: res.statusCode, body: res.json() };
};

/** A 10 × 1024 MNIST analysis of 64 batches of 4096: about 1.6e13 FLOPs, within every other limit. */
const HUGE_ANALYSIS = { network: { depth: 10, width: 1024 }, data: { source: 'mnist', batchSize: 4096, batches: 64 } };
/** 30 × 256 on 32 batches of 256: about 1e11 FLOPs, an ordinary async analysis. */
const BIG_ANALYSIS = { network: { depth: 30, width: 256 }, data: { source: 'mnist', batchSize: 256, batches: 32 } };

describe('default FLOP budgets', () => {
  let server: FastifyInstance;
  beforeAll(async () => {
    server = await app();
  });
  afterAll(async () => {
    await server.close();
  });

  it('are separate per kind, tight only for a synchronous analysis', () => {
    const limits = loadConfig({}).limits;
    expect(limits.maxAnalysisFlops).toBe(2e10);
    for (const budget of [limits.maxAsyncAnalysisFlops, limits.maxTrainingFlops, limits.maxSweepFlops]) expect(budget).toBeGreaterThanOrEqual(100 * limits.maxAnalysisFlops);
  });

  it('cost the three examples as the issue measured them (independent arithmetic: 6 FLOPs per weight per example)', () => {
    const limits = { ...DEFAULT_LIMITS, maxTrainingFlops: 1e15, maxSweepFlops: 1e15 };
    expect(prepareTraining(README_BENCHMARK_TRAINING, limits).cost.flops).toBeCloseTo(2.47e10, -8);
    // 30 × 256 MLP on MNIST: 784·256 + 28·256² + 256·10 weights, 256 examples, 400 steps (+ records, evaluations).
    const weights = 784 * 256 + 28 * 256 * 256 + 256 * 10;
    const training = prepareTraining(DEEP_MNIST_TRAINING, limits).cost.flops;
    expect(training).toBeGreaterThan(6 * weights * 256 * 400);
    expect(training).toBeCloseTo(1.45e12, -10);
    expect(expandSweep(DEEP_MNIST_SWEEP, limits, 64).cost.flops).toBeCloseTo(2.5e10, -9);
  });

  it('accept the README benchmark training, the 400-step 30 × 256 training and its 8-cell sweep', async () => {
    for (const [url, spec] of [['/v1/trainings', README_BENCHMARK_TRAINING], ['/v1/trainings', DEEP_MNIST_TRAINING], ['/v1/sweeps', DEEP_MNIST_SWEEP]] as const) {
      const { status, body } = await post(server, url, spec);
      expect(status, `${url}: ${JSON.stringify(body).slice(0, 300)}`).toBe(202);
      expect(body.status).toBe('queued');
    }
  });

  it('refuse a synchronous analysis over GRADLENS_MAX_ANALYSIS_FLOPS, but queue it with Prefer: respond-async', async () => {
    const sync = await post(server, '/v1/analyses', BIG_ANALYSIS);
    expect(sync.status).toBe(422);
    expect(sync.body).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxAnalysisFlops', variable: 'GRADLENS_MAX_ANALYSIS_FLOPS', max: 2e10 });
    expect(sync.body.message).toMatch(/\(GRADLENS_MAX_ANALYSIS_FLOPS\)/);
    const queued = await post(server, '/v1/analyses', BIG_ANALYSIS, { prefer: 'respond-async' });
    expect(queued.status).toBe(202);
  });

  it('refuse work over each job budget with a 422 naming its variable', async () => {
    const asyncAnalysis = await post(server, '/v1/analyses', HUGE_ANALYSIS, { prefer: 'respond-async' });
    expect(asyncAnalysis.status).toBe(422);
    expect(asyncAnalysis.body).toMatchObject({ limit: 'maxAsyncAnalysisFlops', variable: 'GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS' });
    expect(asyncAnalysis.body.message).toMatch(/\(GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS\)/);

    const training = await post(server, '/v1/trainings', { ...DEEP_MNIST_TRAINING, steps: 4000 });
    expect(training.status).toBe(422);
    expect(training.body).toMatchObject({ limit: 'maxTrainingFlops', variable: 'GRADLENS_MAX_TRAINING_FLOPS' });
    expect(training.body.message).toMatch(/this training needs about .*\(GRADLENS_MAX_TRAINING_FLOPS\)/);

    // 64 cells of about 1e11 each: every cell fits the async analysis budget, all of them not the sweep's.
    const sweep = await post(server, '/v1/sweeps', { base: BIG_ANALYSIS, grid: { seed: Array.from({ length: 64 }, (_, i) => i) } });
    expect(sweep.status).toBe(422);
    expect(sweep.body).toMatchObject({ limit: 'maxSweepFlops', variable: 'GRADLENS_MAX_SWEEP_FLOPS' });
    // One cell too big for any analysis job is named as the cell.
    const cell = await post(server, '/v1/sweeps', { base: HUGE_ANALYSIS, grid: { seed: [1, 2] } });
    expect(cell.status).toBe(422);
    expect(cell.body.variable).toBe('GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS');
    expect(cell.body.message).toMatch(/^cell 0 /);
  });
});

describe('FLOP budgets from the environment', () => {
  it('each variable sets its own budget and only its own', async () => {
    const tight = await app({ GRADLENS_MAX_TRAINING_FLOPS: '1e10', GRADLENS_MAX_SWEEP_FLOPS: '1e10', GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS: '3e10', GRADLENS_MAX_ANALYSIS_FLOPS: '1e12' });
    try {
      expect(tight.config.limits).toMatchObject({ maxTrainingFlops: 1e10, maxSweepFlops: 1e10, maxAsyncAnalysisFlops: 3e10, maxAnalysisFlops: 1e12 });
      const training = await post(tight, '/v1/trainings', README_BENCHMARK_TRAINING);
      expect(training.status).toBe(422);
      expect(training.body.variable).toBe('GRADLENS_MAX_TRAINING_FLOPS');
      expect(training.body.max).toBe(1e10);
      const sweep = await post(tight, '/v1/sweeps', DEEP_MNIST_SWEEP);
      expect(sweep.status).toBe(422);
      expect(sweep.body.variable).toBe('GRADLENS_MAX_SWEEP_FLOPS');
      // 1e11 > 3e10: the async budget caps every analysis, also one that waits (the one the worker checks).
      const analysis = await post(tight, '/v1/analyses', BIG_ANALYSIS);
      expect(analysis.status).toBe(422);
      expect(analysis.body.variable).toBe('GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS');
    } finally {
      await tight.close();
    }
  });

  it('an invalid value stops the start, naming the variable', () => {
    expect(() => loadConfig({ GRADLENS_MAX_TRAINING_FLOPS: 'lots' })).toThrow(/GRADLENS_MAX_TRAINING_FLOPS must be an integer/);
    expect(() => loadConfig({ GRADLENS_MAX_SWEEP_FLOPS: '0' })).toThrow(/GRADLENS_MAX_SWEEP_FLOPS/);
  });
});
