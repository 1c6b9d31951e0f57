// Sweeps: expand a grid over spec paths into validated, costed analysis cells; tabulate their summaries as rows and CSV.
import Value from 'typebox/value';
import { AnalysisSpecSchema, type AnalysisSpecInput } from '../../schemas/spec.js';
import type { SweepSpecInput } from '../../schemas/sweep.js';
import { DEFAULT_LIMITS, type SpecLimits } from '../spec/normalize.js';
import { checkCost, type CostEstimate } from '../spec/cost.js';
import { admitAnalysis, type AnalysisOutput } from './analysis-run.js';
import { LimitError, SpecError, quote } from '../common/errors.js';
import { analysisFacts, evaluateChecks, validateExpect, type AnalysisFacts, type CellChecks, type Check } from '../diagnosis/checks.js';
import { nonFiniteToken } from '../common/json-safe.js';

export interface SweepCell {
  index: number;
  /** The grid value of each path in this cell, in the grid's order. */
  values: Record<string, unknown>;
  /** base with the values set: a complete analysis spec. */
  spec: AnalysisSpecInput;
}

/** Summed over cells, except parameters: the largest cell's. */
export interface SweepCost extends CostEstimate {
  cells: number;
}

export interface ExpandedSweep {
  paths: string[];
  cells: SweepCell[];
  cost: SweepCost;
}

export type SweepRow = { index: number; values: Record<string, unknown> } & AnalysisFacts & { passed?: boolean };

export interface SweepResult {
  paths: string[];
  cellCount: number;
  rows: SweepRow[];
  checks?: Check[];
  passed?: boolean;
  cells?: CellChecks[];
}

const ROOTS = new Set(['seed', 'network', 'data', 'loss', 'thresholds']);
const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Paths come from the request: never let one reach an object's prototype chain.
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

const gridRef = (path: string, k?: number): string => `grid[${quote(path, 100)}]${k === undefined ? '' : `[${k}]`}`;

/** No spec path is longer than a few dozen characters. */
const MAX_PATH_LENGTH = 200;
/**
 * A grid value is set into a copy of the spec (structuredClone, recursive): the deepest value a spec holds
 * (inline rows, an activation object in a list) is three levels deep, and a 100 000-deep array overflowed
 * the stack.
 */
export const MAX_GRID_VALUE_DEPTH = 16;

/** How deeply arrays and objects nest in `value`, counted without recursion; stops once past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** "a, b or c". */
const orList = (names: string[]): string => (names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`);

function checkPaths(paths: string[], roots: ReadonlySet<string>): void {
  if (paths.length === 0) throw new SpecError('grid', 'grid needs at least one path');
  for (const path of paths) {
    if (path.length > MAX_PATH_LENGTH) {
      throw new SpecError('grid', `a grid path has ${path.length} characters but the limit is ${MAX_PATH_LENGTH}: ${quote(path, 60)}`);
    }
    const segments = path.split('.');
    if (!segments.every((s) => SEGMENT.test(s) && !FORBIDDEN.has(s))) {
      throw new SpecError(gridRef(path), `${gridRef(path)}: a path is dot-separated names, e.g. "network.activation"`);
    }
    if (!roots.has(segments[0]!)) {
      throw new SpecError(gridRef(path), `${gridRef(path)}: paths start with ${orList([...roots])}`);
    }
  }
  for (const a of paths) {
    for (const b of paths) {
      if (a !== b && b.startsWith(`${a}.`)) {
        throw new SpecError(gridRef(b), `${gridRef(b)} overlaps ${gridRef(a)}: one cell would set the same value twice`);
      }
    }
  }
}

/** Sets `value` at a dot path, creating objects on the way; a name-only string becomes { name }. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  let cur = target;
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i]!;
    let next = cur[seg];
    if (next === undefined) {
      next = {};
    } else if (typeof next === 'string' && segments[i + 1] === 'name') {
      next = { name: next };
    } else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      throw new SpecError(gridRef(path), `${gridRef(path)}: base has ${quote(next)} at ${segments.slice(0, i + 1).join('.')}, not an object to set ${segments.slice(i + 1).join('.')} in`);
    }
    cur[seg] = next;
    cur = next as Record<string, unknown>;
  }
  cur[segments[segments.length - 1]!] = structuredClone(value);
}

/** 'network.activation[0]' or '/network/activation/0' → the grid path the error lies under, if any. */
function blame(field: string, paths: string[]): string | null {
  const dotted = field.startsWith('/')
    ? field.slice(1).split('/').map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join('').replace(/^\./, '')
    : field;
  let best: string | null = null;
  for (const p of paths) {
    const under = dotted === p || dotted.startsWith(`${p}.`) || dotted.startsWith(`${p}[`) || p.startsWith(`${dotted}.`);
    if (under && (best === null || p.length > best.length)) best = p;
  }
  return best;
}

function describeCell(paths: string[], values: Record<string, unknown>): string {
  return paths.map((p) => `${p}=${quote(values[p])}`).join(', ');
}

/** What admitting one cell gives: its spec as it runs and its cost. */
export interface AdmittedCell<S> {
  spec: S;
  flops: number;
  flopsPerStep: number;
  parameters: number;
}

export interface ExpandGridOptions<S> {
  maxCells: number;
  /** First segments a grid path may have (a model sweep's differ from a network sweep's). */
  roots: ReadonlySet<string>;
  /** Checks, normalises and costs one cell's spec; a SpecError's field is blamed on the grid path under it. */
  admit(spec: Record<string, unknown>): AdmittedCell<S>;
}

/**
 * The grid's cells: the cartesian product in row-major order (the first path varies slowest), every cell
 * admitted before any compute; errors name the grid path and value index. LimitError over maxCells.
 */
export function expandGrid<S>(input: { base: unknown; grid: unknown; expect?: SweepSpecInput['expect'] }, o: ExpandGridOptions<S>): { paths: string[]; cells: (Omit<SweepCell, 'spec'> & { spec: S })[]; cost: SweepCost } {
  const grid = input.grid as Record<string, unknown[]>;
  const paths = Object.keys(grid);
  checkPaths(paths, o.roots);
  const count = cellCount(grid, paths, o.maxCells);
  validateExpect(input.expect, 'sweep');
  const cells: (Omit<SweepCell, 'spec'> & { spec: S })[] = [];
  const cost: SweepCost = { parameters: 0, flopsPerStep: 0, flops: 0, cells: count };
  for (let index = 0; index < count; index++) {
    // Row-major: peel the last path's index off first.
    const ks = new Array<number>(paths.length);
    let rest = index;
    for (let j = paths.length - 1; j >= 0; j--) {
      const n = grid[paths[j]!]!.length;
      ks[j] = rest % n;
      rest = Math.floor(rest / n);
    }
    const values: Record<string, unknown> = {};
    const spec = structuredClone(input.base) as Record<string, unknown>;
    paths.forEach((p, j) => {
      values[p] = grid[p]![ks[j]!];
      setPath(spec, p, values[p]);
    });
    const fail = (field: string, message: string): never => {
      const p = blame(field, paths);
      if (p !== null) {
        const k = ks[paths.indexOf(p)]!;
        throw new SpecError(gridRef(p, k), `${gridRef(p, k)} = ${quote(values[p])} (cell ${index}: ${describeCell(paths, values)}): ${message}`);
      }
      throw new SpecError(`base.${field.replace(/^\//, '').replace(/\//g, '.')}`, `cell ${index} (${describeCell(paths, values)}): ${message}`);
    };
    let admitted: AdmittedCell<S>;
    try {
      admitted = o.admit(spec);
    } catch (err) {
      if (err instanceof SpecError) fail(err.field, err.message);
      if (err instanceof LimitError) {
        throw new LimitError(err.limit, err.value, err.max, `cell ${index} (${describeCell(paths, values)}): ${err.message}`, err.variable);
      }
      throw err;
    }
    cost.flops += admitted!.flops;
    cost.flopsPerStep += admitted!.flopsPerStep;
    cost.parameters = Math.max(cost.parameters, admitted!.parameters);
    cells.push({ index, values, spec: admitted!.spec });
  }
  return { paths, cells, cost };
}

/** Cells of the grid: every path a non-empty array of values not nested too deep, at most maxCells in all. */
function cellCount(grid: Record<string, unknown[]>, paths: string[], maxCells: number): number {
  let count = 1;
  for (const p of paths) {
    const values = grid[p];
    if (!Array.isArray(values) || values.length === 0) throw new SpecError(gridRef(p), `${gridRef(p)} must be a non-empty array of values`);
    values.forEach((value, k) => {
      if (nestingDepth(value, MAX_GRID_VALUE_DEPTH) > MAX_GRID_VALUE_DEPTH) {
        throw new SpecError(gridRef(p, k), `${gridRef(p, k)} nests arrays or objects more than ${MAX_GRID_VALUE_DEPTH} levels deep (the limit)`);
      }
    });
    count *= values.length;
    if (count > maxCells) break;
  }
  if (count > maxCells) {
    const total = paths.reduce((n, p) => n * grid[p]!.length, 1);
    throw new LimitError('maxSweepCells', total, maxCells,
      `the grid has ${total} cells (${paths.map((p) => grid[p]!.length).join(' × ')}) but the limit (GRADLENS_MAX_SWEEP_CELLS) is ${maxCells}`, 'GRADLENS_MAX_SWEEP_CELLS');
  }
  return count;
}

/** A network sweep's cell: schema-checked as an analysis spec, costed within the async analysis budget (what-if runs included). */
function admitAnalysisCell(spec: Record<string, unknown>, limits: SpecLimits): AdmittedCell<AnalysisSpecInput> {
  if (!Value.Check(AnalysisSpecSchema, spec)) {
    const [e] = Value.Errors(AnalysisSpecSchema, spec);
    throw new SpecError(e?.instancePath ?? '', `${e?.instancePath || '/'} ${e?.message ?? 'does not match the analysis spec schema'}`);
  }
  const cellSpec = spec as AnalysisSpecInput;
  const admitted = admitAnalysis(cellSpec, limits, 'asyncAnalysis');
  return { spec: cellSpec, flops: admitted.totalFlops, flopsPerStep: admitted.cost.flopsPerStep, parameters: admitted.cost.parameters };
}

/**
 * Expands a sweep of a network spec into cells (expandGrid), each validated, normalised and costed as an
 * analysis before any compute. Throws LimitError when there are more than maxCells cells or when the summed
 * cost is over the limits.
 */
export function expandSweep(input: SweepSpecInput, limits: SpecLimits = DEFAULT_LIMITS, maxCells: number): ExpandedSweep {
  const { paths, cells, cost } = expandGrid(input, { maxCells, roots: ROOTS, admit: (spec) => admitAnalysisCell(spec, limits) });
  checkCost(cost, limits, { budget: 'sweep', what: `sweep of ${cost.cells} cells` });
  return { paths, cells, cost };
}

/** One table row: the cell's grid values plus its analysis' summary numbers (JSON-safe). */
export function sweepRow(cell: SweepCell, output: AnalysisOutput): SweepRow {
  return { index: cell.index, values: { ...cell.values }, ...analysisFacts(output.result) };
}

/** The sweep result from its rows; with expect, every row gets `passed` and the checks are attached. */
export function sweepResult(paths: string[], rows: SweepRow[], expect?: SweepSpecInput['expect']): SweepResult {
  const result: SweepResult = { paths: [...paths], cellCount: rows.length, rows };
  if (expect) {
    const report = evaluateChecks(expect, 'sweep', { rows });
    report.cells!.forEach((c, i) => { rows[i]!.passed = c.passed; });
    Object.assign(result, report);
  }
  return result;
}

export const SUMMARY_COLUMNS = [
  'verdict', 'firstToLastRatio', 'backpropFirstToLastRatio', 'weightGradLogSlope', 'backpropLogSlope',
  'loss', 'nonFinite', 'maxDeadFraction', 'maxSaturatedFraction',
] as const;

function csvValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : nonFiniteToken(v);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v);
}

/** RFC 4180: a field with a comma, quote, CR or LF is quoted, and its quotes doubled. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The table as RFC 4180 CSV (CRLF line ends, header row): index, the grid paths in grid order, the
 * summary columns, and passed when checks were evaluated. Empty fields are nulls; non-finite numbers
 * are NaN / Infinity / -Infinity; object or array grid values are JSON.
 */
export function sweepToCsv(rows: SweepRow[], paths: string[] = rows[0] ? Object.keys(rows[0].values) : []): string {
  const withPassed = rows.some((r) => r.passed !== undefined);
  const header = ['index', ...paths, ...SUMMARY_COLUMNS, ...(withPassed ? ['passed'] : [])];
  const lines = [header.map(csvField).join(',')];
  for (const row of rows) {
    const fields = [
      row.index,
      ...paths.map((p) => row.values[p]),
      ...SUMMARY_COLUMNS.map((c) => row[c]),
      ...(withPassed ? [row.passed] : []),
    ];
    lines.push(fields.map((f) => csvField(csvValue(f))).join(','));
  }
  return lines.map((l) => `${l}\r\n`).join('');
}
