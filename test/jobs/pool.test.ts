// The worker pool: engine calls on worker threads, backend reported by the workers, prompt cancellation.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { WorkerPool } from '../../src/jobs/pool.js';
import { JobCanceledError, WorkerCrashedError } from '../../src/jobs/errors.js';
import { backendInfo } from '../../src/engine/backends/select.js';
import { DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { SpecError } from '../../src/engine/common/errors.js';
import { ENDLESS_ANALYSIS, ENDLESS_TRAINING, SMALL_ANALYSIS, TEST_LIMITS } from '../support/jobs.js';
import { until } from '../support/until.js';
import { LOADED_BACKENDS } from '../backends.js';
import type { ActivationName } from '../../src/schemas/vocabulary.js';

/** A name the engine refuses; typed as a name, since a client without the types could send it. */
const UNKNOWN_ACTIVATION = 'nope' as string as ActivationName;

const CRASHING_WORKER = new URL('./fixtures/crashing-worker.mjs', import.meta.url);
/** The real worker on its real backend, dying on a task with seed CRASH_SEED (the same constant is in the fixture). */
const CRASH_ON_MARKER_WORKER = new URL('./fixtures/crash-on-marker-worker.mjs', import.meta.url);
const CRASH_SEED = 9_090_909;

describe('WorkerPool (wasm, 2 workers)', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = new WorkerPool({ size: 2, backend: 'wasm', limits: TEST_LIMITS });
    await pool.ready();
  });
  afterAll(async () => {
    await pool.close();
  });

  it('reports the backend a worker loaded, while this thread has loaded none', async () => {
    const info = await pool.ready();
    expect(info.name).toBe('wasm');
    expect(pool.concurrency).toBe(2);
    await expect(backendInfo()).rejects.toThrow(/initBackend\(\) has not been called/);
  });

  it('runs analyses on the workers with the same numbers as each other', async () => {
    const [a, b] = await Promise.all([pool.analyze(SMALL_ANALYSIS), pool.analyze(SMALL_ANALYSIS)]);
    expect(a.result.layers).toHaveLength(3);
    expect(b.result.layers).toEqual(a.result.layers);
  });

  it('brings engine errors back as their classes (SpecError → 400 in the HTTP layer)', async () => {
    const err = await pool.analyze({ network: { depth: 2, activation: UNKNOWN_ACTIVATION }, data: { source: 'moons' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).field).toMatch(/activation/);
  });

  it('stops a running training at its next step, keeps the worker, and streams records before that', async () => {
    const controller = new AbortController();
    const records: unknown[] = [];
    let firstRecord!: () => void;
    const gotRecord = new Promise<void>((resolve) => { firstRecord = resolve; });
    const training = pool.train(ENDLESS_TRAINING, {
      signal: controller.signal,
      onRecord: (record) => { records.push(record); firstRecord(); },
    });
    await gotRecord;
    const t0 = performance.now();
    controller.abort(new JobCanceledError());
    await expect(training).rejects.toBeInstanceOf(JobCanceledError);
    expect(records.length).toBeGreaterThanOrEqual(1);
    // The worker became free again (it was not replaced): both workers answer at once.
    await Promise.all([pool.analyze(SMALL_ANALYSIS), pool.analyze(SMALL_ANALYSIS)]);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(pool.workers).toBe(2);
  });

  it('cancels a running analysis by replacing its worker', async () => {
    const controller = new AbortController();
    const running = pool.analyze(ENDLESS_ANALYSIS, { signal: controller.signal });
    running.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort(new JobCanceledError());
    await expect(running).rejects.toBeInstanceOf(JobCanceledError);
    // ENDLESS_ANALYSIS runs for minutes: answering well within one means its worker was replaced, not
    // waited for (a replacement starts in a few seconds, more from the sources on a loaded machine).
    const t0 = performance.now();
    await Promise.all([pool.analyze(SMALL_ANALYSIS), pool.analyze(SMALL_ANALYSIS)]);
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(pool.workers).toBe(2);
  });

  it('drops a task that was cancelled while it waited for a worker', async () => {
    const controller = new AbortController();
    const busy = [new AbortController(), new AbortController()];
    const blockers = busy.map((c) => pool.train(ENDLESS_TRAINING, { signal: c.signal }).catch(() => undefined));
    const waiting = pool.analyze(SMALL_ANALYSIS, { signal: controller.signal });
    controller.abort(new JobCanceledError('gone'));
    await expect(waiting).rejects.toThrow('gone');
    for (const c of busy) c.abort(new JobCanceledError());
    await Promise.all(blockers);
  });
});

describe.each(LOADED_BACKENDS.map((b) => [b] as const))('WorkerPool on %s: a crashed worker is replaced by one on the same backend', (backend) => {
  it('fails the task with WORKER_CRASHED, then both workers (one new) compute the numbers of before the crash', async () => {
    const pool = new WorkerPool({ size: 2, backend, limits: DEFAULT_LIMITS, workerUrl: CRASH_ON_MARKER_WORKER });
    try {
      expect((await pool.ready()).name).toBe(backend);
      const before = await pool.analyze(SMALL_ANALYSIS);
      const err = await pool.analyze({ ...SMALL_ANALYSIS, seed: CRASH_SEED }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkerCrashedError);
      expect((err as WorkerCrashedError).code).toBe('WORKER_CRASHED');
      await until(async () => pool.workers, (n) => n === 2);
      // Two at once, so the replacement answers one of them. Host statistics differ between backends in
      // their last bits, so equal numbers also say the new worker loaded the same backend.
      const after = await Promise.all([pool.analyze(SMALL_ANALYSIS), pool.analyze(SMALL_ANALYSIS)]);
      for (const a of after) expect(a.result.layers).toEqual(before.result.layers);
    } finally {
      await pool.close();
    }
  });
});

describe('WorkerPool with a stand-in worker (fixtures/crashing-worker.mjs)', () => {
  it('with tfjs-node: runs one worker whatever size is asked, never replaces it, and then refuses work (tfjs #8388)', async () => {
    expect(new WorkerPool({ size: 8, backend: 'tensorflow-gpu', limits: DEFAULT_LIMITS }).concurrency).toBe(1);
    const pool = new WorkerPool({ size: 8, backend: 'tensorflow', limits: DEFAULT_LIMITS, workerUrl: CRASHING_WORKER });
    try {
      expect(pool.concurrency).toBe(1);
      expect((await pool.ready()).name).toBe('tensorflow');
      expect(pool.workers).toBe(1);
      await expect(pool.analyze(SMALL_ANALYSIS)).rejects.toBeInstanceOf(WorkerCrashedError);
      await new Promise((r) => setTimeout(r, 200));
      expect(pool.workers).toBe(0);
      await expect(pool.analyze(SMALL_ANALYSIS)).rejects.toThrow(/restart the process/);
    } finally {
      await pool.close();
    }
  });

  it.each([['cpu', 4], ['tensorflow', 1]] as const)('lets the first worker decide under auto: %s → %i workers', async (resolved, workers) => {
    process.env.FIXTURE_AUTO_BACKEND = resolved;
    const pool = new WorkerPool({ size: 4, backend: 'auto', limits: DEFAULT_LIMITS, workerUrl: CRASHING_WORKER });
    try {
      expect((await pool.ready()).name).toBe(resolved);
      expect(pool.concurrency).toBe(workers);
      await new Promise((r) => setTimeout(r, 300));
      await until(async () => pool.workers, (n) => n === workers);
    } finally {
      delete process.env.FIXTURE_AUTO_BACKEND;
      await pool.close();
    }
  });
});
