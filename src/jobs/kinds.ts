// The three kinds of job: how each is validated before queueing and how it runs on the Runner.
import {
  normalizeSpecShape, admitNormalized, validateExpect, expandSweep, prepareTraining, SpecError,
  type NormalizedSpec, type SpecLimits, type FlopBudget,
} from '../engine/index.js';
import type { ExpectInput } from '../schemas/checks.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { SweepSpecInput } from '../schemas/sweep.js';
import type { Config } from '../config.js';
import type { JobKind } from './store.js';
import type { JobKindHandler, JobOutput } from './manager.js';
import { runSweep } from './sweep-runner.js';
import type { ModelStore } from './model-store.js';
import { isModelAnalysis, admitModelAnalysis, prepareModelAnalysis, runModelAnalysis } from './model-analysis.js';
import { prepareModelTraining, runModelTraining } from './model-training.js';
import { expandModelSweep, isModelSweep, runModelSweep } from './model-sweep.js';

/**
 * Validates and normalises an analysis once and checks its cost against each budget in turn (what-if runs
 * included): a synchronous one holds its request open, so it must fit the tighter GRADLENS_MAX_ANALYSIS_FLOPS
 * first, then, like every queued analysis, GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS. SpecError (400) for a bad spec,
 * LimitError (422, naming the variable) for one over a budget. The normalised spec goes to the worker as it is.
 */
export function admitAnalysisJob(input: AnalysisSpecInput, limits: SpecLimits, synchronous: boolean): NormalizedSpec {
  // From the data's shape: a generated set is not drawn here, a bundled one not loaded (the worker does it once).
  const spec = normalizeSpecShape(input, limits);
  const budgets: FlopBudget[] = synchronous ? ['analysis', 'asyncAnalysis'] : ['asyncAnalysis'];
  for (const budget of budgets) admitNormalized(spec, limits, budget);
  return spec;
}

/** models: the uploaded models analyses may name (`"model": {"id"}`); without it such analyses are refused. */
export function jobHandlers(config: Config, models?: ModelStore): Record<JobKind, JobKindHandler> {
  const { limits } = config;
  return {
    analysis: {
      async prepare(spec, expect, { synchronous = false }) {
        if (isModelAnalysis(spec)) {
          const work = await prepareModelAnalysis(spec, models, limits);
          admitModelAnalysis(work, limits, synchronous);
          validateExpect(expect as ExpectInput | undefined, 'analysis');
          return work;
        }
        if ((spec as { network?: unknown }).network === undefined) {
          throw new SpecError('network', 'body must have property network (a network spec) or model (an uploaded model: {"id": …})');
        }
        const normalized = admitAnalysisJob(spec as AnalysisSpecInput, limits, synchronous);
        validateExpect(expect as ExpectInput | undefined, 'analysis');
        return normalized;
      },
      // Checked against expect and encoded once, on the worker: the store and the reply keep that text.
      run(ctx) {
        if (isModelAnalysis(ctx.job.spec)) return runModelAnalysis(ctx, models, limits);
        const { job, runner, signal, prepared } = ctx;
        const expect = job.expect === null || job.expect === undefined ? {} : { expect: job.expect as ExpectInput };
        // The spec normalised by prepare() goes to the worker as it is (after a restart: the stored spec).
        return runner.analyzeEncoded((prepared as NormalizedSpec | undefined) ?? (job.spec as AnalysisSpecInput), { signal, ...expect });
      },
    },
    training: {
      // The training engine reads expect from its input and adds checks to its own result.
      async prepare(spec, expect) {
        if (isModelAnalysis(spec)) {
          const work = await prepareModelTraining(spec, models, limits);
          // The losses are on the batch the model trains on: there is no evaluation accuracy to gate.
          validateExpect(expect as ExpectInput | undefined, 'training', { hasAccuracy: false });
          return work;
        }
        if ((spec as { network?: unknown }).network === undefined) {
          throw new SpecError('network', 'body must have property network (a network spec) or model (an uploaded model: {"id": …})');
        }
        // The request schema has the model fields too; a network's training has none of them.
        for (const field of ['mode', 'thresholds'] as const) {
          if ((spec as Record<string, unknown>)[field] !== undefined) throw new SpecError(field, `${field} applies to trainings of an uploaded model (model), not of a network`);
        }
        prepareTraining(withExpect<TrainingSpecInput>(spec, expect), limits);
      },
      async run(ctx) {
        if (isModelAnalysis(ctx.job.spec)) return runModelTraining(ctx, models, limits);
        const { job, runner, signal, record } = ctx;
        return (await runner.train(withExpect<TrainingSpecInput>(job.spec, job.expect), { signal, onRecord: record })) as unknown as JobOutput;
      },
    },
    // The sweep engine validates expect with the grid and adds the checks to its table itself.
    sweep: {
      async prepare(spec, expect) {
        const input = withExpect<SweepSpecInput>(spec, expect);
        if (isModelSweep(spec)) await expandModelSweep(input, models, limits, config.jobs.maxSweepCells);
        else expandSweep(input, limits, config.jobs.maxSweepCells);
      },
      run(ctx) {
        const input = withExpect<SweepSpecInput>(ctx.job.spec, ctx.job.expect);
        return isModelSweep(ctx.job.spec) ? runModelSweep(ctx, input, models, limits, config.jobs.maxSweepCells) : runSweep(ctx, input, limits, config.jobs.maxSweepCells);
      },
    },
  };
}

/** Jobs store expect apart from the spec; the training and sweep engines read it from their input. */
function withExpect<T>(spec: unknown, expect: unknown): T {
  return (expect === null || expect === undefined ? spec : { ...(spec as object), expect }) as T;
}
