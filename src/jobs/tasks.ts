// Compute tasks: what a worker (or the in-process runner) is asked to run, and the one function that runs them.
import {
  analyze, analyzeNormalized, type AnalysisOutput, analyzeShard, type ShardPartial, CancelledError,
  isNormalizedSpec, type NormalizedSpec, type SpecLimits, type FlopBudget, runTraining, type TrainingOutput,
  theoryReport, type TheoryReport, evaluateChecks, importStoredModel, analyzeImported, type ImportedAnalysisInput,
  trainImported, type ImportedTrainingInput,
} from '../engine/index.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { TheoryQuery } from '../schemas/diagnosis.js';
import type { ExpectInput } from '../schemas/checks.js';
import { encodeOutput, type EncodedOutput } from './encoded.js';

/**
 * An analysis as a request gave it, or normalised already by the HTTP thread (jobs/kinds.ts): then the worker
 * uses it as it is, and every shard of a split analysis reuses it.
 */
export type AnalysisWork = AnalysisSpecInput | NormalizedSpec;

export type ComputeTask =
  /** partials: every batch's shards measured by 'analysis-shard' tasks, to combine instead of computing. */
  /**
   * encode: answer with the output as JSON text (jobs/encoded.ts), its result checked against expect first:
   * the one encoding of a job's result, done here on the worker.
   */
  | { kind: 'analysis'; input: AnalysisWork; partials?: ShardPartial[][]; encode?: boolean; expect?: ExpectInput }
  /** Rows of shard `index` of `count` of every batch of an analysis split across workers. */
  | { kind: 'analysis-shard'; input: AnalysisWork; index: number; count: number }
  | { kind: 'training'; input: TrainingSpecInput }
  /** GET /v1/theory: its quadrature takes up to seconds at large depth, so it runs off the HTTP thread too. */
  | { kind: 'theory'; query: TheoryQuery }
  | ModelAnalysisTask
  | ModelTrainingTask;

/**
 * An analysis of an uploaded model: the file itself travels with the task (the worker has no store), the
 * normalised spec is echoed into the output, the result checked against expect and encoded where it ran.
 */
export interface ModelAnalysisTask {
  kind: 'model-analysis';
  file: Uint8Array;
  input: ImportedAnalysisInput;
  spec: unknown;
  expect?: ExpectInput;
}

/** A training of an uploaded model: as a model analysis, with its cost (checked on the HTTP thread) echoed. */
export interface ModelTrainingTask {
  kind: 'model-training';
  file: Uint8Array;
  input: ImportedTrainingInput;
  spec: unknown;
  cost: unknown;
  expect?: ExpectInput;
}

/** What Runner.analyzeModel takes: an uploaded model's analysis or training, run where the file is imported. */
export type ModelTask = ModelAnalysisTask | ModelTrainingTask;

export interface TaskHooks {
  /** Partial results (training records) with the task's progress 0..1. */
  onRecord?(record: unknown, progress: number): void;
  /** Polled by the engine between steps; true stops the task with CancelledError. */
  isCancelled?(): boolean;
}

/**
 * Every analysis reaching a worker was admitted before it was queued, a synchronous one against the tighter
 * GRADLENS_MAX_ANALYSIS_FLOPS (jobs/kinds.ts), so the check here is the ceiling of any one analysis.
 */
const WORKER_ANALYSIS_BUDGET: FlopBudget = 'asyncAnalysis';

export async function executeTask(task: ComputeTask, limits: SpecLimits, hooks: TaskHooks = {}): Promise<AnalysisOutput | EncodedOutput | TrainingOutput | ShardPartial[] | TheoryReport> {
  if (hooks.isCancelled?.()) throw new CancelledError();
  switch (task.kind) {
    case 'analysis': {
      // One analysis is a single engine call that never looks at the cancel flag midway, so
      // a pool stops a running one by terminating its worker (see pool.ts).
      const options = { budget: WORKER_ANALYSIS_BUDGET, ...(task.partials ? { partials: task.partials } : {}) };
      const output = await (isNormalizedSpec(task.input) ? analyzeNormalized(task.input, limits, options) : analyze(task.input, limits, options));
      if (!task.encode) return output;
      if (task.expect !== undefined) Object.assign(output.result, evaluateChecks(task.expect, 'analysis', output.result));
      return encodeOutput(output);
    }
    case 'analysis-shard':
      return analyzeShard(task.input, limits, task.index, task.count, WORKER_ANALYSIS_BUDGET);
    case 'training':
      return runTraining(task.input, limits, hooks);
    case 'theory':
      return theoryReport(task.query);
    case 'model-analysis':
      return analyzeModel(task, limits);
    case 'model-training':
      return trainModel(task, limits, hooks);
  }
}

/** The model imported from its file, its parameters trained, then freed; the output as a job stores it. */
async function trainModel(task: ModelTrainingTask, limits: SpecLimits, hooks: TaskHooks): Promise<EncodedOutput> {
  const started = performance.now();
  const model = await importStoredModel(task.file);
  try {
    const built = performance.now();
    const { result, nonFinite } = await trainImported(model, task.input, { maxBatchSize: limits.maxBatchSize }, hooks);
    const body = { ...(result as object), nonFinite };
    if (task.expect !== undefined) Object.assign(body, evaluateChecks(task.expect, 'training', body as unknown as Parameters<typeof evaluateChecks>[2]));
    const done = performance.now();
    const timings = { buildMs: built - started, computeMs: done - built, totalMs: done - started };
    return encodeOutput({ spec: task.spec, result: body, cost: task.cost, timings });
  } finally {
    model.dispose();
  }
}

/** The model imported from its file, analysed on one batch, then freed; the output as a job stores it. */
async function analyzeModel(task: ModelAnalysisTask, limits: SpecLimits): Promise<EncodedOutput> {
  const started = performance.now();
  // An ONNX file, or a tfjs LayersModel bundled with its weights (engine/import/layers-bundle.ts).
  const model = await importStoredModel(task.file);
  try {
    const built = performance.now();
    const { result, nonFinite } = await analyzeImported(model, task.input, { maxBatchSize: limits.maxBatchSize });
    const body = { ...(result as { batchSize: number }), nonFinite };
    if (task.expect !== undefined) Object.assign(body, evaluateChecks(task.expect, 'analysis', body as unknown as Parameters<typeof evaluateChecks>[2]));
    const done = performance.now();
    const parameters = model.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    const timings = { buildMs: built - started, computeMs: done - built, totalMs: done - started };
    return encodeOutput({ spec: task.spec, result: body, cost: { parameters, examples: body.batchSize }, timings });
  } finally {
    model.dispose();
  }
}
