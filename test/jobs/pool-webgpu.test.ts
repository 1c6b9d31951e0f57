// The pool on webgpu: a busy GPU worker is never terminated (worker.terminate() during GPU work aborts the
// whole process, exit 134), so cancelling, timing out and closing are cooperative there. If the pool
// terminated the worker, this test process would die and every test here would fail with it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { WorkerPool } from '../../src/jobs/pool.js';
import { JobCanceledError, JobTimeoutError, ShuttingDownError } from '../../src/jobs/errors.js';
import { ENDLESS_TRAINING, SMALL_ANALYSIS, TEST_LIMITS } from '../support/jobs.js';
import { until } from '../support/until.js';
import { describeWebGpuAbsent } from '../support/webgpu-absent.js';
import { LOADED_BACKENDS } from '../backends.js';

/** An analysis of a few seconds on lavapipe (software Vulkan): long enough to be cancelled while it runs. */
const SECONDS_ANALYSIS = { network: { depth: 12, width: 128 }, data: { source: 'moons', batchSize: 512, batches: 6 } } as const;

const started = (pool: WorkerPool): Promise<number> => until(async () => pool.busy, (n) => n === 1, 30_000, 5);

if (!LOADED_BACKENDS.includes('webgpu')) describeWebGpuAbsent();

describe.each(LOADED_BACKENDS.filter((b) => b === 'webgpu').map((b) => [b] as const))('WorkerPool on %s: cooperative cancellation', (backend) => {
  let pool: WorkerPool;
  let exits = 0;
  beforeAll(async () => {
    pool = new WorkerPool({ size: 1, backend, limits: TEST_LIMITS });
    expect((await pool.ready()).name).toBe('webgpu');
    await pool.analyze(SECONDS_ANALYSIS); // compiles the shaders (seconds on lavapipe)
    // Every worker the pool ever had: a terminated one would show up here (if the process survived).
    const slots = (pool as unknown as { slots: Set<{ worker: { on(e: string, f: () => void): void } }> }).slots;
    for (const s of slots) s.worker.on('exit', () => { exits++; });
  });
  afterAll(async () => {
    await pool.close();
  });

  for (const [what, reason] of [['cancel', new JobCanceledError()], ['timeout', new JobTimeoutError(50)]] as const) {
    it(`${what} of a running analysis: the caller hears at once, the worker finishes it and computes again`, async () => {
      const controller = new AbortController();
      const running = pool.analyze(SECONDS_ANALYSIS, { signal: controller.signal });
      running.catch(() => undefined);
      await started(pool);
      const t0 = performance.now();
      controller.abort(reason);
      await expect(running).rejects.toBe(reason);
      expect(performance.now() - t0).toBeLessThan(1000);
      // Still busy with the cancelled analysis: not terminated, not replaced.
      expect(pool.busy).toBe(1);
      expect(pool.workers).toBe(1);
      const after = await pool.analyze(SMALL_ANALYSIS);
      expect(after.result.layers).toHaveLength(3);
      expect(pool.workers).toBe(1);
      expect(exits).toBe(0);
    });
  }

  it('a cancelled training stops at its next step and its worker is reused', async () => {
    const controller = new AbortController();
    const running = pool.train(ENDLESS_TRAINING, { signal: controller.signal });
    running.catch(() => undefined);
    await started(pool);
    await new Promise((r) => setTimeout(r, 500));
    controller.abort(new JobCanceledError());
    await expect(running).rejects.toBeInstanceOf(JobCanceledError);
    await until(async () => pool.busy, (n) => n === 0, 30_000);
    expect(pool.workers).toBe(1);
    expect(exits).toBe(0);
  });

  it('close() while an analysis runs: the caller gets SHUTTING_DOWN, the worker exits only once idle', async () => {
    const other = new WorkerPool({ size: 1, backend, limits: TEST_LIMITS });
    await other.ready();
    const running = other.analyze(SECONDS_ANALYSIS);
    running.catch(() => undefined);
    await started(other);
    const closed = other.close();
    await expect(running).rejects.toBeInstanceOf(ShuttingDownError);
    expect(other.workers).toBe(1); // not terminated while busy
    await closed;
    expect(other.workers).toBe(0);
  });
});
