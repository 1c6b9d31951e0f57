// A layer graph's measurement and diagnosis (after admission); runs/analysis-run.ts turns it into the output.
import type { NormalizedSpec } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import { initGraphParameters } from '../model/graph-params.js';
import { runGraphAnalysis } from '../measure/graph-analysis.js';
import { withGraphDiagnosis } from '../diagnosis/graph-diagnosis.js';
import type { AnalysisResult, AnalysisTimings } from '../measure/measure.js';
import type { DiagnosedResult } from '../diagnosis/with-diagnosis.js';
import { throughTimeOf, withThroughTime } from './through-time-run.js';

/** A layer graph measured on its batches, with the diagnosis to attach (the dense path's counterpart is in analysis-run.ts). */
export async function measureGraph(spec: NormalizedSpec, dataset: Dataset): Promise<{ result: AnalysisResult; timings: AnalysisTimings; diagnose: () => DiagnosedResult }> {
  const params = initGraphParameters(spec.network.graph!, spec.seed);
  const { result, timings, input, steps } = await runGraphAnalysis(spec, dataset, params);
  const throughTime = await throughTimeOf(spec, dataset, params, steps);
  return { result, timings, diagnose: () => withThroughTime(withGraphDiagnosis(spec, input, result), throughTime) };
}
