// The three kinds of job: how each is validated before queueing and how it runs on the Runner.
import {
  admitAnalysis, type SpecLimits, evaluateChecks, validateExpect, expandSweep, prepareTraining,
} from '../engine/index.js';
import type { ExpectInput } from '../schemas/checks.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { SweepSpecInput } from '../schemas/sweep.js';
import type { Config } from '../config.js';
import type { JobKind } from './store.js';
import type { JobKindHandler, JobOutput } from './manager.js';
import { runSweep } from './sweep-runner.js';

/**
 * A synchronous analysis holds its request open while it runs: before it is queued, it must also fit the
 * tighter GRADLENS_MAX_ANALYSIS_FLOPS (LimitError, 422, naming the variable; SpecError for a bad spec).
 */
export function admitSynchronousAnalysis(spec: AnalysisSpecInput, limits: SpecLimits): void {
  admitAnalysis(spec, limits, 'analysis');
}

export function jobHandlers(config: Config): Record<JobKind, JobKindHandler> {
  const { limits } = config;
  return {
    analysis: {
      // Queued analyses get the async budget; a synchronous request also passes admitSynchronousAnalysis.
      prepare(spec, expect) {
        admitAnalysis(spec as AnalysisSpecInput, limits, 'asyncAnalysis');
        validateExpect(expect as ExpectInput | undefined, 'analysis');
      },
      async run({ job, runner, signal }) {
        return (await runner.analyze(job.spec as AnalysisSpecInput, { signal })) as unknown as JobOutput;
      },
      evaluate(expect, output) {
        Object.assign(output.result as object, evaluateChecks(expect as ExpectInput, 'analysis', output.result));
      },
    },
    training: {
      // The training engine reads expect from its input and adds checks to its own result.
      prepare(spec, expect) {
        prepareTraining(withExpect<TrainingSpecInput>(spec, expect), limits);
      },
      async run({ job, runner, signal, record }) {
        return (await runner.train(withExpect<TrainingSpecInput>(job.spec, job.expect), { signal, onRecord: record })) as unknown as JobOutput;
      },
    },
    // The sweep engine validates expect with the grid and adds the checks to its table itself.
    sweep: {
      prepare(spec, expect) {
        expandSweep(withExpect<SweepSpecInput>(spec, expect), limits, config.jobs.maxSweepCells);
      },
      run: (ctx) => runSweep(ctx, withExpect<SweepSpecInput>(ctx.job.spec, ctx.job.expect), limits, config.jobs.maxSweepCells),
    },
  };
}

/** Jobs store expect apart from the spec; the training and sweep engines read it from their input. */
function withExpect<T>(spec: unknown, expect: unknown): T {
  return (expect === null || expect === undefined ? spec : { ...(spec as object), expect }) as T;
}
