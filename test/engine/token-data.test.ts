// data.source "tokens": sentences from a seeded first-order grammar. Checked from the drawn data alone: every
// token is followed by at most `branching` distinct tokens, next_token's class is one of the last token's
// successors, and each ungrammatical sentence has one replaced token: one or two transitions no grammatical one makes.
import { describe, it, expect } from 'vitest';
import { loadDataset } from '../../src/engine/data/datasets.js';

const V = 12, T = 10, B = 3;

function transitions(x: Float32Array, rows: number[]): Map<number, Set<number>> {
  const next = new Map<number, Set<number>>();
  for (const i of rows) for (let t = 0; t + 1 < T; t++) {
    const a = x[i * T + t]!, b = x[i * T + t + 1]!;
    if (!next.has(a)) next.set(a, new Set());
    next.get(a)!.add(b);
  }
  return next;
}

describe('token data from a synthetic grammar', () => {
  it('next_token: ids in [0, V), not normalised, at most branching successors per token, the class one of them', () => {
    const ds = loadDataset({ source: 'tokens', batchSize: 8, batches: 1, samples: 400, tokens: { vocab: V, length: T, branching: B } }, 7);
    expect(ds).toMatchObject({ n: 400, inputShape: [T], outputSize: V, task: 'classification', normalization: 'none' });
    expect(ds.x.every((v) => Number.isInteger(v) && v >= 0 && v < V)).toBe(true);
    const next = transitions(ds.x, Array.from({ length: ds.n }, (_, i) => i));
    for (const s of next.values()) expect(s.size).toBeLessThanOrEqual(B);
    // Some token shows all B successors (the grammar really branches).
    expect(Math.max(...[...next.values()].map((s) => s.size))).toBe(B);
    for (let i = 0; i < ds.n; i++) expect(next.get(ds.x[i * T + T - 1]!)?.has(ds.labels![i]!) ?? true).toBe(true);
  });

  it('grammatical: half the sentences break the grammar at exactly one step', () => {
    const ds = loadDataset({ source: 'tokens', batchSize: 8, batches: 1, samples: 600, tokens: { vocab: V, length: T, branching: B, target: 'grammatical' } }, 7);
    expect(ds).toMatchObject({ task: 'binary', outputSize: 1 });
    const rows = Array.from({ length: ds.n }, (_, i) => i);
    const good = rows.filter((i) => ds.labels![i] === 1), bad = rows.filter((i) => ds.labels![i] === 0);
    expect(good.length).toBe(bad.length);
    const allowed = transitions(ds.x, good);
    for (const i of bad) {
      let broken = 0;
      for (let t = 0; t + 1 < T; t++) if (!allowed.get(ds.x[i * T + t]!)?.has(ds.x[i * T + t + 1]!)) broken++;
      // The replaced token breaks its incoming transition; its outgoing one may break too (it was drawn for the old token).
      expect(broken).toBeGreaterThanOrEqual(1);
      expect(broken).toBeLessThanOrEqual(2);
    }
  });

  it('refuses a vocabulary outside its limits naming data.tokens.vocab', () => {
    expect(() => loadDataset({ source: 'tokens', batchSize: 8, batches: 1, tokens: { vocab: 1 } }, 1)).toThrow(/data\.tokens\.vocab must be an integer from 2 to 1000/);
  });
});
