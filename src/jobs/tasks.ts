// Compute tasks: what a worker (or the in-process runner) is asked to run, and the one function that runs them.
import {
  analyze, type AnalysisOutput, analyzeShard, type ShardPartial, CancelledError, type SpecLimits,
  type FlopBudget, runTraining, type TrainingOutput, theoryReport, type TheoryReport,
} from '../engine/index.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { TheoryQuery } from '../schemas/diagnosis.js';

export type ComputeTask =
  /** partials: every batch's shards measured by 'analysis-shard' tasks, to combine instead of computing. */
  | { kind: 'analysis'; input: AnalysisSpecInput; partials?: ShardPartial[][] }
  /** Rows of shard `index` of `count` of every batch of an analysis split across workers. */
  | { kind: 'analysis-shard'; input: AnalysisSpecInput; index: number; count: number }
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

export async function executeTask(task: ComputeTask, limits: SpecLimits, hooks: TaskHooks = {}): Promise<AnalysisOutput | TrainingOutput | ShardPartial[] | TheoryReport> {
  if (hooks.isCancelled?.()) throw new CancelledError();
  switch (task.kind) {
    case 'analysis':
      // One analysis is a single synchronous engine call: it cannot look at the cancel flag midway, so
      // a pool stops a running one by terminating its worker (see pool.ts).
      return analyze(task.input, limits, { budget: WORKER_ANALYSIS_BUDGET, ...(task.partials ? { partials: task.partials } : {}) });
    case 'analysis-shard':
      return analyzeShard(task.input, limits, task.index, task.count, WORKER_ANALYSIS_BUDGET);
    case 'training':
      return runTraining(task.input, limits, hooks);
    case 'theory':
      return theoryReport(task.query);
  }
}
