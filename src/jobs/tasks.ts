// Compute tasks: what a worker (or the in-process runner) is asked to run, and the one function that runs them.
import {
  analyze, analyzeNormalized, type AnalysisOutput, analyzeShard, type ShardPartial, CancelledError,
  isNormalizedSpec, type NormalizedSpec, type SpecLimits, type FlopBudget, runTraining, type TrainingOutput,
  theoryReport, type TheoryReport, evaluateChecks,
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
  | { kind: 'theory'; query: TheoryQuery };

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
  }
}
