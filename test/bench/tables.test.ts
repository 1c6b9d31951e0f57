// The benchmark tables in README.md and bench/README.md are what `npm run bench:table` makes of the committed raw results they name.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DOCS, namedResults, readResults, regenerate } from '../../bench/table.js';
import { fromSampleRows } from '../../bench/result-file.js';
import { summarize } from '../../bench/pairs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe.each(Object.entries(DOCS) as [keyof typeof DOCS, string][])('%s', (doc, rel) => {
  const text = readFileSync(`${root}${rel}`, 'utf8');
  const files = namedResults(text);

  it('names committed raw results files (not git-ignored)', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(f).toMatch(/^bench\/results\/\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.json$/);
      expect(existsSync(`${root}${f}`), f).toBe(true);
      // check-ignore exits 1 when the path is not ignored.
      expect(() => execFileSync('git', ['check-ignore', '-q', f], { cwd: root })).toThrow();
    }
  });

  it('has its tables as generated from them (npm run bench:table)', () => {
    expect(regenerate(doc, text)).toBe(text);
  });

  it('stores summaries that agree with its raw samples (the tables are computed from the samples)', () => {
    for (const f of files) {
      for (const row of readResults(f).rows.filter((r) => r.ok)) {
        const again = summarize(fromSampleRows(row.samples!), row.units);
        const stored = row.summary!;
        const label = `${row.workload} ${row.pairing} ${row.requested}`;
        expect(again.pairs, label).toBe(stored.pairs);
        for (const [a, b] of [[again.ratio!.median, stored.ratio!.median], [again.cpuRatio!.median, stored.cpuRatio!.median], [again.gradlens.medianMs, stored.gradlens.medianMs]] as const) {
          expect(Math.abs(a - b) / b, label).toBeLessThan(1e-3);
        }
      }
    }
  });
});
