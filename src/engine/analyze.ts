// The engine's front door for one analysis: validate, check the cost, run, and return JSON-safe output.
import type { AnalysisSpecInput } from '../schemas/spec.js';
import { normalizeSpec, specToInput, type SpecLimits, DEFAULT_LIMITS } from './spec.js';
import { estimateCost, checkCost, type CostEstimate } from './cost.js';
import { runAnalysis, type AnalysisTimings } from './analysis.js';
import { cachedParameters } from './param-cache.js';
import type { ShardPartial } from './shards.js';
import { withDiagnosis } from './diagnose.js';
import { prepareWhatIf, runWhatIf } from './whatif.js';
import { encodeNonFinite, nonFiniteSummary } from './json-safe.js';
import type { AnalysisResultBody } from '../schemas/result.js';

export interface AnalysisOutput {
  /** The normalised spec in request form. */
  spec: AnalysisSpecInput;
  /** The analysis result with non-finite numbers encoded as strings. */
  result: AnalysisResultBody;
  cost: CostEstimate & { whatIfRuns?: number; totalFlops?: number };
  timings: AnalysisTimings & { diagnosisMs: number; whatIfMs?: number };
}

/**
 * `partials`: the shards of every batch measured by other workers (engine/sharded.ts); the analysis then
 * combines them instead of running the network, and the rest (diagnosis, what-if, encoding) is the same.
 */
export function analyze(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS, options: { partials?: ShardPartial[][] } = {}): AnalysisOutput {
  const { spec, dataset } = normalizeSpec(input, limits);
  const cost = estimateCost(spec);
  checkCost(cost, limits);
  // With whatIf the summed cost of every extra run is checked here, before anything runs.
  const plan = spec.whatIf ? prepareWhatIf(spec, limits) : null;
  // Cached per thread: the workers of a split analysis and the one that combines it draw the same weights.
  const params = cachedParameters(spec.network, spec.seed);
  const { result, timings, input: moments } = runAnalysis(spec, dataset, options.partials ? { partials: options.partials } : {}, params);
  const t0 = performance.now();
  const diagnosed: Record<string, unknown> = { ...withDiagnosis(spec, moments, params, result) };
  const diagnosisMs = performance.now() - t0;
  if (plan) diagnosed.whatIf = runWhatIf(spec, plan, result);
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
