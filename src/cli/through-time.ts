// The CLI's through-time summary of an analysis with recurrent layers (result.throughTime): per layer the fitted
// slope and factor per step, the memory horizon and the verdict, then a sparkline of ‖∂L/∂h_t‖ and a few sampled norms.
import type { ThroughTimeEntryBody } from '../schemas/through-time.js';

type Table = (rows: string[][]) => string;
type Fmt = (v: unknown) => string;

/** Eight heights, low to high; a non-finite norm is "!", an exact zero "_" (neither has a place on a log scale). */
export const SPARK_LEVELS = '▁▂▃▄▅▆▇█';
export const SPARK_NONFINITE = '!';
export const SPARK_ZERO = '_';
/** Longer sequences are averaged (in log10) over equal runs of steps down to this many characters. */
export const SPARK_WIDTH = 60;

const value = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

/** One character per step (or per run of steps when longer than `width`), on the row's own log10 range. */
export function sparkline(norms: readonly unknown[], width = SPARK_WIDTH): string {
  const buckets = Math.min(width, norms.length);
  const cells = Array.from({ length: buckets }, (_, b) => {
    const run = norms.slice(Math.floor((b * norms.length) / buckets), Math.floor(((b + 1) * norms.length) / buckets)).map(value);
    if (run.some((n) => !Number.isFinite(n))) return SPARK_NONFINITE;
    const positive = run.filter((n) => n > 0);
    return positive.length === 0 ? SPARK_ZERO : positive.reduce((s, n) => s + Math.log10(n), 0) / positive.length;
  });
  const logs = cells.filter((c): c is number => typeof c === 'number');
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  return cells.map((c) => {
    if (typeof c === 'string') return c;
    const t = hi - lo < 1e-12 ? 0.5 : (c - lo) / (hi - lo);
    return SPARK_LEVELS[Math.min(SPARK_LEVELS.length - 1, Math.floor(t * SPARK_LEVELS.length))]!;
  }).join('');
}

/** Up to five steps spread over 0 … T−1, first and last included. */
export function sampledSteps(steps: number): number[] {
  return [...new Set([0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (steps - 1))))];
}

function gateText(e: ThroughTimeEntryBody, fmt: Fmt): string {
  return e.gates ? `${e.gates.name} ${fmt(e.gates.overallMean)} (saturated ${fmt(e.gates.overallSaturated)})` : '-';
}

/** The summary table and one sparkline line per layer; null when the result has no throughTime. */
export function throughTimeRows(result: Record<string, unknown>, table: Table, fmt: Fmt): string | null {
  const entries = result.throughTime as ThroughTimeEntryBody[] | undefined;
  if (!Array.isArray(entries) || entries.length === 0) return null;
  const summary = table([
    ['RECURRENT', 'KIND', 'STEPS', 'VERDICT', 'SLOPE/STEP', 'FACTOR/STEP', 'R2', 'MEMORY HORIZON', 'FIRST/LAST', 'SIGMA1', 'GATE'],
    ...entries.map((e) => [
      e.path, e.kind, String(e.steps), e.verdict,
      e.fit ? fmt(e.fit.slope) : '-', e.fit ? fmt(e.fit.factorPerStep) : '-', e.fit ? fmt(e.fit.r2) : '-',
      e.memoryHorizon === null ? 'none' : `${e.memoryHorizon} steps`, fmt(e.relative[0]),
      fmt(e.recurrentMatrix.largestSingularValue), gateText(e, fmt),
    ]),
  ]);
  const width = Math.max(...entries.map((e) => e.path.length));
  const lines = entries.map((e) => {
    const samples = sampledSteps(e.norms.length).map((t) => `t=${t} ${fmt(e.norms[t])}`).join('  ');
    return `${e.path.padEnd(width)}  ${sparkline(e.norms)}  ${samples}`;
  });
  const legend = `‖dL/dh_t‖ for t = 0 … T-1 (last step on the right), log scale per layer; ${SPARK_NONFINITE} NaN/Infinity, ${SPARK_ZERO} zero`;
  return `through time (slope: fitted ln norm per step back; memory horizon: steps back until the norm falls below ${fmt(entries[0]!.horizonThreshold)} × the last step's)\n${summary}${legend}\n${lines.join('\n')}\n`;
}
