// The CLI's through-time sparkline on its own: long sequences are averaged in log10 over equal runs of steps,
// non-finite norms (the API's strings) and zeros get their own marks, whatever their neighbours.
import { describe, it, expect } from 'vitest';
import { sampledSteps, sparkline, SPARK_LEVELS, SPARK_WIDTH } from '../../src/cli/through-time.js';

describe('sparkline', () => {
  it('averages log10 over runs of steps beyond its width: a geometric sequence rises one level per eighth', () => {
    // norms[t] = 10^(3t/(T−1)): log10 is linear in t, each run of T/60 steps has the mean of its first and last.
    const T = 600;
    const norms = Array.from({ length: T }, (_, t) => 10 ** ((3 * t) / (T - 1)));
    const run = T / SPARK_WIDTH;
    const means = Array.from({ length: SPARK_WIDTH }, (_, b) => (3 * (b * run + (run - 1) / 2)) / (T - 1));
    const [lo, hi] = [means[0]!, means[SPARK_WIDTH - 1]!];
    const expected = means.map((m) => SPARK_LEVELS[Math.min(7, Math.floor(((m - lo) / (hi - lo)) * 8))]).join('');
    expect(sparkline(norms)).toBe(expected);
    expect(expected[0]).toBe('▁');
    expect(expected[SPARK_WIDTH - 1]).toBe('█');
  });

  it('averages in log10 rather than sampling a run: pairs (1e-6, 1) and (1e-3, 1e-3) read as one level', () => {
    const norms = Array.from({ length: 2 * SPARK_WIDTH }, (_, t) => (t < SPARK_WIDTH ? (t % 2 === 0 ? 1e-6 : 1) : 1e-3));
    expect(sparkline(norms)).toBe('▅'.repeat(SPARK_WIDTH));
  });

  it('marks a run holding NaN or Infinity with "!", an all-zero run with "_", and keeps the scale of the rest', () => {
    expect(sparkline([1, 'Infinity', 10, 0, 100, 'NaN'])).toBe('▁!▅_█!');
    expect(sparkline(['NaN', 'NaN'])).toBe('!!');
    // A flat sequence has no range: the middle level.
    expect(sparkline([2, 2, 2])).toBe('▅▅▅');
  });

  it('samples up to five steps, the first and the last included', () => {
    expect(sampledSteps(20)).toEqual([0, 5, 10, 14, 19]);
    expect(sampledSteps(3)).toEqual([0, 1, 2]);
    expect(sampledSteps(1)).toEqual([0]);
  });
});
