// Sweeps of uploaded models (`base: {"model": {"id"}, …}` on POST /v1/sweeps): a grid over the data, the loss,
// the mode, the seed and the thresholds of a model analysis, every cell checked and costed on the HTTP thread
// as a model analysis (model-analysis.ts) before anything is queued, run on the workers with the file read
// from the store, and tabulated as the cells of network sweeps are. An init grid is refused: the model's
// parameters are its own, and gradlens does not re-initialise imported graphs.
import { FLOP_BUDGETS, LimitError, SpecError, analysisFacts, expandGrid, type AdmittedCell, type SpecLimits, type SweepRow } from '../engine/index.js';
import type { SweepSpecInput } from '../schemas/sweep.js';
import type { ModelStore, StoredModelSummary } from './model-store.js';
import { checkModelAnalysis, storedModelOf, type ModelAnalysisWork } from './model-analysis.js';
import type { JobContext } from './manager.js';
import { runSweepCells, type ExpandedCells } from './sweep-runner.js';

/** What a grid path of a model sweep may start with. */
const MODEL_ROOTS: ReadonlySet<string> = new Set(['seed', 'data', 'loss', 'mode', 'thresholds']);

/** Whether a sweep's base names an uploaded model. */
export const isModelSweep = (spec: unknown): boolean => {
  const base = (spec as { base?: unknown } | null)?.base;
  return typeof base === 'object' && base !== null && 'model' in base;
};

/** Paths that belong to built networks: refused with a reason rather than as unknown roots. */
function refuseNetworkPaths(grid: Record<string, unknown>): void {
  for (const path of Object.keys(grid)) {
    const root = path.split('.')[0];
    if (root === 'init' || root === 'network') {
      throw new SpecError(`grid[${JSON.stringify(path)}]`, `grid[${JSON.stringify(path)}]: ${root} paths do not apply with base.model: an uploaded model runs with its own parameters (gradlens does not re-initialise imported graphs); vary seed, data, loss, mode or thresholds`);
    }
  }
}

/** One cell as a model analysis, costed as 6 × parameters × examples (a forward and backward pass). */
function admitCell(spec: Record<string, unknown>, stored: StoredModelSummary, limits: SpecLimits): AdmittedCell<ModelAnalysisWork> {
  const work = checkModelAnalysis(spec, stored, limits);
  const { flops, parameters } = work.cost;
  return { spec: work, flops, flopsPerStep: flops, parameters };
}

/** Expands and costs a model sweep: SpecError (400, naming the grid path and value) or LimitError (422). */
export async function expandModelSweep(input: SweepSpecInput, models: ModelStore | undefined, limits: SpecLimits, maxCells: number): Promise<ExpandedCells<ModelAnalysisWork>> {
  refuseNetworkPaths(input.grid);
  // The grid cannot vary the model (MODEL_ROOTS): one lookup serves every cell.
  const stored = await storedModelOf(input.base, models).catch((err: unknown) => {
    // Blamed on the base, as a cell's own errors are (engine expandGrid).
    throw err instanceof SpecError ? new SpecError(`base.${err.field}`, err.message) : err;
  });
  const expanded = expandGrid(input, { maxCells, roots: MODEL_ROOTS, admit: (spec) => admitCell(spec, stored, limits) });
  const { limit, variable } = FLOP_BUDGETS.sweep;
  if (expanded.cost.flops > limits[limit]) {
    throw new LimitError(limit, expanded.cost.flops, limits[limit],
      `this sweep of ${expanded.cost.cells} cells needs at least ${expanded.cost.flops.toExponential(2)} floating-point operations (6 × parameters × examples per cell) but the limit (${variable}) is ${limits[limit].toExponential(2)}`, variable);
  }
  return expanded;
}

/** Runs a model sweep: each cell a model analysis on the runner, its summary a row of the table. */
export async function runModelSweep(ctx: JobContext, input: SweepSpecInput, models: ModelStore | undefined, limits: SpecLimits, maxCells: number) {
  const t0 = performance.now();
  const expanded = await expandModelSweep(input, models, limits, maxCells);
  return runSweepCells(ctx, expanded, input.expect, t0, async (cell, signal): Promise<SweepRow> => {
    const { spec, input: work } = cell.spec;
    const file = await models?.file(spec.model.id);
    if (!file) throw new SpecError('base.model.id', `model ${spec.model.id} was deleted before the sweep ran`);
    const output = await ctx.runner.analyzeModel({ kind: 'model-analysis', file, input: work, spec }, { signal });
    const { result } = JSON.parse(output.json) as { result: Parameters<typeof analysisFacts>[0] };
    return { index: cell.index, values: { ...cell.values }, ...analysisFacts(result) };
  });
}
