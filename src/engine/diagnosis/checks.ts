// CI gates: validates `expect` against the kind of work up front and evaluates it against a finished result.
import type { CheckResult, ExpectInput } from '../../schemas/checks.js';
import { SpecError } from '../common/errors.js';
import { nonFiniteToken, type NonFiniteToken } from '../common/json-safe.js';

export type WorkKind = 'analysis' | 'training' | 'sweep';

/** A number as it appears in JSON-safe results: non-finite values are strings. */
export type JsonNumber = number | NonFiniteToken;

export type Check = CheckResult;

export interface CellChecks {
  index: number;
  passed: boolean;
  checks: Check[];
}

export interface CheckReport {
  checks: Check[];
  passed: boolean;
  /** Sweeps only: every cell's own checks. */
  cells?: CellChecks[];
}

/** The per-analysis numbers that checks (and sweep rows) read. */
export interface AnalysisFacts {
  verdict: string | null;
  firstToLastRatio: JsonNumber;
  backpropFirstToLastRatio: JsonNumber;
  weightGradLogSlope: JsonNumber | null;
  backpropLogSlope: JsonNumber | null;
  loss: JsonNumber;
  nonFinite: number;
  maxDeadFraction: JsonNumber | null;
  maxSaturatedFraction: JsonNumber | null;
}

/** The structural part of an analysis result (raw or JSON-safe) that analysisFacts reads. */
export interface AnalysisResultLike {
  loss: JsonNumber;
  layers: { deadFraction: JsonNumber | null; saturatedFraction: JsonNumber | null }[];
  summary: {
    firstToLastRatio: JsonNumber;
    backpropFirstToLastRatio: JsonNumber;
    weightGradLogSlope: { slope: JsonNumber } | null;
    backpropLogSlope: { slope: JsonNumber } | null;
    verdict?: unknown;
  };
  nonFinite?: { count: number };
}

/** The structural part of a training result that checks read. */
export interface TrainingResultLike {
  learns: boolean;
  status: string;
  finalLoss: JsonNumber;
  lossReduction: JsonNumber;
  finalAccuracy: JsonNumber | null;
  records: { firstToLastRatio: JsonNumber; backpropFirstToLastRatio: JsonNumber }[];
  nonFinite: { count: number };
}

/** The structural part of a sweep result that checks read: one row of facts per cell. */
export interface SweepResultLike {
  rows: (AnalysisFacts & { index: number })[];
}

export function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return null;
}

function jsonSafe(v: number): JsonNumber {
  return Number.isFinite(v) ? v : nonFiniteToken(v);
}

/** Largest value over layers, skipping nulls; NaN anywhere makes the result NaN (it must not pass a max check). */
function maxOf(values: (JsonNumber | null)[]): JsonNumber | null {
  let best: number | null = null;
  for (const v of values) {
    const n = toNumber(v);
    if (n === null) continue;
    if (Number.isNaN(n)) return 'NaN';
    if (best === null || n > best) best = n;
  }
  return best === null ? null : jsonSafe(best);
}

export function analysisFacts(result: AnalysisResultLike): AnalysisFacts {
  const s = result.summary;
  return {
    verdict: typeof s.verdict === 'string' ? s.verdict : null,
    firstToLastRatio: s.firstToLastRatio,
    backpropFirstToLastRatio: s.backpropFirstToLastRatio,
    weightGradLogSlope: s.weightGradLogSlope ? s.weightGradLogSlope.slope : null,
    backpropLogSlope: s.backpropLogSlope ? s.backpropLogSlope.slope : null,
    loss: result.loss,
    nonFinite: result.nonFinite?.count ?? 0,
    maxDeadFraction: maxOf(result.layers.map((l) => l.deadFraction)),
    maxSaturatedFraction: maxOf(result.layers.map((l) => l.saturatedFraction)),
  };
}

type Rule =
  | { kind: 'min' | 'max'; read: (facts: Facts) => unknown }
  | { kind: 'oneOf' | 'equals'; read: (facts: Facts) => unknown };

type Facts = Partial<AnalysisFacts> & {
  learns?: boolean;
  status?: string;
  finalLoss?: JsonNumber;
  lossReduction?: JsonNumber;
  finalAccuracy?: JsonNumber | null;
};

const ANALYSIS: WorkKind[] = ['analysis', 'sweep'];
const GRADIENTS: WorkKind[] = ['analysis', 'sweep', 'training'];
const TRAINING: WorkKind[] = ['training'];

// In ExpectSchema's order, which is the order checks are reported in.
const RULES: { name: keyof ExpectInput; kinds: WorkKind[]; rule: Rule }[] = [
  { name: 'verdict', kinds: ANALYSIS, rule: { kind: 'oneOf', read: (f) => f.verdict } },
  { name: 'minFirstToLastRatio', kinds: GRADIENTS, rule: { kind: 'min', read: (f) => f.firstToLastRatio } },
  { name: 'maxFirstToLastRatio', kinds: GRADIENTS, rule: { kind: 'max', read: (f) => f.firstToLastRatio } },
  { name: 'minBackpropFirstToLastRatio', kinds: GRADIENTS, rule: { kind: 'min', read: (f) => f.backpropFirstToLastRatio } },
  { name: 'maxBackpropFirstToLastRatio', kinds: GRADIENTS, rule: { kind: 'max', read: (f) => f.backpropFirstToLastRatio } },
  { name: 'maxLoss', kinds: ANALYSIS, rule: { kind: 'max', read: (f) => f.loss } },
  { name: 'maxDeadFraction', kinds: ANALYSIS, rule: { kind: 'max', read: (f) => f.maxDeadFraction } },
  { name: 'maxSaturatedFraction', kinds: ANALYSIS, rule: { kind: 'max', read: (f) => f.maxSaturatedFraction } },
  { name: 'maxNonFinite', kinds: ['analysis', 'sweep', 'training'], rule: { kind: 'max', read: (f) => f.nonFinite } },
  { name: 'learns', kinds: TRAINING, rule: { kind: 'equals', read: (f) => f.learns } },
  { name: 'status', kinds: TRAINING, rule: { kind: 'oneOf', read: (f) => f.status } },
  { name: 'maxFinalLoss', kinds: TRAINING, rule: { kind: 'max', read: (f) => f.finalLoss } },
  { name: 'minLossReduction', kinds: TRAINING, rule: { kind: 'min', read: (f) => f.lossReduction } },
  { name: 'minAccuracy', kinds: TRAINING, rule: { kind: 'min', read: (f) => f.finalAccuracy } },
];

const KIND_PLURAL: Record<WorkKind, string> = { analysis: 'analyses', training: 'trainings', sweep: 'sweeps' };

/**
 * Rejects expectations that cannot apply to this kind of work (or, for trainings, to its data), so a
 * misplaced gate is a 400 at submission rather than a check that can never pass.
 */
export function validateExpect(
  expect: ExpectInput | undefined,
  kind: WorkKind,
  context: { hasAccuracy?: boolean } = {},
): void {
  if (!expect) return;
  for (const key of Object.keys(expect)) {
    const rule = RULES.find((r) => r.name === key);
    if (!rule) throw new SpecError(`expect.${key}`, `expect.${key} is not a known expectation`);
    if (!rule.kinds.includes(kind)) {
      throw new SpecError(`expect.${key}`,
        `expect.${key} applies to ${rule.kinds.map((k) => KIND_PLURAL[k]).join(' and ')}, not to ${KIND_PLURAL[kind]}`);
    }
    const value = expect[key as keyof ExpectInput];
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new SpecError(`expect.${key}`, `expect.${key} must be a finite number`);
    }
  }
  if (kind === 'training' && expect.minAccuracy !== undefined && context.hasAccuracy === false) {
    throw new SpecError('expect.minAccuracy', 'expect.minAccuracy needs class data and a loss other than "output": this training reports no accuracy');
  }
}

function evaluateRule(rule: Rule, expected: unknown, facts: Facts): { actual: unknown; passed: boolean } {
  const raw = rule.read(facts);
  const actual = raw === undefined ? null : typeof raw === 'number' ? jsonSafe(raw) : raw;
  switch (rule.kind) {
    case 'min':
    case 'max': {
      const n = toNumber(actual);
      // NaN compares false both ways, so it fails either bound.
      const passed = n !== null && (rule.kind === 'min' ? n >= (expected as number) : n <= (expected as number));
      return { actual, passed };
    }
    case 'oneOf': {
      const allowed = Array.isArray(expected) ? expected : [expected];
      return { actual, passed: actual !== null && allowed.includes(actual) };
    }
    case 'equals':
      return { actual, passed: actual === expected };
  }
}

function evaluateFacts(expect: ExpectInput, kind: WorkKind, facts: Facts): Check[] {
  const checks: Check[] = [];
  for (const { name, kinds, rule } of RULES) {
    const expected = expect[name];
    if (expected === undefined) continue;
    if (!kinds.includes(kind)) {
      // validateExpect rejects these up front; if one slips through it fails rather than passing silently.
      checks.push({ name, expected, actual: null, passed: false });
      continue;
    }
    checks.push({ name, expected, ...evaluateRule(rule, expected, facts) });
  }
  return checks;
}

function trainingFacts(result: TrainingResultLike): Facts {
  const first = result.records[0];
  return {
    learns: result.learns,
    status: result.status,
    finalLoss: result.finalLoss,
    lossReduction: result.lossReduction,
    finalAccuracy: result.finalAccuracy,
    nonFinite: result.nonFinite.count,
    // Gradient-ratio gates on a training read the record at initialisation, as an analysis would.
    ...(first ? { firstToLastRatio: first.firstToLastRatio, backpropFirstToLastRatio: first.backpropFirstToLastRatio } : {}),
  };
}

const MAX_LISTED_CELLS = 10;

/**
 * Evaluates every expectation against a finished result. Analyses: the JSON-safe (or raw) analysis
 * result. Trainings: the training result. Sweeps: the analysis expectations apply to every cell; the
 * overall check of each passes when every cell passes, and `cells` holds each cell's own checks.
 */
export function evaluateChecks(expect: ExpectInput, kind: 'analysis', result: AnalysisResultLike): CheckReport;
export function evaluateChecks(expect: ExpectInput, kind: 'training', result: TrainingResultLike): CheckReport;
export function evaluateChecks(expect: ExpectInput, kind: 'sweep', result: SweepResultLike): CheckReport;
export function evaluateChecks(expect: ExpectInput, kind: WorkKind, result: unknown): CheckReport;
export function evaluateChecks(expect: ExpectInput, kind: WorkKind, result: unknown): CheckReport {
  if (kind === 'analysis') {
    const checks = evaluateFacts(expect, kind, analysisFacts(result as AnalysisResultLike));
    return { checks, passed: checks.every((c) => c.passed) };
  }
  if (kind === 'training') {
    const checks = evaluateFacts(expect, kind, trainingFacts(result as TrainingResultLike));
    return { checks, passed: checks.every((c) => c.passed) };
  }
  const rows = (result as SweepResultLike).rows;
  const cells: CellChecks[] = rows.map((row) => {
    const checks = evaluateFacts(expect, 'sweep', row);
    return { index: row.index, passed: checks.every((c) => c.passed), checks };
  });
  const names = RULES.map((r) => r.name).filter((n) => expect[n] !== undefined);
  const checks: Check[] = names.map((name) => {
    const failing = cells.filter((c) => !c.checks.find((k) => k.name === name)?.passed).map((c) => c.index);
    const listed = failing.slice(0, MAX_LISTED_CELLS).join(', ') + (failing.length > MAX_LISTED_CELLS ? ', …' : '');
    return {
      name,
      expected: expect[name],
      actual: `${cells.length - failing.length} of ${cells.length} cells pass` + (failing.length ? ` (failing cells: ${listed})` : ''),
      passed: failing.length === 0,
    };
  });
  return { checks, passed: cells.every((c) => c.passed), cells };
}
