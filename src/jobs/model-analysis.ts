// Analyses of uploaded models (`"model": {"id"}` in place of `network`): the spec checked and normalised on
// the HTTP thread against the stored model's description (400 naming the field, 422 over a limit), and run
// with the model's file read from the store when the job starts, so a job recovered after a restart finds
// its model by the id its stored spec keeps.
import { FLOP_BUDGETS, LimitError, SpecError, checkMnistInput, normalizeThresholds, type FlopBudget, type ImportedAnalysisInput, type SpecLimits } from '../engine/index.js';
import type { ExpectInput } from '../schemas/checks.js';
import type { ModelAnalysisSpecInput } from '../schemas/model-analysis.js';
import { MODEL_DATA_SOURCES, MODEL_LOSSES, MODEL_MODES, type ModelDataSource } from '../schemas/vocabulary.js';
import type { ModelStore, StoredModelSummary } from './model-store.js';
import type { JobContext } from './manager.js';
import type { EncodedOutput } from './encoded.js';

/** What prepare() hands run(): the normalised spec (echoed into the output) and the engine's input. */
export interface ModelAnalysisWork {
  spec: ModelAnalysisSpecInput;
  input: ImportedAnalysisInput;
  /** A lower bound of the work: 6 × parameters × examples (a forward and a backward pass touch every weight once per example). */
  cost: { parameters: number; examples: number; flops: number };
}

const DEFAULT_SEED = 42;
const DEFAULT_BATCH_SIZE = 64;
/** Fields of an analysis spec that describe a network gradlens builds: refused next to model. */
const NETWORK_ONLY = ['network', 'include', 'whatIf'] as const;
/** data fields that shape generated or bundled sets for built networks: a model's input shape decides instead. */
const SHAPE_FIELDS = ['samples', 'classes', 'features', 'height', 'width', 'channels'] as const;

/** Whether an analysis request names an uploaded model. */
export const isModelAnalysis = (spec: unknown): boolean => typeof spec === 'object' && spec !== null && 'model' in spec;

function refuseOthers(spec: Record<string, unknown>): void {
  for (const field of NETWORK_ONLY) {
    if (spec[field] !== undefined) throw new SpecError(field, `${field} does not go with model: an analysis is of an uploaded model or of a network spec, not both`);
  }
}

/** The data as the engine takes it, checked against the limits and the model's declared input. */
function dataOf(spec: ModelAnalysisSpecInput, limits: SpecLimits, seed: number): { data: ModelAnalysisSpecInput['data']; input: ImportedAnalysisInput['data'] } {
  const d = spec.data;
  const source = d.source as ModelDataSource;
  if (!MODEL_DATA_SOURCES.includes(source)) {
    throw new SpecError('data.source', `data.source "${d.source}" is not one of ${MODEL_DATA_SOURCES.join(', ')} (with model: inline tensors in the model's layout, mnist digits, or gaussian_images of the model's input shape)`);
  }
  for (const field of SHAPE_FIELDS) {
    if (d[field] !== undefined) throw new SpecError(`data.${field}`, `data.${field} does not apply with model: the model's declared input shape decides the examples' shape`);
  }
  if (d.batches !== undefined && d.batches !== 1) throw new SpecError('data.batches', 'data.batches must be 1 with model: an uploaded model is analysed on one batch');
  if (d.normalize !== undefined && source !== 'mnist') throw new SpecError('data.normalize', 'data.normalize applies to mnist only with model');
  if (source === 'inline') {
    if (!d.x || d.y === undefined) throw new SpecError(d.x ? 'data.y' : 'data.x', 'inline data needs x (the inputs in the model\'s layout, NCHW for a PyTorch export) and y (class indices, distributions or mse targets)');
    if (d.x.length > limits.maxInlineRows) throw new LimitError('maxInlineRows', d.x.length, limits.maxInlineRows, `data.x has ${d.x.length} examples; the most is ${limits.maxInlineRows} (GRADLENS_MAX_INLINE_ROWS)`, 'GRADLENS_MAX_INLINE_ROWS');
    return { data: { source, x: d.x, y: d.y }, input: { source: 'inline', inputs: d.x, targets: d.y } };
  }
  if (d.x !== undefined || d.y !== undefined) throw new SpecError(d.x !== undefined ? 'data.x' : 'data.y', `data.x and data.y belong to inline data, not ${source}`);
  const batchSize = d.batchSize ?? Math.min(DEFAULT_BATCH_SIZE, limits.maxBatchSize);
  if (batchSize > limits.maxBatchSize) throw new LimitError('maxBatchSize', batchSize, limits.maxBatchSize, `data.batchSize ${batchSize} is over ${limits.maxBatchSize} (GRADLENS_MAX_BATCH_SIZE)`, 'GRADLENS_MAX_BATCH_SIZE');
  if (source === 'mnist') {
    const normalize = d.normalize ?? 'standardize';
    return { data: { source, batchSize, batches: 1, normalize }, input: { source: 'mnist', batchSize, seed, normalize } };
  }
  const noise = d.noise ?? 1;
  return { data: { source, batchSize, batches: 1, noise }, input: { source: 'generated', batchSize, seed, std: noise } };
}

/** The shape nested arrays have, read along their first entries (the engine checks that they are rectangular). */
function shapeOf(value: unknown): number[] {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) shape.push(v.length);
  return shape;
}

/** Inline examples must have the model's declared per-example shape (its own layout: NCHW for a PyTorch export). */
function checkInlineShape(x: unknown[], declared: readonly (number | null)[] | null): void {
  if (!declared) return;
  const got = shapeOf(x).slice(1);
  const want = declared.slice(1);
  const fits = got.length === want.length && want.every((d, i) => d === null || d === got[i]);
  if (!fits) {
    throw new SpecError('data.x', `data.x holds examples of shape [${got.join(', ')}]; the model takes [${want.map((d) => d ?? '?').join(', ')}] per example (its input, batch first: [${declared.map((d) => d ?? '?').join(', ')}]; NCHW for a PyTorch export)`);
  }
}

/**
 * Checks and normalises a model analysis: SpecError (400, naming the field: model.id for a model that is not
 * stored) or LimitError (422). Every default is filled in, so the normalised spec can be submitted again.
 */
export async function prepareModelAnalysis(raw: unknown, models: ModelStore | undefined, limits: SpecLimits): Promise<ModelAnalysisWork> {
  return checkModelAnalysis(raw, await storedModelOf(raw, models), limits);
}

/** The stored model a request names (400 naming model.id when there is none), marked used now. */
export async function storedModelOf(raw: unknown, models: ModelStore | undefined): Promise<StoredModelSummary> {
  const spec = raw as ModelAnalysisSpecInput & Record<string, unknown>;
  refuseOthers(spec);
  if (!models) throw new SpecError('model', 'this process has no model store: analyses of uploaded models run where the models are stored');
  const stored = await models.get(spec.model.id);
  if (!stored) throw new SpecError('model.id', `no model ${spec.model.id}: upload it with POST /v1/models (GET /v1/models lists the stored ones)`);
  // An analysis uses the model: retention's age rule counts from its last use.
  await models.touch(stored.id);
  return stored;
}

/** prepareModelAnalysis once the model is looked up (synchronous: a sweep checks every cell against one lookup). */
export function checkModelAnalysis(raw: unknown, stored: StoredModelSummary, limits: SpecLimits): ModelAnalysisWork {
  const spec = raw as ModelAnalysisSpecInput & Record<string, unknown>;
  refuseOthers(spec);
  const loss = spec.loss ?? 'categorical_crossentropy';
  if (!MODEL_LOSSES.includes(loss)) throw new SpecError('loss', `loss "${loss}" is not one of ${MODEL_LOSSES.join(', ')} with model`);
  const mode = spec.mode ?? 'train';
  if (!MODEL_MODES.includes(mode)) throw new SpecError('mode', `mode must be one of ${MODEL_MODES.join(', ')}`);
  const declared = stored.description.inputs[0]?.shape;
  if (spec.data.source !== 'inline' && (!declared || declared.slice(1).some((v) => v === null))) {
    throw new SpecError('data.source', `${spec.data.source} needs the model to declare every input dimension but the batch (it declares ${JSON.stringify(declared)}); send inline data`);
  }
  if (spec.data.source === 'mnist') checkMnistInput(declared ?? null);
  if (spec.data.source === 'inline' && spec.data.x) checkInlineShape(spec.data.x, declared ?? null);
  const seed = spec.seed ?? DEFAULT_SEED;
  const thresholds = normalizeThresholds(spec.thresholds);
  const { data, input } = dataOf(spec, limits, seed);
  const parameters = stored.description.parameterCount;
  const examples = spec.data.source === 'inline' ? (spec.data.x as unknown[] | undefined)?.length ?? 0 : data.batchSize!;
  return {
    spec: { seed, model: { id: spec.model.id }, data, loss, mode, thresholds },
    input: { data: input, loss, mode, thresholds },
    cost: { parameters, examples, flops: 6 * parameters * examples },
  };
}

/**
 * A model analysis against the analysis budgets, as admitAnalysisJob checks a network's (kinds.ts): a synchronous
 * one against GRADLENS_MAX_ANALYSIS_FLOPS first, every one against GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS. The bound is
 * low for convolutions (a kernel is used at every position), so it refuses what is surely too large, nothing more.
 */
export function admitModelAnalysis(work: ModelAnalysisWork, limits: SpecLimits, synchronous: boolean): void {
  const budgets: FlopBudget[] = synchronous ? ['analysis', 'asyncAnalysis'] : ['asyncAnalysis'];
  for (const budget of budgets) {
    const { limit, variable } = FLOP_BUDGETS[budget];
    const { parameters, examples, flops } = work.cost;
    if (flops > limits[limit]) {
      throw new LimitError(limit, flops, limits[limit],
        `analysing the model's ${parameters} parameters on ${examples} examples takes at least ${flops.toExponential(3)} FLOPs (6 × parameters × examples) but the limit is ${limits[limit].toExponential(3)} (${variable}): send fewer examples${synchronous && budget === 'analysis' ? ', or ask for the analysis asynchronously (Prefer: respond-async)' : ''}`,
        variable);
    }
  }
}

/** Runs a model analysis on the runner, with the file as stored now (a job after a restart prepares again). */
export async function runModelAnalysis(ctx: JobContext, models: ModelStore | undefined, limits: SpecLimits): Promise<EncodedOutput> {
  const { job, runner, signal } = ctx;
  const work = (ctx.prepared as ModelAnalysisWork | undefined) ?? await prepareModelAnalysis(job.spec, models, limits);
  const file = await models?.file(work.spec.model.id);
  if (!file) throw new SpecError('model.id', `model ${work.spec.model.id} was deleted before the analysis ran`);
  const expect = job.expect === null || job.expect === undefined ? {} : { expect: job.expect as ExpectInput };
  return runner.analyzeModel({ kind: 'model-analysis', file, input: work.input, spec: work.spec, ...expect }, { signal });
}
