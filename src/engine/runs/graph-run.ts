// A layer graph's analysis end to end (after admission): parameters, measurement, diagnosis, JSON-safe output.
import type { NormalizedSpec } from '../spec/normalize.js';
import { specToInput } from '../spec/normalize.js';
import type { CostEstimate } from '../spec/cost.js';
import type { Dataset } from '../data/datasets.js';
import { initGraphParameters } from '../model/graph-params.js';
import { runGraphAnalysis } from '../measure/graph-analysis.js';
import { withGraphDiagnosis } from '../diagnosis/graph-diagnosis.js';
import { encodeNonFinite, nonFiniteSummary } from '../common/json-safe.js';
import type { AnalysisResultBody } from '../../schemas/result.js';
import { runWhatIf, type PreparedWhatIf } from '../diagnosis/what-if.js';

/** The same output as analyze() (runs/analysis-run.ts, which calls this for a spec with a graph). */
export async function analyzeGraph(spec: NormalizedSpec, dataset: Dataset, cost: CostEstimate, plan: PreparedWhatIf | null) {
  const params = initGraphParameters(spec.network.graph!, spec.seed);
  const { result, timings, input } = await runGraphAnalysis(spec, dataset, params);
  const t0 = performance.now();
  const diagnosed: Record<string, unknown> = { ...withGraphDiagnosis(spec, input, result) };
  const diagnosisMs = performance.now() - t0;
  if (plan) diagnosed.whatIf = await runWhatIf(spec, plan, result);
  const whatIfMs = performance.now() - t0 - diagnosisMs;
  const encoded = encodeNonFinite(diagnosed);
  const body = encoded.value as Record<string, unknown>;
  body.nonFinite = nonFiniteSummary(encoded.paths);
  body.data = { source: dataset.source, examples: dataset.n, inputUnits: dataset.inputSize, task: dataset.task, description: dataset.description };
  return {
    spec: specToInput(spec),
    result: body as AnalysisResultBody,
    cost: plan ? { ...cost, whatIfRuns: plan.runs.length, totalFlops: cost.flops * plan.multiplier } : cost,
    timings: { ...timings, diagnosisMs, ...(plan ? { whatIfMs } : {}), totalMs: timings.totalMs + diagnosisMs + (plan ? whatIfMs : 0) },
  };
}
