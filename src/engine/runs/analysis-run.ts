// The engine's front door for one analysis: validate, check the cost, run, and return JSON-safe output.
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import { datasetOf, normalizeSpecShape, specToInput, type NormalizedSpec, type SpecLimits, DEFAULT_LIMITS } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import { estimateCost, checkCost, type CostEstimate, type FlopBudget } from '../spec/cost.js';
import { runAnalysis, type AnalysisResult, type AnalysisTimings } from '../measure/measure.js';
import { cachedParameters } from '../model/param-cache.js';
import type { ShardPartial } from '../measure/combine-shards.js';
import { withDiagnosis, type DiagnosedResult } from '../diagnosis/with-diagnosis.js';
import { prepareWhatIf, runWhatIf, type PreparedWhatIf } from '../diagnosis/what-if.js';
import { encodeNonFinite, nonFiniteSummary } from '../common/json-safe.js';
import type { AnalysisResultBody } from '../../schemas/result.js';
import { measureGraph } from './graph-run.js';

export interface AnalysisOutput {
  /** The normalised spec in request form. */
  spec: AnalysisSpecInput;
  /** The analysis result with non-finite numbers encoded as strings. */
  result: AnalysisResultBody;
  cost: CostEstimate & { whatIfRuns?: number; totalFlops?: number };
  timings: AnalysisTimings & { diagnosisMs: number; whatIfMs?: number };
}

export interface AnalyzeOptions {
  /** Every batch's shards measured by other workers (engine/runs/shard-run.ts): combined instead of running the network. */
  partials?: ShardPartial[][];
  /** The FLOP budget the analysis must fit, what-if runs included (default: the synchronous one). */
  budget?: FlopBudget;
}

/** An admitted analysis: its normalised spec, its cost, and with whatIf the prepared runs whose cost counts too. */
export interface AdmittedAnalysis {
  spec: NormalizedSpec;
  cost: CostEstimate;
  plan: PreparedWhatIf | null;
  totalFlops: number;
}

/**
 * Validates and costs an analysis against a budget without running it (400/422 before queueing), from the
 * shape of its data: nothing is generated or loaded (spec/normalize.ts normalizeSpecShape).
 */
export function admitAnalysis(input: AnalysisSpecInput, limits: SpecLimits, budget: FlopBudget): AdmittedAnalysis {
  return admitNormalized(normalizeSpecShape(input, limits), limits, budget);
}

/** The cost check of a spec normalised already (the HTTP thread's, handed to a worker): no second normalisation. */
export function admitNormalized(spec: NormalizedSpec, limits: SpecLimits, budget: FlopBudget): AdmittedAnalysis {
  const cost = estimateCost(spec);
  checkCost(cost, limits, { budget });
  // With whatIf the summed cost of every extra run is checked here, before anything runs.
  const plan = spec.whatIf ? prepareWhatIf(spec, limits, budget) : null;
  return { spec, cost, plan, totalFlops: cost.flops * (plan?.multiplier ?? 1) };
}

/**
 * The analysis itself; with `partials` it combines shards instead of running the network, and the rest
 * (diagnosis, what-if, encoding) is the same.
 */
export async function analyze(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS, options: AnalyzeOptions = {}): Promise<AnalysisOutput> {
  return analyzeNormalized(normalizeSpecShape(input, limits), limits, options);
}

/** analyze() of a spec normalised already: its dataset is drawn (or loaded) here, once, where it runs. */
export async function analyzeNormalized(normalized: NormalizedSpec, limits: SpecLimits = DEFAULT_LIMITS, options: AnalyzeOptions = {}): Promise<AnalysisOutput> {
  const { spec, cost, plan } = admitNormalized(normalized, limits, options.budget ?? 'analysis');
  const dataset = datasetOf(spec);
  const { result, timings, diagnose } = spec.network.graph ? await measureGraph(spec, dataset) : await measureDense(spec, dataset, options);
  const t0 = performance.now();
  const diagnosed: Record<string, unknown> = { ...diagnose() };
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

/** A dense network measured on its batches (or combined from its shards), with the diagnosis to attach. */
async function measureDense(spec: NormalizedSpec, dataset: Dataset, options: AnalyzeOptions): Promise<{ result: AnalysisResult; timings: AnalysisTimings; diagnose: () => DiagnosedResult }> {
  // Cached per thread: the workers of a split analysis and the one that combines it draw the same weights.
  const params = cachedParameters(spec.network, spec.seed);
  const { result, timings, input } = await runAnalysis(spec, dataset, options.partials ? { partials: options.partials } : {}, params);
  return { result, timings, diagnose: () => withDiagnosis(spec, input, params, result) };
}
