// The paired benchmark's arithmetic: alternation order, the span of two PyTorch processes, median of per-pair ratios.
import { describe, it, expect } from 'vitest';
import { runPairs, summarize, torchSample, type Pair, type Side } from '../../bench/pairs.js';
import { fromSampleRows, serializeResults, toSampleRows, type ResultFile } from '../../bench/result-file.js';

const pair = (g: number, t: number, gc = g, tc = t): Pair => ({ gradlens: { wallMs: g, cpuMs: gc }, torch: { wallMs: t, cpuMs: tc } });

describe('paired timing', () => {
  it('alternates the sides sample by sample, gradlens first', async () => {
    const order: string[] = [];
    const pairs = await runPairs(
      async () => { order.push('g'); return { wallMs: 2, cpuMs: 2 }; },
      async () => { order.push('t'); return { wallMs: 1, cpuMs: 1 }; },
      { budgetMs: 0, minPairs: 4, maxPairs: 10 },
    );
    expect(pairs).toHaveLength(4);
    expect(order.join('')).toBe('gtgtgtgt');
  });

  it('reports the median of the per-pair ratios, not the ratio of the medians', () => {
    // Ratios 1, 5, 3: median 3. The medians alone would say 5 / 1 = 5.
    const s = summarize([pair(1, 1), pair(5, 1), pair(9, 3)], 1);
    expect(s.ratio!.median).toBe(3);
    expect(s.gradlens.medianMs / s.torch!.medianMs).toBe(5);
    // A machine whose load changes tenfold between pairs moves both sides of a pair together.
    const noisy = summarize([pair(2, 1), pair(20, 10), pair(200, 100)], 1);
    expect(noisy.ratio).toEqual({ median: 2, q25: 2, q75: 2 });
  });

  it('gives times per unit of work and CPU ratios beside wall ratios', () => {
    const s = summarize([pair(600, 120, 1200, 120), pair(600, 120, 1200, 120)], 60);
    expect(s.gradlens.medianMs).toBe(10);
    expect(s.torch!.cpuMedianMs).toBe(2);
    expect(s.ratio!.median).toBe(5);
    expect(s.cpuRatio!.median).toBe(10);
  });

  it('times two PyTorch processes by the span from the first start to the last end, and adds their CPU', async () => {
    const fake = (t0: number, t1: number, cpuMs: number): Side => ({ request: async () => ({ t0, t1, cpuMs, wallMs: (t1 - t0) * 1000 }) }) as unknown as Side;
    expect(await torchSample([fake(10, 11, 900), fake(10.5, 12, 1400)])).toEqual({ wallMs: 2000, cpuMs: 2300 });
  });

  it('keeps every sample in the results file and reads it back', () => {
    const pairs = [pair(1.23456, 0.5), pair(2, 1, 3, 4)];
    const rows = toSampleRows(pairs);
    expect(fromSampleRows(rows)).toEqual([pair(1.235, 0.5), pair(2, 1, 3, 4)]);
    const text = serializeResults({ rows: [{ samples: rows }] } as unknown as ResultFile);
    expect(text).toContain('[1.235,1.235,0.5,0.5]');
    expect((JSON.parse(text) as ResultFile).rows[0]!.samples).toEqual(rows);
  });
});
