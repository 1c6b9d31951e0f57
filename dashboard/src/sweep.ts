// Reads a sweep job into matrix axes and cells: the grid from its spec, one row of the result table per cell.
import type { MatrixAxis, MatrixCell } from './matrix-view.js';
import { fmt, fmtPct } from './format.js';
import { setPath, valueLabel } from './presets.js';
import { isObject, type Job } from './shapes.js';

export interface SweepCell extends MatrixCell {
  index: number;
  label: string;
  /** The grid value of each path in this cell. */
  values: Record<string, unknown>;
}

/** The grid in key order: { "network.activation": [...], ... } → axes (the first varies slowest). */
export function sweepAxes(job: Job): MatrixAxis[] {
  const spec = isObject(job.spec) ? job.spec : {};
  const grid = isObject(spec.grid) ? spec.grid : {};
  return Object.entries(grid).map(([path, values]) => ({ path, values: Array.isArray(values) ? values : [values] }));
}

/** Row-major coordinates of cell `index`, as the server expands the grid. */
function coordsOf(index: number, axes: MatrixAxis[]): number[] {
  const coords: number[] = new Array<number>(axes.length).fill(0);
  let rest = index;
  for (let i = axes.length - 1; i >= 0; i--) {
    const n = Math.max(1, axes[i]!.values.length);
    coords[i] = rest % n;
    rest = Math.floor(rest / n);
  }
  return coords;
}

/** Every cell of the grid: finished ones from result.rows, the others pending (or running, by progress). */
export function sweepCells(job: Job, open: (index: number) => void): SweepCell[] {
  const axes = sweepAxes(job);
  const total = axes.reduce((n, a) => n * Math.max(1, a.values.length), 1);
  const result = isObject(job.result) ? job.result : {};
  const rows = new Map<number, Record<string, unknown>>();
  if (Array.isArray(result.rows)) for (const r of result.rows) if (isObject(r) && typeof r.index === 'number') rows.set(r.index, r);
  const done = Math.round((job.progress ?? 0) * total);
  const cells: SweepCell[] = [];
  for (let i = 0; i < total; i++) {
    const coords = coordsOf(i, axes);
    const values = Object.fromEntries(axes.map((a, ai) => [a.path, a.values[coords[ai]!]]));
    const row = rows.get(i);
    const finished = job.status === 'succeeded' && row;
    const status = finished ? 'succeeded'
      : job.status === 'failed' || job.status === 'canceled' ? job.status
      : i < done ? 'computed' : i === done && job.status === 'running' ? 'running' : 'queued';
    cells.push({
      index: i,
      coords,
      values,
      label: axes.map((a, ai) => `${a.path.split('.').pop() ?? a.path}=${valueLabel(a.values[coords[ai]!])}`).join(', '),
      status,
      verdict: row && typeof row.verdict === 'string' ? row.verdict : null,
      ratio: row?.backpropFirstToLastRatio,
      ...(row ? { detail: `weight-grad first/last ${fmt(row.firstToLastRatio, 3)} · backprop first/last ${fmt(row.backpropFirstToLastRatio, 3)} · max dead ${fmtPct(row.maxDeadFraction)} · max saturated ${fmtPct(row.maxSaturatedFraction)}` } : {}),
      ...(finished ? { open: () => open(i) } : {}),
    });
  }
  return cells;
}

/** The analysis spec of one cell: the sweep's base with the cell's values set, as the server built it. */
export function cellSpec(job: Job, cell: SweepCell): Record<string, unknown> {
  const spec = isObject(job.spec) ? job.spec : {};
  let body = isObject(spec.base) ? structuredClone(spec.base) : {};
  for (const [path, value] of Object.entries(cell.values)) body = setPath(body, path, value);
  return body;
}
