// Runs a sweep job: its cells are analyses dispatched across the pool, collected into one table. A sweep of a
// network spec and one of an uploaded model (model-sweep.ts) share the lanes; only how a cell runs differs.
import { type SpecLimits, expandSweep, sweepResult, sweepRow, type SweepRow, type SweepCell } from '../engine/index.js';
import type { SweepSpecInput } from '../schemas/sweep.js';
import type { JobContext, JobOutput } from './manager.js';

/** A grid expanded into admitted cells, with their cost (engine expandGrid). */
export interface ExpandedCells<S> {
  paths: string[];
  cells: (Omit<SweepCell, 'spec'> & { spec: S })[];
  cost: unknown;
}

/** Runs a sweep of a network spec: each cell an analysis on the runner. */
export async function runSweep(ctx: JobContext, input: SweepSpecInput, limits: SpecLimits, maxCells: number): Promise<JobOutput> {
  const t0 = performance.now();
  const expanded = expandSweep(input, limits, maxCells);
  return runSweepCells(ctx, expanded, input.expect, t0, async (cell, signal) => sweepRow(cell, await ctx.runner.analyze(cell.spec, { signal })));
}

/**
 * Keeps as many cells in flight as the runner has workers, so every core works on the sweep. The first
 * failing cell stops the others and fails the sweep. progress = cells done / cells.
 */
export async function runSweepCells<S>(
  ctx: JobContext, expanded: ExpandedCells<S>, expect: SweepSpecInput['expect'], t0: number,
  runCell: (cell: ExpandedCells<S>['cells'][number], signal: AbortSignal) => Promise<SweepRow>,
): Promise<JobOutput> {
  const { paths, cells, cost } = expanded;
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
      try {
        rows[position] = await runCell(cells[position]!, stop.signal);
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
  const result = sweepResult(paths, rows, expect);
  return { spec: ctx.job.spec, result, cost, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: performance.now() - t0 } } as JobOutput;
}
