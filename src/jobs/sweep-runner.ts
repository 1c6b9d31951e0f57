// Runs a sweep job: its cells are analyses dispatched across the pool, collected into one table.
import { type SpecLimits, expandSweep, sweepResult, sweepRow, type SweepRow } from '../engine/index.js';
import type { SweepSpecInput } from '../schemas/sweep.js';
import type { JobContext, JobOutput } from './manager.js';

/**
 * Keeps as many cells in flight as the runner has workers, so every core works on the sweep. The first
 * failing cell stops the others and fails the sweep. progress = cells done / cells.
 */
export async function runSweep(ctx: JobContext, input: SweepSpecInput, limits: SpecLimits, maxCells: number): Promise<JobOutput> {
  const t0 = performance.now();
  const { paths, cells, cost } = expandSweep(input, limits, maxCells);
  const t1 = performance.now();
  const rows: SweepRow[] = new Array(cells.length);
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(ctx.signal.reason);
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    while (next < cells.length && !stop.signal.aborted) {
      const position = next++;
      const cell = cells[position]!;
      try {
        rows[position] = sweepRow(cell, await ctx.runner.analyze(cell.spec, { signal: stop.signal }));
      } catch (err) {
        if (!stop.signal.aborted) stop.abort(err);
        throw err;
      }
      done++;
      ctx.progress(done / cells.length);
    }
  };
  try {
    const lanes = Math.max(1, Math.min(ctx.runner.concurrency, cells.length));
    await Promise.all(Array.from({ length: lanes }, lane));
  } catch (err) {
    throw stop.signal.reason ?? err;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
  const t2 = performance.now();
  const result = sweepResult(paths, rows, input.expect);
  return { spec: ctx.job.spec, result, cost, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: performance.now() - t0 } };
}
