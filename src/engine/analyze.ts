// The engine's front door for one analysis: validate, check the cost, run, and return JSON-safe output.
import type { AnalysisSpecInput } from '../schemas/spec.js';
import { normalizeSpec, specToInput, type SpecLimits, DEFAULT_LIMITS } from './spec.js';
import { estimateCost, checkCost, type CostEstimate } from './cost.js';
import { runAnalysis, type AnalysisTimings } from './analysis.js';
import { encodeNonFinite } from './json-safe.js';
import type { AnalysisResultBody } from '../schemas/result.js';

export interface AnalysisOutput {
  /** The normalised spec in request form. */
  spec: AnalysisSpecInput;
  /** The analysis result with non-finite numbers encoded as strings. */
  result: AnalysisResultBody;
  cost: CostEstimate;
  timings: AnalysisTimings;
}

export function analyze(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS): AnalysisOutput {
  const { spec, dataset } = normalizeSpec(input, limits);
  const cost = estimateCost(spec);
  checkCost(cost, limits);
  const { result, timings } = runAnalysis(spec, dataset);
  const encoded = encodeNonFinite(result);
  const body = encoded.value as Record<string, unknown>;
  body.nonFinite = { count: encoded.paths.length, paths: encoded.paths.slice(0, 100) };
  body.data = { source: dataset.source, examples: dataset.n, inputUnits: dataset.inputSize, task: dataset.task, description: dataset.description };
  return { spec: specToInput(spec), result: body as AnalysisResultBody, cost, timings };
}
