// Trainings of uploaded models (`"model": {"id"}` in place of `network` on POST /v1/trainings): checked,
// normalised and costed on the HTTP thread against the stored model's description (400 naming the field, 422
// over a limit, before anything is queued), and run on a worker with the model's file read from the store
// when the job starts. The data, loss and mode checks are those of model analyses (model-analysis.ts).
import { LimitError, SpecError, normalizeOptimizer, normalizeThresholds, type ImportedTrainingInput, type SpecLimits } from '../engine/index.js';
import type { ExpectInput } from '../schemas/checks.js';
import { MAX_TRAINING_RECORDS } from '../schemas/training.js';
import type { ModelTrainingSpecInput } from '../schemas/model-training.js';
import type { ModelStore } from './model-store.js';
import type { JobContext } from './manager.js';
import type { EncodedOutput } from './encoded.js';
import { checkModelAnalysis, storedModelOf } from './model-analysis.js';

/** Records when recordEvery is not given: about this many (as for built networks). */
const DEFAULT_RECORDS = 50;
/** Fields of a training spec that describe a network gradlens builds: refused next to model. */
const NETWORK_ONLY = ['network', 'include'] as const;

/** What prepare() hands run(): the normalised spec (echoed into the output), the engine's input and the cost. */
export interface ModelTrainingWork {
  spec: ModelTrainingSpecInput;
  input: ImportedTrainingInput;
  cost: { parameters: number; examples: number; steps: number; records: number; flops: number };
}

/** Records taken for these steps: 0, k, 2k, … below steps, and steps (as recordSteps counts them). */
const recordCount = (steps: number, every: number): number => Math.ceil(steps / every) + 1;

/** steps and recordEvery, checked and defaulted; 400 naming the field. */
function schedule(steps: unknown, recordEveryInput: unknown): { steps: number; recordEvery: number; records: number } {
  if (!Number.isInteger(steps) || (steps as number) < 1) throw new SpecError('steps', 'steps must be an integer ≥ 1');
  const n = steps as number;
  const recordEvery = (recordEveryInput as number | undefined) ?? Math.max(1, Math.ceil(n / DEFAULT_RECORDS));
  if (!Number.isInteger(recordEvery) || recordEvery < 1) throw new SpecError('recordEvery', 'recordEvery must be an integer ≥ 1');
  const records = recordCount(n, recordEvery);
  if (records > MAX_TRAINING_RECORDS) {
    throw new SpecError('recordEvery', `recordEvery ${recordEvery} with ${n} steps gives ${records} records but at most ${MAX_TRAINING_RECORDS} are kept: use recordEvery ≥ ${Math.ceil(n / (MAX_TRAINING_RECORDS - 1))}`);
  }
  return { steps: n, recordEvery, records };
}

/**
 * Checks, normalises and costs a model training: SpecError (400, naming the field: model.id for a model that
 * is not stored, data.x for inputs of the wrong shape) or LimitError (422, GRADLENS_MAX_TRAINING_FLOPS).
 */
export async function prepareModelTraining(raw: unknown, models: ModelStore | undefined, limits: SpecLimits): Promise<ModelTrainingWork> {
  const { steps: stepsInput, recordEvery: recordEveryInput, optimizer: optimizerInput, ...rest } = raw as ModelTrainingSpecInput & Record<string, unknown>;
  for (const field of NETWORK_ONLY) {
    if (rest[field] !== undefined) throw new SpecError(field, `${field} does not go with model: a training is of an uploaded model or of a network spec, not both`);
  }
  const { steps, recordEvery, records } = schedule(stepsInput, recordEveryInput);
  const optimizer = normalizeOptimizer(optimizerInput);
  // The model, data, loss and mode as an analysis of the model checks them (the same batch is trained on).
  const stored = await storedModelOf(rest, models);
  const analysis = checkModelAnalysis(rest, stored, limits);
  const { batches: _batches, ...data } = analysis.spec.data;
  // The analysis's own cost: the same parameters and examples, per pass.
  const { parameters, examples } = analysis.cost;
  const flops = 6 * parameters * examples * (steps + records);
  if (flops > limits.maxTrainingFlops) {
    throw new LimitError('maxTrainingFlops', flops, limits.maxTrainingFlops,
      `training the model's ${parameters} parameters on ${examples} examples for ${steps} steps (+ ${records} records) takes at least ${flops.toExponential(3)} FLOPs (6 × parameters × examples × passes) but the limit is ${limits.maxTrainingFlops.toExponential(3)} (GRADLENS_MAX_TRAINING_FLOPS): ask for fewer steps, a smaller batch or a larger recordEvery`,
      'GRADLENS_MAX_TRAINING_FLOPS');
  }
  const thresholds = normalizeThresholds(analysis.spec.thresholds);
  const { loss, mode } = analysis.input as Required<Pick<typeof analysis.input, 'loss' | 'mode'>>;
  return {
    spec: { ...analysis.spec, data, steps, optimizer, recordEvery, thresholds } as ModelTrainingSpecInput,
    input: { data: analysis.input.data, loss, mode, steps, recordEvery, optimizer, thresholds },
    cost: { parameters, examples, steps, records, flops },
  };
}

/** Runs a model training on the runner, with the file as stored now (a job after a restart prepares again). */
export async function runModelTraining(ctx: JobContext, models: ModelStore | undefined, limits: SpecLimits): Promise<EncodedOutput> {
  const { job, runner, signal, record } = ctx;
  const work = (ctx.prepared as ModelTrainingWork | undefined) ?? await prepareModelTraining(job.spec, models, limits);
  const file = await models?.file(work.spec.model.id);
  if (!file) throw new SpecError('model.id', `model ${work.spec.model.id} was deleted before the training ran`);
  const expect = job.expect === null || job.expect === undefined ? {} : { expect: job.expect as ExpectInput };
  return runner.analyzeModel({ kind: 'model-training', file, input: work.input, spec: work.spec, cost: work.cost, ...expect }, { signal, onRecord: record });
}
