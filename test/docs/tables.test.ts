// The number tables of docs/reading-the-results.md are what scripts/docs-tables.ts prints for the code as it is.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { DOC_PATH, REGIONS, regionOf, withRegion } from '../../scripts/docs-tables.js';

describe('docs/reading-the-results.md tables (npm run docs:tables regenerates them)', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  beforeAll(async () => {
    // The quick regions are generated on the pure-JS cpu backend: deterministic, so compared exactly.
    await tf.setBackend('cpu');
  });

  it('has a marked region for every table the script writes, and nothing else between markers', () => {
    for (const r of REGIONS) expect(() => regionOf(doc, r.name), r.name).not.toThrow();
    const names = [...doc.matchAll(/<!-- table:([a-z-]+) -->/g)].map((m) => m[1]);
    expect(names.sort()).toEqual(REGIONS.map((r) => r.name).sort());
    // Rewriting a region with its own text changes nothing: the markers round-trip.
    for (const r of REGIONS) expect(withRegion(doc, r.name, regionOf(doc, r.name))).toBe(doc);
  });

  it.each(REGIONS.filter((r) => r.cost === 'quick').map((r) => [r.name, r] as const))('%s matches the code', async (name, region) => {
    expect(regionOf(doc, name), `docs/reading-the-results.md region ${name} is stale: run npm run docs:tables`).toBe(await region.render());
  });
});
