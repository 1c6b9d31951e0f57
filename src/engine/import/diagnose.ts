// The verdict of an imported model's measurement, by the same rules as the networks gradlens builds
// (diagnosis/verdict.ts): the first parameterised node's backward signal against the last one's, the fitted
// per-layer factor and the absolute backstop. A layer's weight gradient is the gradient of all its
// parameters together (a BatchNormalization node has scale and bias, a Conv weight and bias), since an
// imported node has no single "weight". Nothing is zero by design here: gradlens did not initialise the model.
import { diagnose, type LayerFlag, type Verdict } from '../diagnosis/verdict.js';
import type { AnalysisResult } from '../measure/measure.js';
import type { StructuralZeros } from '../diagnosis/zero-by-design.js';
import type { Thresholds } from '../spec/thresholds.js';
import { fitLogSlope, type LogSlopeFit } from '../common/stats.js';
import type { ImportedMeasurement } from './measure.js';

export interface ImportedSummary {
  readonly verdict: Verdict;
  readonly reasons: string[];
  readonly flowVerdict: Exclude<Verdict, 'zero_by_design'> | null;
  readonly onsetLayer: number | null;
  /** Always null: gradlens did not initialise the model, so nothing is zero by its construction. */
  readonly zeroByDesign: null;
  /** Gradient norm of the first layer's parameters / the last layer's. */
  readonly firstToLastRatio: number;
  /** backpropNorm of the first layer / the last layer's. */
  readonly backpropFirstToLastRatio: number;
  readonly backpropLogSlope: LogSlopeFit | null;
  readonly weightGradLogSlope: LogSlopeFit | null;
  readonly thresholds: Thresholds;
}

export interface ImportedDiagnosis {
  readonly summary: ImportedSummary;
  readonly flags: LayerFlag[][];
}

/** The rows the verdict reads, one per parameterised node: its parameters' gradients taken together. */
function rowsOf(m: ImportedMeasurement) {
  return m.layers.map((l) => {
    const sumSq = l.parameters.reduce((s, p) => s + p.gradNorm * p.gradNorm, 0);
    const size = l.parameters.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
    return {
      index: l.index, backpropNorm: l.backpropNorm, weightGradNorm: Math.sqrt(sumSq), weightGradRms: Math.sqrt(sumSq / Math.max(1, size)),
      biasGradNorm: null, deadFraction: null, saturatedFraction: null, auxParameters: [],
    };
  });
}

export function diagnoseImported(m: ImportedMeasurement, thresholds: Thresholds): ImportedDiagnosis {
  const rows = rowsOf(m);
  const zero: StructuralZeros = {
    layers: rows.map((_, index) => ({ index, weightGradZero: false, backpropZero: false, cause: null, preActivationZero: false })),
    aux: [], any: false,
  };
  // diagnose reads only the fields rowsOf fills (backprop and weight-gradient norms, the dead and saturated
  // fractions, which imported nodes do not have, and auxiliary parameters for zero-by-design gates).
  const d = diagnose({ layers: rows } as unknown as AnalysisResult, zero, null, thresholds);
  const first = rows[0];
  const last = rows[rows.length - 1];
  const ratio = (a: number | undefined, b: number | undefined): number => (a === undefined || b === undefined ? Number.NaN : a / b);
  return {
    flags: d.flags,
    summary: {
      verdict: d.verdict, reasons: d.reasons, flowVerdict: d.flowVerdict, onsetLayer: d.onsetLayer, zeroByDesign: null,
      firstToLastRatio: d.metrics?.weightGradRatio ?? ratio(first?.weightGradNorm, last?.weightGradNorm),
      backpropFirstToLastRatio: d.metrics?.backpropRatio ?? ratio(first?.backpropNorm, last?.backpropNorm),
      backpropLogSlope: d.metrics?.fit ?? null,
      weightGradLogSlope: fitLogSlope(rows.map((r) => r.weightGradNorm)),
      thresholds,
    },
  };
}
