// CI expectations: validation per kind of work, and evaluation against analysis, training and sweep results.
import { describe, it, expect } from 'vitest';
import { evaluateChecks, validateExpect, analysisFacts, type AnalysisResultLike, type TrainingResultLike } from '../../src/engine/diagnosis/checks.js';
import { SpecError } from '../../src/engine/common/errors.js';

function analysisResult(over: Partial<AnalysisResultLike['summary']> = {}, extra: Partial<AnalysisResultLike> = {}): AnalysisResultLike {
  return {
    loss: 1.2,
    layers: [
      { deadFraction: 0.1, saturatedFraction: null },
      { deadFraction: 0.25, saturatedFraction: null },
      { deadFraction: null, saturatedFraction: null },
    ],
    summary: {
      firstToLastRatio: 0.5,
      backpropFirstToLastRatio: 0.8,
      weightGradLogSlope: { slope: -0.1 },
      backpropLogSlope: null,
      verdict: 'healthy',
      ...over,
    },
    nonFinite: { count: 0 },
    ...extra,
  };
}

const training: TrainingResultLike = {
  learns: true,
  status: 'learning',
  finalLoss: 0.2,
  lossReduction: 0.85,
  finalAccuracy: 0.96,
  records: [{ firstToLastRatio: 0.1, backpropFirstToLastRatio: 0.3 }, { firstToLastRatio: 1e-9, backpropFirstToLastRatio: 1e-9 }],
  nonFinite: { count: 0 },
};

describe('evaluateChecks', () => {
  it('reports one check per expectation, in schema order, with expected and actual', () => {
    const report = evaluateChecks({ minFirstToLastRatio: 0.01, verdict: 'healthy', maxDeadFraction: 0.2 }, 'analysis', analysisResult());
    expect(report.checks).toEqual([
      { name: 'verdict', expected: 'healthy', actual: 'healthy', passed: true },
      { name: 'minFirstToLastRatio', expected: 0.01, actual: 0.5, passed: true },
      { name: 'maxDeadFraction', expected: 0.2, actual: 0.25, passed: false },
    ]);
    expect(report.passed).toBe(false);
  });

  it('accepts a list of verdicts and fails when the analysis gives none', () => {
    expect(evaluateChecks({ verdict: ['vanishing', 'exploding'] }, 'analysis', analysisResult({ verdict: 'vanishing' })).passed).toBe(true);
    const none = evaluateChecks({ verdict: 'healthy' }, 'analysis', analysisResult({ verdict: undefined }));
    expect(none.checks[0]).toMatchObject({ actual: null, passed: false });
  });

  it('treats non-finite tokens as numbers: NaN fails every bound, Infinity meets a minimum only', () => {
    const nan = evaluateChecks({ minFirstToLastRatio: 0, maxFirstToLastRatio: 10 }, 'analysis', analysisResult({ firstToLastRatio: 'NaN' }));
    expect(nan.checks.map((c) => c.passed)).toEqual([false, false]);
    expect(nan.checks[0]!.actual).toBe('NaN');
    const inf = evaluateChecks({ minFirstToLastRatio: 0, maxFirstToLastRatio: 10 }, 'analysis', analysisResult({ firstToLastRatio: 'Infinity' }));
    expect(inf.checks.map((c) => c.passed)).toEqual([true, false]);
    const facts = analysisFacts(analysisResult({}, { layers: [{ deadFraction: 'NaN', saturatedFraction: 0.1 }] }));
    expect(facts.maxDeadFraction).toBe('NaN');
    expect(evaluateChecks({ maxNonFinite: 0 }, 'analysis', analysisResult({}, { nonFinite: { count: 3 } })).passed).toBe(false);
  });

  it('evaluates trainings, reading gradient ratios at step 0', () => {
    const report = evaluateChecks(
      { learns: true, status: ['learning'], maxFinalLoss: 0.5, minLossReduction: 0.5, minAccuracy: 0.95, minFirstToLastRatio: 0.01 },
      'training', training,
    );
    expect(report.checks.map((c) => [c.name, c.actual, c.passed])).toEqual([
      ['minFirstToLastRatio', 0.1, true],
      ['learns', true, true],
      ['status', 'learning', true],
      ['maxFinalLoss', 0.2, true],
      ['minLossReduction', 0.85, true],
      ['minAccuracy', 0.96, true],
    ]);
    expect(report.passed).toBe(true);
    expect(evaluateChecks({ learns: false }, 'training', training).passed).toBe(false);
  });

  it('applies analysis expectations to every sweep cell and passes overall only when all cells pass', () => {
    const row = (index: number, firstToLastRatio: number, verdict: string) => ({
      index, ...analysisFacts(analysisResult({ firstToLastRatio, verdict })),
    });
    const report = evaluateChecks({ verdict: 'healthy', minFirstToLastRatio: 0.01 }, 'sweep', {
      rows: [row(0, 0.5, 'healthy'), row(1, 1e-6, 'vanishing'), row(2, 0.2, 'healthy')],
    });
    expect(report.passed).toBe(false);
    expect(report.checks).toEqual([
      { name: 'verdict', expected: 'healthy', actual: '2 of 3 cells pass (failing cells: 1)', passed: false },
      { name: 'minFirstToLastRatio', expected: 0.01, actual: '2 of 3 cells pass (failing cells: 1)', passed: false },
    ]);
    expect(report.cells!.map((c) => c.passed)).toEqual([true, false, true]);
    expect(report.cells![1]!.checks[1]).toEqual({ name: 'minFirstToLastRatio', expected: 0.01, actual: 1e-6, passed: false });
  });
});

describe('validateExpect', () => {
  it('rejects expectations that cannot apply to the kind of work, naming the field', () => {
    expect(() => validateExpect({ maxFinalLoss: 0.5 }, 'analysis')).toThrow(SpecError);
    try {
      validateExpect({ verdict: 'healthy', learns: true }, 'training');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SpecError);
      expect((err as SpecError).field).toBe('expect.verdict');
      expect((err as SpecError).message).toMatch(/analyses and sweeps, not to trainings/);
    }
    expect(() => validateExpect({ minAccuracy: 0.9 }, 'training', { hasAccuracy: false })).toThrow(/no accuracy/);
    expect(() => validateExpect({ minAccuracy: 0.9, learns: true, maxNonFinite: 0 }, 'training', { hasAccuracy: true })).not.toThrow();
    expect(() => validateExpect({ verdict: 'healthy', maxLoss: 2 }, 'sweep')).not.toThrow();
    expect(() => validateExpect(undefined, 'sweep')).not.toThrow();
  });
});
