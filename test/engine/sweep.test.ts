// Sweeps: grid expansion (order, values, cost, errors naming grid paths), rows from real analyses, and CSV round-trip.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { TEST_BACKEND_OPTIONS, testBackendName, useTestBackend } from '../backends.js';
import { expandSweep, sweepToCsv, SUMMARY_COLUMNS, type SweepRow, type SweepResult } from '../../src/engine/runs/sweep-run.js';
import { runSweep } from '../../src/jobs/sweep-runner.js';
import { InProcessRunner } from '../../src/jobs/runner.js';
import type { JobContext } from '../../src/jobs/manager.js';
import type { JobRecord } from '../../src/jobs/store.js';
import { normalizeSpec, DEFAULT_LIMITS } from '../../src/engine/spec/normalize.js';
import { estimateCost } from '../../src/engine/spec/cost.js';
import { LimitError, SpecError } from '../../src/engine/common/errors.js';
import type { SweepSpecInput } from '../../src/schemas/sweep.js';

beforeAll(async () => {
  await useTestBackend();
});

const base: SweepSpecInput['base'] = {
  seed: 1,
  network: { depth: 6, width: 16, activation: 'relu' },
  data: { source: 'iris', batchSize: 32 },
};

const VS = { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'normal' };

const sweep: SweepSpecInput = {
  base,
  grid: {
    'network.activation': ['relu', 'tanh', 'sigmoid'],
    'network.init.weights': ['glorot_uniform', VS],
  },
};

/** A strict RFC 4180 reader for the round trip. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      field += ch; i++; continue;
    }
    if (ch === '"' && field === '') { quoted = true; i++; continue; }
    if (ch === ',') { row.push(field); field = ''; i++; continue; }
    if (ch === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    if (ch === '\n' || ch === '\r' || ch === '"') throw new Error(`bare ${JSON.stringify(ch)} at ${i}`);
    field += ch; i++;
  }
  if (field !== '' || row.length) throw new Error('missing final CRLF');
  return rows;
}

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpecError) return err;
    throw err;
  }
  throw new Error('no SpecError');
}

describe('expandSweep', () => {
  it('expands activations × inits in row-major order (first path slowest), setting values into copies of base', () => {
    const { cells, paths, cost } = expandSweep(sweep, DEFAULT_LIMITS, 100);
    expect(paths).toEqual(['network.activation', 'network.init.weights']);
    expect(cells).toHaveLength(6);
    expect(cells.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(cells.map((c) => [c.values['network.activation'], c.values['network.init.weights']])).toEqual([
      ['relu', 'glorot_uniform'], ['relu', VS],
      ['tanh', 'glorot_uniform'], ['tanh', VS],
      ['sigmoid', 'glorot_uniform'], ['sigmoid', VS],
    ]);
    // The missing network.init object is created; base itself is untouched.
    expect(cells[3]!.spec.network).toEqual({ depth: 6, width: 16, activation: 'tanh', init: { weights: VS } });
    expect(base.network).toEqual({ depth: 6, width: 16, activation: 'relu' });
    expect(cells[3]!.spec.network.init!.weights).not.toBe(VS);
    // Cost: the sum over cells (all cells here share one architecture).
    const one = estimateCost(normalizeSpec(cells[0]!.spec).spec);
    expect(cost.cells).toBe(6);
    expect(cost.flops).toBe(6 * one.flops);
    expect(cost.parameters).toBe(one.parameters);
  });

  it('sets nested paths through name-only strings and creates network.residual when absent', () => {
    const { cells } = expandSweep({
      base: { ...base, network: { ...base.network, init: { weights: 'he_normal' } } },
      grid: { 'network.init.weights.name': ['he_uniform'], 'network.residual.every': [0, 2], seed: [1, 2] },
    }, DEFAULT_LIMITS, 10);
    expect(cells).toHaveLength(4);
    expect(cells[3]!.spec.network.init).toEqual({ weights: { name: 'he_uniform' } });
    expect(cells[3]!.spec.network.residual).toEqual({ every: 2 });
    expect(cells.map((c) => c.spec.seed)).toEqual([1, 2, 1, 2]);
  });

  it('validates every cell before any compute; errors name the grid path and value index', () => {
    const bad = (grid: Record<string, unknown[]>): SpecError => specError(() => expandSweep({ base, grid }, DEFAULT_LIMITS, 100));
    let e = bad({ 'network.init.weights': ['he_normal'], 'network.activation': ['relu', 'tanh', 'softmax'] });
    expect(e.field).toBe('grid["network.activation"][2]');
    expect(e.message).toMatch(/^grid\["network\.activation"\]\[2\] = "softmax" \(cell 2: network.init.weights="he_normal", network.activation="softmax"\): /);
    expect(e.message).toMatch(/softmax is only allowed as network\.outputActivation/);
    e = bad({ 'network.activation': ['relu', 'no_such_activation'] });
    expect(e.field).toBe('grid["network.activation"][1]');
    e = bad({ 'network.depth': [3, 'four'] });
    expect(e.field).toBe('grid["network.depth"][1]');
    e = bad({ 'network.depth': [3, 5000] });
    expect(e.field).toBe('grid["network.depth"][1]');
    expect(e.message).toMatch(/limit is 200/);
    e = bad({ 'network.init.weights.name': ['he_normal', 'nope'] });
    expect(e.field).toBe('grid["network.init.weights.name"][1]');
    e = bad({ 'network.init': [{}], 'network.init.weights': ['he_normal'] });
    expect(e.message).toMatch(/overlaps/);
    e = bad({ '__proto__.polluted': [1] });
    expect(e.field).toBe('grid["__proto__.polluted"]');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    e = bad({ 'include': [['batch']] });
    expect(e.message).toMatch(/start with seed, network, data, loss or thresholds/);
    e = bad({ 'network.width.x': [1] });
    expect(e.field).toBe('grid["network.width.x"]');
  });

  it('checks the cell count and the summed cost against the limits', () => {
    const err = (() => { try { expandSweep(sweep, DEFAULT_LIMITS, 5); } catch (e) { return e; } })() as LimitError;
    expect(err).toBeInstanceOf(LimitError);
    expect(err.limit).toBe('maxSweepCells');
    expect(err.value).toBe(6);
    expect(err.max).toBe(5);
    const one = estimateCost(normalizeSpec({ ...base }).spec).flops;
    // Every cell fits alone, but not all six together: the sweep budget counts them all, each cell is an async analysis.
    expect(() => expandSweep(sweep, { ...DEFAULT_LIMITS, maxSweepFlops: 3 * one }, 100)).toThrow(/sweep of 6 cells needs about .* \(GRADLENS_MAX_SWEEP_FLOPS\)/);
    expect(() => expandSweep(sweep, { ...DEFAULT_LIMITS, maxAsyncAnalysisFlops: one / 2 }, 100)).toThrow(/cell 0 .* \(GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS\)/);
    expect(() => expandSweep(sweep, { ...DEFAULT_LIMITS, maxAnalysisFlops: one / 2 }, 100)).not.toThrow();
    expect(() => expandSweep({ ...sweep, expect: { learns: true } }, DEFAULT_LIMITS, 100)).toThrow(/expect.learns applies to trainings/);
  });
});

describe('a sweep job over activations × inits (the job layer\'s runSweep, on the in-process runner)', () => {
  let rows: SweepRow[];
  let csv: string;

  beforeAll(async () => {
    // What the service runs for a sweep job, on this process's test backend (the same set-up as useTestBackend).
    const runner = new InProcessRunner(DEFAULT_LIMITS, testBackendName(), TEST_BACKEND_OPTIONS);
    await runner.ready();
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const spec = { ...sweep, expect: { maxNonFinite: 0, minFirstToLastRatio: 1e-3 } };
    const ctx: JobContext = {
      job: { spec } as unknown as JobRecord, // runSweep reads only the job's spec
      runner,
      signal: new AbortController().signal,
      progress: (p) => progress.push(p),
      record: () => undefined,
    };
    const out = (await runSweep(ctx, spec, DEFAULT_LIMITS, 100)) as { result: SweepResult };
    expect(progress).toEqual([1, 2, 3, 4, 5, 6].map((k) => k / 6));
    expect(tf.memory().numTensors).toBe(before);
    rows = out.result.rows;
    csv = sweepToCsv(rows);
    expect(out.result.cellCount).toBe(6);
    expect(out.result.checks!.map((c) => c.name)).toEqual(['minFirstToLastRatio', 'maxNonFinite']);
    expect(out.result.cells).toHaveLength(6);
    expect(out.result.passed).toBe(out.result.cells!.every((c) => c.passed));
  });

  it('returns the full table: one row per cell with its values and summary numbers', () => {
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const r of rows) {
      expect(typeof r.firstToLastRatio).toBe('number');
      expect(typeof r.loss).toBe('number');
      expect(r.nonFinite).toBe(0);
      expect(r.verdict === null || typeof r.verdict === 'string').toBe(true);
      expect(typeof r.passed).toBe('boolean');
    }
    // Depth 6 sigmoid/Glorot shrinks the first layer's gradient far more than ReLU/Glorot does.
    expect(rows[4]!.firstToLastRatio as number).toBeLessThan(0.1 * (rows[0]!.firstToLastRatio as number));
    expect(rows[4]!.maxSaturatedFraction).not.toBeNull();
    expect(rows[0]!.maxSaturatedFraction).toBeNull();
  });

  it('writes RFC 4180 CSV that reads back to the same table', () => {
    expect(csv.endsWith('\r\n')).toBe(true);
    const table = parseCsv(csv);
    expect(table[0]).toEqual(['index', 'network.activation', 'network.init.weights', ...SUMMARY_COLUMNS, 'passed']);
    expect(table).toHaveLength(7);
    // The object-valued grid value holds commas and quotes, so it is quoted and reads back as its JSON.
    expect(csv).toContain('"{""name"":""variance_scaling"",""scale"":2');
    expect(JSON.parse(table[2]![2]!)).toEqual(VS);
    table.slice(1).forEach((fields, i) => {
      const row = rows[i]!;
      expect(fields[0]).toBe(String(row.index));
      expect(fields[1]).toBe(row.values['network.activation']);
      SUMMARY_COLUMNS.forEach((c, j) => {
        const v = row[c];
        const text = fields[3 + j]!;
        if (v === null) expect(text).toBe('');
        else if (typeof v === 'number') expect(Number(text)).toBe(v);
        else expect(text).toBe(String(v));
      });
      expect(fields.at(-1)).toBe(String(row.passed));
    });
  });

  it('writes non-finite numbers as NaN / Infinity and quotes fields with quotes, commas or line breaks', () => {
    const row: SweepRow = {
      index: 0, values: { 'network.activation': 'a "b", c\nd' }, verdict: null,
      firstToLastRatio: 'NaN', backpropFirstToLastRatio: Infinity, weightGradLogSlope: null, backpropLogSlope: -Infinity,
      loss: 1, nonFinite: 2, maxDeadFraction: 0, maxSaturatedFraction: null,
    };
    const text = sweepToCsv([row]);
    const [header, fields] = parseCsv(text);
    expect(header).toEqual(['index', 'network.activation', ...SUMMARY_COLUMNS]);
    expect(fields).toEqual(['0', 'a "b", c\nd', '', 'NaN', 'Infinity', '', '-Infinity', '1', '2', '0', '']);
    expect(sweepToCsv([], ['seed'])).toBe(`index,seed,${SUMMARY_COLUMNS.join(',')}\r\n`);
  });
});
