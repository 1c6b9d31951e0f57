// Adds the diagnosis to an analysis result: mean-field theory, zero-by-design structure, verdict, reasons and flags.
import type { NormalizedSpec } from '../spec/normalize.js';
import type { AnalysisResult, AnalysisSummary, InputMoments, LayerStats } from '../measure/measure.js';
import type { NetworkParameters } from '../model/network.js';
import { structuralZeros } from './zero-by-design.js';
import { networkTheory, type NetworkTheory } from '../theory/network-theory.js';
import { diagnose, type Diagnosis, type FlowVerdict, type LayerFlag, type Verdict } from './verdict.js';
import type { Thresholds } from '../spec/thresholds.js';

export interface DiagnosedSummary extends AnalysisSummary {
  verdict: Verdict;
  reasons: string[];
  flowVerdict: FlowVerdict | null;
  onsetLayer: number | null;
  zeroByDesign: Diagnosis['zeroByDesign'];
  thresholds: Thresholds;
}

export interface DiagnosedResult extends Omit<AnalysisResult, 'summary' | 'layers'> {
  layers: (LayerStats & { flags: LayerFlag[] })[];
  summary: DiagnosedSummary;
  theory: NetworkTheory;
}

/**
 * Diagnoses `result` (measured on `params`, with `input` the moments of the batches runAnalysis
 * returned) and returns it with summary.verdict, reasons, layer flags and theory.
 */
export function withDiagnosis(spec: NormalizedSpec, input: InputMoments, params: NetworkParameters, result: AnalysisResult): DiagnosedResult {
  const theory = networkTheory(spec, input, params, result);
  return attachDiagnosis(spec, result, diagnose(result, structuralZeros(spec), theory, spec.thresholds), theory);
}

/**
 * `result` with a diagnosis attached: flags per layer, verdict and reasons (extra reasons appended, as a layer
 * graph's) in the summary, and the theory. One assembly for dense networks and layer graphs.
 */
export function attachDiagnosis(spec: NormalizedSpec, result: AnalysisResult, d: Diagnosis, theory: NetworkTheory, extraReasons: string[] = []): DiagnosedResult {
  return {
    ...result,
    layers: result.layers.map((s, l) => ({ ...s, flags: d.flags[l]! })),
    summary: {
      ...result.summary,
      verdict: d.verdict,
      reasons: [...d.reasons, ...extraReasons],
      flowVerdict: d.flowVerdict,
      onsetLayer: d.onsetLayer,
      zeroByDesign: d.zeroByDesign,
      thresholds: { ...spec.thresholds },
    },
    theory,
  };
}
