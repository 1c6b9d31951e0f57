// The training, sweep and expect schemas document every property (OpenAPI is generated from them) and accept their examples.
import { describe, it, expect } from 'vitest';
import Value from 'typebox/value';
import { TrainingSpecSchema, TrainingResultSchema } from '../../src/schemas/training.js';
import { SweepSpecSchema, SweepResultSchema } from '../../src/schemas/sweep.js';
import { AnalysisRequestSchema, CheckSchema, ExpectSchema } from '../../src/schemas/checks.js';

function undocumented(schema: unknown, path: string): string[] {
  const missing: string[] = [];
  const walk = (s: Record<string, any>, p: string): void => {
    if (!s || typeof s !== 'object') return;
    for (const [key, prop] of Object.entries<Record<string, any>>(s.properties ?? {})) {
      if (!prop.description && !prop.$ref && prop.const === undefined) missing.push(`${p}.${key}`);
      walk(prop, `${p}.${key}`);
    }
    for (const k of ['anyOf', 'oneOf', 'allOf']) (s[k] ?? []).forEach((x: any, i: number) => walk(x, `${p}.${k}[${i}]`));
    if (s.items) walk(s.items, `${p}[]`);
    for (const v of Object.values<any>(s.patternProperties ?? {})) walk(v, `${p}{}`);
  };
  walk(schema as Record<string, any>, path);
  return missing;
}

describe('job schemas', () => {
  it('describe every property', () => {
    const all = { TrainingSpecSchema, TrainingResultSchema, SweepSpecSchema, SweepResultSchema, AnalysisRequestSchema, CheckSchema, ExpectSchema };
    expect(Object.entries(all).flatMap(([name, s]) => undocumented(s, name))).toEqual([]);
  });

  it('accept the documented shapes and reject unknown fields', () => {
    expect(Value.Check(TrainingSpecSchema, {
      network: { depth: 10, width: 32, activation: 'sigmoid' }, data: { source: 'iris', batchSize: 32 }, steps: 200,
      optimizer: { name: 'adam', learningRate: 0.01, beta1: 0.9 }, recordEvery: 10, expect: { learns: true, minAccuracy: 0.9 },
    })).toBe(true);
    expect(Value.Check(TrainingSpecSchema, { network: { depth: 2 }, data: { source: 'iris', batches: 2 }, steps: 10 })).toBe(false);
    expect(Value.Check(TrainingSpecSchema, { network: { depth: 2 }, data: { source: 'iris' }, steps: 0 })).toBe(false);
    expect(Value.Check(SweepSpecSchema, {
      base: { network: { depth: 8 }, data: { source: 'iris' } },
      grid: { 'network.activation': ['relu', 'tanh'], 'network.init.weights.name': ['glorot_uniform', 'he_normal'] },
      expect: { verdict: ['healthy', 'zero_by_design'] },
    })).toBe(true);
    expect(Value.Check(SweepSpecSchema, { base: { network: { depth: 8 }, data: { source: 'iris' } }, grid: {} })).toBe(false);
    expect(Value.Check(SweepSpecSchema, { base: { network: { depth: 8 }, data: { source: 'iris' } }, grid: { seed: [] } })).toBe(false);
    expect(Value.Check(AnalysisRequestSchema, { network: { depth: 3 }, data: { source: 'iris' }, expect: { verdict: 'healthy', minFirstToLastRatio: 0.01 } })).toBe(true);
    expect(Value.Check(ExpectSchema, { verdict: 'fine' })).toBe(false);
    expect(Value.Check(ExpectSchema, { maxFinalLos: 0.5 })).toBe(false);
  });
});
