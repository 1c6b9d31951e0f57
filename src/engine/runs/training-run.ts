// Training runs: validate and cost a training spec up front, then train with recorded per-layer gradient statistics.
import * as tf from '@tensorflow/tfjs';
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import { MAX_TRAINING_INCLUDED_VALUES, MAX_TRAINING_RECORDS, MAX_TRAINING_THROUGH_TIME_VALUES, type TrainingInclude, type TrainingSpecInput } from '../../schemas/training.js';
import type { ExpectInput } from '../../schemas/checks.js';
import { normalizeSpec, specToInput, DEFAULT_LIMITS, type NormalizedSpec, type SpecLimits } from '../spec/normalize.js';
import { estimateCost, checkCost, type CostEstimate } from '../spec/cost.js';
import { targetsFor, DEFAULT_SATURATION_THRESHOLD, type ParametersJson } from '../measure/measure.js';
import { auxParameterCount, lossOf } from '../model/network.js';
import { sampleBatches, type Batch, type Dataset } from '../data/datasets.js';
import { deriveSeed } from '../common/random.js';
import { encodeNonFinite, nonFiniteSummary, type NonFiniteSummary } from '../common/json-safe.js';
import { CancelledError, LimitError, SpecError } from '../common/errors.js';
import { createOptimizer, normalizeOptimizer, type Optimizer, type OptimizerConfig } from '../model/optimizers.js';
import { evaluateChecks, validateExpect, type Check, type JsonNumber } from '../diagnosis/checks.js';
import { denseTrainable, type Trainable, type TrainingLayer, type TrainingLayerRecord, type TrainingThroughTimeRecord } from './trainable.js';
import { graphTrainable } from './graph-trainable.js';
import { isRecurrentNode } from '../spec/recurrent-types.js';

export type { TrainingLayer, TrainingLayerRecord, TrainingThroughTimeRecord } from './trainable.js';

/** Records when recordEvery is not given: about this many. */
export const DEFAULT_RECORDS = 50;
/** initialLoss/finalLoss are measured on the whole dataset up to this size, a seeded sample beyond. */
export const EVALUATION_EXAMPLES = 2048;
/** Rows per forward pass during evaluation: bounds the memory of the activations. */
const EVALUATION_CHUNK = 256;
/** learning needs the evaluation loss to fall by at least this fraction of the initial loss … */
export const MIN_LOSS_REDUCTION = 0.1;
/** … and to end at or below this fraction of the best constant prediction's loss. */
export const BASELINE_FRACTION = 0.9;
/** A finite loss that ends above this multiple of the initial loss counts as diverged (losses ≥ 0 only). */
export const DIVERGENCE_FACTOR = 1.5;
/** Without a record due, yield to the event loop at least this often so cancel messages get through. */
const YIELD_EVERY_MS = 50;

/** One recorded step, JSON-safe (non-finite numbers are "NaN"/"Infinity"/"-Infinity"). */
export interface TrainingRecord {
  step: number;
  loss: JsonNumber;
  accuracy: JsonNumber | null;
  firstToLastRatio: JsonNumber;
  backpropFirstToLastRatio: JsonNumber;
  layers: TrainingLayerRecord[];
  /** Layer graphs with recurrent layers: one entry per recurrent layer. */
  throughTime?: TrainingThroughTimeRecord[];
}

export type TrainingStatus = 'learning' | 'stalled' | 'diverged';

export interface TrainingResult {
  steps: number;
  stepsCompleted: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  layers: TrainingLayer[];
  records: TrainingRecord[];
  evaluation: { examples: number; description: string };
  initialLoss: JsonNumber;
  finalLoss: JsonNumber;
  lossReduction: JsonNumber;
  baselineLoss: JsonNumber | null;
  initialAccuracy: JsonNumber | null;
  finalAccuracy: JsonNumber | null;
  chanceAccuracy: JsonNumber | null;
  learns: boolean;
  status: TrainingStatus;
  reasons: string[];
  nonFinite: NonFiniteSummary;
  data: { source: string; examples: number; inputUnits: number; task: string; description: string };
  checks?: Check[];
  passed?: boolean;
  /** With include: ["parameters"]: before the first update and after the last one. */
  parameters?: ParametersJson;
  finalParameters?: ParametersJson;
  /** With include: ["batches"]. */
  batches?: TrainingBatches;
}

/** Per step the dataset rows of its minibatch, and every row used, once (see TrainingBatchesSchema). */
export interface TrainingBatches {
  indices: number[][];
  examples: { index: number[]; x: number[][]; y: number[][] };
}

export interface TrainingCost extends CostEstimate {
  steps: number;
  records: number;
  evaluationExamples: number;
  /** With include: the numbers it adds to the result, at most MAX_TRAINING_INCLUDED_VALUES. */
  includedValues?: number;
}

/** The training spec in request form with every default filled in (valid to send again). */
export type NormalizedTrainingInput = TrainingSpecInput & {
  seed: number;
  optimizer: OptimizerConfig;
  recordEvery: number;
};

export interface PreparedTraining {
  /** The network/data part, normalised as for an analysis (data.batches is 1 and unused). */
  spec: NormalizedSpec;
  dataset: Dataset;
  steps: number;
  recordEvery: number;
  optimizer: OptimizerConfig;
  expect: ExpectInput | undefined;
  include: TrainingInclude[];
  /** Echo of the request with every default filled in. */
  input: NormalizedTrainingInput;
  cost: TrainingCost;
}

export interface TrainingHooks {
  /** Called with each record (JSON-safe) as it is taken; progress is stepsDone / steps, 0..1. */
  onRecord?(record: TrainingRecord, progress: number): void;
  /** Polled every step; true stops the run with a CancelledError. */
  isCancelled?(): boolean;
}

export interface TrainingTimings {
  buildMs: number;
  computeMs: number;
  totalMs: number;
}

export interface TrainingOutput {
  spec: NormalizedTrainingInput;
  result: TrainingResult;
  cost: TrainingCost;
  timings: TrainingTimings;
}

/** Steps at which records are taken: 0, k, 2k, … below steps, and steps itself (after the last update). */
export function recordSteps(steps: number, recordEvery: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < steps; s += recordEvery) out.push(s);
  out.push(steps);
  return out;
}

/**
 * Validates, normalises and costs a training spec without any tensor work, so the HTTP layer can
 * answer 400 (SpecError) or 422 (LimitError) before queueing. Loads the dataset (as normalizeSpec does).
 */
export function prepareTraining(input: TrainingSpecInput, limits: SpecLimits = DEFAULT_LIMITS): PreparedTraining {
  const { steps, optimizer: optimizerInput, recordEvery: recordEveryInput, expect, include: includeInput, ...rest } = input;
  if (!Number.isInteger(steps) || steps < 1) throw new SpecError('steps', 'steps must be an integer ≥ 1');
  const analysisInput: AnalysisSpecInput = { ...rest, data: { ...rest.data } };
  if ('batches' in analysisInput.data) throw new SpecError('data.batches', 'data.batches does not apply to trainings: every step draws one fresh batch');
  const { spec, dataset } = normalizeSpec(analysisInput, limits);

  const optimizer = normalizeOptimizer(optimizerInput);
  const recordEvery = recordEveryInput ?? Math.max(1, Math.ceil(steps / DEFAULT_RECORDS));
  if (!Number.isInteger(recordEvery) || recordEvery < 1) throw new SpecError('recordEvery', 'recordEvery must be an integer ≥ 1');
  const records = recordSteps(steps, recordEvery).length;
  if (records > MAX_TRAINING_RECORDS) {
    throw new SpecError('recordEvery', `recordEvery ${recordEvery} with ${steps} steps gives ${records} records but at most ${MAX_TRAINING_RECORDS} are kept: use recordEvery ≥ ${Math.ceil(steps / (MAX_TRAINING_RECORDS - 1))}`);
  }
  validateExpect(expect, 'training', { hasAccuracy: hasAccuracy(spec, dataset) });
  const timeSteps = recurrentSteps(spec);
  checkThroughTimeValues(steps, recordEvery, records, timeSteps);

  const base = estimateCost(spec);
  const evaluationExamples = Math.min(dataset.n, EVALUATION_EXAMPLES);
  // Each step is one forward + backward pass; each record measures its batch once more (twice with
  // recurrent layers: the through-time probes are a pass of their own); the two evaluations are forward
  // passes only, about a third of a forward + backward pass per example.
  const evaluationFlops = (2 * evaluationExamples * base.flopsPerStep) / (3 * spec.data.batchSize);
  const passesPerRecord = timeSteps > 0 ? 2 : 1;
  const cost: TrainingCost = {
    parameters: base.parameters,
    flopsPerStep: base.flopsPerStep,
    flops: base.flopsPerStep * (steps + passesPerRecord * records) + evaluationFlops,
    steps,
    records,
    evaluationExamples,
  };
  checkCost(cost, limits, { budget: 'training', what: 'training' });
  const include = [...new Set(includeInput ?? [])];
  if (include.length > 0) {
    cost.includedValues = includedValues(spec, dataset, steps, include);
    if (cost.includedValues > MAX_TRAINING_INCLUDED_VALUES) {
      throw new LimitError('maxTrainingIncludedValues', cost.includedValues, MAX_TRAINING_INCLUDED_VALUES,
        `include ${JSON.stringify(include)} would add up to ${cost.includedValues} numbers to the result but the limit (MAX_TRAINING_INCLUDED_VALUES) is ${MAX_TRAINING_INCLUDED_VALUES}: ask for fewer steps, a smaller batch or network, or only one of them`);
    }
  }

  // Only the fields a training spec has: the analysis echo also carries include, thresholds, whatIf.
  const echo = specToInput(spec);
  const { batches: _batches, ...echoData } = echo.data;
  return {
    spec,
    dataset,
    steps,
    recordEvery,
    optimizer,
    expect,
    include,
    input: {
      seed: spec.seed, network: echo.network, data: echoData, ...(echo.loss ? { loss: echo.loss } : {}),
      steps, optimizer, recordEvery, ...(expect ? { expect } : {}), ...(include.length > 0 ? { include } : {}),
    },
    cost,
  };
}

/** records × Σ T through-time norms must fit MAX_TRAINING_THROUGH_TIME_VALUES (400 naming recordEvery and the limit). */
function checkThroughTimeValues(steps: number, recordEvery: number, records: number, timeSteps: number): void {
  if (records * timeSteps <= MAX_TRAINING_THROUGH_TIME_VALUES) return;
  const fit = Math.floor(MAX_TRAINING_THROUGH_TIME_VALUES / timeSteps);
  // Step 0 and the last step are always recorded: with room for fewer than two records no recordEvery helps.
  const advice = fit >= 2 ? `use recordEvery ≥ ${Math.ceil(steps / (fit - 1))}` : 'use fewer recurrent time steps';
  throw new SpecError('recordEvery', `recordEvery ${recordEvery} with ${steps} steps gives ${records} records of ${timeSteps} through-time norms each (the recurrent layers' time steps), ${records * timeSteps} in all, but at most ${MAX_TRAINING_THROUGH_TIME_VALUES} (MAX_TRAINING_THROUGH_TIME_VALUES) are kept: ${advice}`);
}

/** Σ T over a layer graph's recurrent layers: the through-time norms one record carries (0 without any). */
function recurrentSteps(spec: NormalizedSpec): number {
  const rows = spec.network.graph?.rows ?? [];
  return rows.reduce((sum, r) => sum + (isRecurrentNode(r.node) ? r.node.steps : 0), 0);
}

/**
 * Upper bound of the numbers include adds: parameters twice (initial and final); per step one index per
 * example, plus every distinct row (inputs + targets + its index), at most the whole dataset.
 */
function includedValues(spec: NormalizedSpec, dataset: Dataset, steps: number, include: TrainingInclude[]): number {
  let values = 0;
  if (include.includes('parameters')) {
    // A graph's count has gamma and beta in it already; the shorthand's auxiliary parameters are counted apart.
    const { parameters } = estimateCost(spec);
    values += 2 * (spec.network.graph ? parameters : parameters + auxParameterCount(spec.network));
  }
  if (include.includes('batches')) {
    const batchSize = spec.data.batchSize;
    const used = (steps + 1) * batchSize;
    const rows = Math.min(used, dataset.n);
    values += used + rows * (dataset.inputSize + targetUnitsOf(spec, dataset) + 1);
  }
  return values;
}

/** Width of the targets the loss sees (one-hot classes, a 0/1 column, or the regression outputs). */
function targetUnitsOf(spec: NormalizedSpec, dataset: Dataset): number {
  return spec.loss === 'output' ? dataset.outputSize : spec.network.outputUnits;
}

function hasAccuracy(spec: NormalizedSpec, dataset: Dataset): boolean {
  return dataset.labels !== null && spec.loss !== 'output';
}

/** Trains the spec'd network and returns its records and outcome; throws CancelledError when cancelled. */
export async function runTraining(input: TrainingSpecInput, limits: SpecLimits = DEFAULT_LIMITS, hooks: TrainingHooks = {}): Promise<TrainingOutput> {
  return trainPrepared(prepareTraining(input, limits), hooks);
}

/** Everything trainable as the Trainable's one flat list (autodiff's and the optimizer's order). */
type Params = tf.Tensor[];

const disposeParameters = (p: Params): void => p.forEach((t) => t.dispose());

/** Collects include: ["batches"]: each step's dataset rows, and every row once with the targets the loss saw. */
class BatchLog {
  readonly indices: number[][] = [];
  private readonly rows = new Map<number, { x: number[]; y: number[] }>();

  constructor(private readonly model: Trainable) {}

  add(batch: Batch): void {
    const indices = Array.from(batch.indices!);
    this.indices.push(indices);
    const inputs = this.model.inputSize;
    const targets = targetsFor(this.model.dataset, this.model.spec.loss, batch);
    indices.forEach((row, b) => {
      if (this.rows.has(row)) return;
      this.rows.set(row, {
        x: Array.from(batch.x.subarray(b * inputs, (b + 1) * inputs)),
        y: Array.from(targets.values.subarray(b * targets.width, (b + 1) * targets.width)),
      });
    });
  }

  toJson(): TrainingBatches {
    const index = [...this.rows.keys()].sort((a, b) => a - b);
    return { indices: this.indices, examples: { index, x: index.map((i) => this.rows.get(i)!.x), y: index.map((i) => this.rows.get(i)!.y) } };
  }
}

/** Draws the minibatch of every step: the data is walked in seeded epochs, one sampleBatches call per epoch. */
class BatchStream {
  private chunk = -1;
  private batches: Batch[] = [];
  private readonly perChunk: number;

  constructor(private readonly ds: Dataset, private readonly batchSize: number, private readonly seed: number) {
    this.perChunk = Math.max(1, Math.ceil(ds.n / batchSize));
  }

  get(step: number): Batch {
    const chunk = Math.floor(step / this.perChunk);
    if (chunk !== this.chunk) {
      this.chunk = chunk;
      this.batches = sampleBatches(this.ds, this.batchSize, this.perChunk, deriveSeed(this.seed, `training:epoch:${chunk}`));
    }
    return this.batches[step % this.perChunk]!;
  }
}

/** The minibatch as tensors: x shaped [batch, ...input] (NHWC images for a graph that reads them). */
function tensorsOf(model: Trainable, batch: Batch): { x: tf.Tensor; y: tf.Tensor2D | null } {
  const x = tf.tensor(batch.x, [batch.size, ...model.inputShape]);
  if (model.spec.loss === 'output') return { x, y: null };
  const t = targetsFor(model.dataset, model.spec.loss, batch);
  return { x, y: tf.tensor2d(t.values, [batch.size, t.width]) };
}

/** Predicted class per row: argmax, or output > 0.5 for a single output unit. */
function correctCount(output: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  const predicted = output.shape[1] === 1
    ? tf.cast(tf.greater(tf.reshape(output, [-1]), 0.5), 'int32')
    : tf.argMax(output, 1);
  return tf.sum(tf.cast(tf.equal(predicted, tf.tensor1d(labels, 'int32')), 'float32'));
}

/** Loss and accuracy of the parameters on a set of examples, in chunks. */
async function evaluate(model: Trainable, params: Params, set: Batch): Promise<{ loss: number; accuracy: number | null }> {
  const withAccuracy = hasAccuracy(model.spec, model.dataset);
  const inputs = model.inputSize;
  const outW = model.dataset.outputSize;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < set.size; start += EVALUATION_CHUNK) {
    const end = Math.min(set.size, start + EVALUATION_CHUNK);
    const part: Batch = {
      x: set.x.subarray(start * inputs, end * inputs),
      y: set.y.subarray(start * outW, end * outW),
      labels: set.labels ? set.labels.subarray(start, end) : null,
      size: end - start,
    };
    const [l, c] = await readAndDispose(tf.tidy(() => {
      const { x, y } = tensorsOf(model, part);
      const { logits, output } = model.forward(params, x);
      const loss = lossOf(model.spec.loss, model.outputActivation, logits, output, y);
      return tf.stack([loss, withAccuracy ? correctCount(output, part.labels!) : tf.scalar(0)]);
    }));
    lossSum += l! * part.size;
    correct += c!;
  }
  return { loss: lossSum / set.size, accuracy: withAccuracy ? correct / set.size : null };
}

/** Loss of the best constant prediction on the set's targets (the level a network that ignores x reaches). */
function baselineLoss(model: Trainable, set: Batch): number | null {
  const { loss } = model.spec;
  if (loss === 'output') return null;
  const { values, width } = targetsFor(model.dataset, loss, set);
  const n = set.size;
  const means = new Float64Array(width);
  for (let i = 0; i < n; i++) for (let c = 0; c < width; c++) means[c] = means[c]! + values[i * width + c]! / n;
  const xlogx = (p: number): number => (p > 0 ? p * Math.log(p) : 0);
  if (loss === 'categorical_crossentropy') {
    // Predicting the class frequencies p gives the entropy −Σ p ln p.
    let h = 0;
    for (let c = 0; c < width; c++) h -= xlogx(means[c]!);
    return h;
  }
  if (loss === 'binary_crossentropy') {
    let h = 0;
    for (let c = 0; c < width; c++) h -= xlogx(means[c]!) + xlogx(1 - means[c]!);
    return h / width;
  }
  let v = 0;
  for (let i = 0; i < n; i++) for (let c = 0; c < width; c++) v += (values[i * width + c]! - means[c]!) ** 2;
  return v / (n * width);
}

function evaluationSet(ds: Dataset, seed: number): { set: Batch; description: string } {
  if (ds.n <= EVALUATION_EXAMPLES) {
    return { set: { x: ds.x, y: ds.y, labels: ds.labels, size: ds.n }, description: `all ${ds.n} examples of the training data` };
  }
  const [set] = sampleBatches(ds, EVALUATION_EXAMPLES, 1, deriveSeed(seed, 'training:evaluation'));
  return { set: set!, description: `a fixed seeded sample of ${EVALUATION_EXAMPLES} of the ${ds.n} training examples` };
}

/** Scaled Frobenius norm: ‖t‖ = max|t|·‖t/max|t|‖ so that tiny updates do not underflow in float32. */
function scaledNorm(t: tf.Tensor): tf.Tensor {
  const m = tf.max(tf.abs(t));
  return tf.mul(m, tf.sqrt(tf.sum(tf.square(tf.divNoNan(t, m)))));
}

/** ‖ΔW‖ / ‖W‖ per row, from the parameter lists before and after an update. */
async function updateRatios(model: Trainable, before: Params, after: Params): Promise<number[]> {
  const slots = model.weightSlots;
  const values = await readAndDispose(tf.tidy(() => tf.stack(slots.flatMap((i) => [scaledNorm(tf.sub(after[i]!, before[i]!)), scaledNorm(before[i]!)]))));
  return slots.map((_, l) => values[2 * l]! / values[2 * l + 1]!);
}

async function batchAccuracy(model: Trainable, params: Params, x: tf.Tensor, labels: Int32Array, step: number): Promise<number> {
  const c = tf.tidy(() => {
    const { output } = model.forward(params, x, step);
    return correctCount(output, labels);
  });
  return (await readAndDispose(c))[0]! / x.shape[0];
}

/** Reads a tensor asynchronously (webgpu cannot read synchronously in Node) and disposes it, even on error. */
async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x));

/** Trains from a prepareTraining result: set up, run every step with its records, assemble the result. */
export async function trainPrepared(prepared: PreparedTraining, hooks: TrainingHooks = {}): Promise<TrainingOutput> {
  const t0 = performance.now();
  const run = startRun(prepared, hooks);
  const t1 = performance.now();
  let outcome: RunOutcome;
  try {
    outcome = await trainSteps(run);
  } finally {
    disposeParameters(run.params);
    run.optimizer.dispose();
  }
  const t2 = performance.now();
  const result = trainingResult(run, outcome);
  const t3 = performance.now();
  return { spec: prepared.input, result, cost: prepared.cost, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: t3 - t0 } };
}

/** One training run while it runs: what it was given, what it trains, and the records taken so far. */
interface TrainingRun {
  prepared: PreparedTraining;
  hooks: TrainingHooks;
  model: Trainable;
  stream: BatchStream;
  evaluation: { set: Batch; description: string };
  toRecord: Set<number>;
  saturationThreshold: number;
  optimizer: Optimizer;
  /** The adopted parameters: replaced after each update that is kept. */
  params: Params;
  initialParameters: ParametersJson | null;
  batchLog: BatchLog | null;
  records: TrainingRecord[];
  /** Where records hold non-finite numbers (encoded as strings). */
  recordPaths: string[];
  lastYield: number;
}

/** How the steps went: evaluations before and after, and where a non-finite loss stopped them. */
interface RunOutcome {
  initial: { loss: number; accuracy: number | null };
  final: { loss: number; accuracy: number | null };
  stoppedAt: { step: number; loss: number } | null;
  stepsCompleted: number;
  finalParameters: ParametersJson | null;
}

/** The network drawn from the spec's seed as tensors, its optimizer, data stream and evaluation set. */
function startRun(prepared: PreparedTraining, hooks: TrainingHooks): TrainingRun {
  const { spec, dataset } = prepared;
  const model = spec.network.graph ? graphTrainable(spec, dataset) : denseTrainable(spec, dataset);
  return {
    prepared,
    hooks,
    model,
    stream: new BatchStream(dataset, spec.data.batchSize, spec.seed),
    evaluation: evaluationSet(dataset, spec.seed),
    toRecord: new Set(recordSteps(prepared.steps, prepared.recordEvery)),
    saturationThreshold: spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD,
    optimizer: createOptimizer(prepared.optimizer),
    params: model.initialList(),
    initialParameters: prepared.include.includes('parameters') ? model.initialParameters() : null,
    batchLog: prepared.include.includes('batches') ? new BatchLog(model) : null,
    records: [],
    recordPaths: [],
    lastYield: performance.now(),
  };
}

/** Evaluates, runs the steps (recording where due), takes the last record, and evaluates again. */
async function trainSteps(run: TrainingRun): Promise<RunOutcome> {
  const { model, prepared: { steps } } = run;
  const initial = await evaluate(model, run.params, run.evaluation.set);
  let stoppedAt: RunOutcome['stoppedAt'] = null;
  let stepsCompleted = 0;
  for (let step = 0; step < steps; step++) {
    if (run.hooks.isCancelled?.()) throw new CancelledError();
    stoppedAt = await withBatch(run, step, (b) => trainStep(run, step, b));
    if (stoppedAt) break;
    stepsCompleted = step + 1;
    if (performance.now() - run.lastYield > YIELD_EVERY_MS) {
      await yieldToEventLoop();
      run.lastYield = performance.now();
    }
  }
  // The record after the last update, on the batch the next step would draw.
  if (!stoppedAt) await withBatch(run, steps, (b) => takeRecord(run, steps, b, null));
  const final = await evaluate(model, run.params, run.evaluation.set);
  const finalParameters = run.initialParameters ? await model.parametersOf(run.params) : null;
  return { initial, final, stoppedAt, stepsCompleted, finalParameters };
}

/** A step's minibatch and its tensors (y is null for the 'output' loss). */
interface StepBatch {
  batch: Batch;
  x: tf.Tensor;
  y: tf.Tensor2D | null;
}

/** `use` on the step's minibatch as tensors (logged for include: ["batches"]), disposed afterwards. */
async function withBatch<T>(run: TrainingRun, step: number, use: (b: StepBatch) => Promise<T>): Promise<T> {
  const batch = run.stream.get(step);
  run.batchLog?.add(batch);
  const { x, y } = tensorsOf(run.model, batch);
  try {
    return await use({ batch, x, y });
  } finally {
    x.dispose();
    y?.dispose();
  }
}

/**
 * One update, adopted unless its loss is not finite; then the step that broke is recorded (before its
 * update) and returned, since further updates would be NaN arithmetic.
 */
async function trainStep(run: TrainingRun, step: number, b: StepBatch): Promise<RunOutcome['stoppedAt']> {
  const { loss, next } = await gradientStep(run, b, step);
  // The updated parameters are not adopted yet: disposed if a record, a cancel or an error comes in between.
  let pending: Params | null = next;
  try {
    if (!Number.isFinite(loss)) {
      await takeRecord(run, step, b, null);
      return { step, loss };
    }
    if (run.toRecord.has(step)) await takeRecord(run, step, b, await updateRatios(run.model, run.params, next));
    disposeParameters(run.params);
    run.params = next;
    pending = null;
    return null;
  } finally {
    if (pending) disposeParameters(pending);
  }
}

/** The minibatch loss and the optimizer's updated parameters (the current ones are left as they are). */
async function gradientStep(run: TrainingRun, { x, y }: StepBatch, step: number): Promise<{ loss: number; next: Params }> {
  const { model, params } = run;
  const out = tf.tidy(() => {
    const f = (...args: tf.Tensor[]): tf.Scalar => {
      const { logits, output } = model.forward(args, x, step);
      return lossOf(model.spec.loss, model.outputActivation, logits, output, y);
    };
    const { value, grads } = tf.valueAndGrads(f)(params);
    return { value, next: run.optimizer.step(params, grads) };
  });
  const next = out.next;
  try {
    return { loss: (await readAndDispose(out.value))[0]!, next };
  } catch (err) {
    disposeParameters(next);
    throw err;
  }
}

/** Measures the step's batch on the current parameters, keeps the record (JSON-safe), reports it, and yields. */
async function takeRecord(run: TrainingRun, step: number, { batch, x, y }: StepBatch, ratios: number[] | null): Promise<void> {
  const { model, params, prepared } = run;
  const { spec } = model;
  const on = { list: params, x, y, saturationThreshold: run.saturationThreshold, step };
  const { loss, readings } = await model.measure(on);
  const throughTime = model.throughTime ? await model.throughTime(on) : null;
  const first = model.firstRow;
  const last = readings.length - 1;
  const raw = {
    step,
    loss,
    accuracy: hasAccuracy(spec, model.dataset) ? await batchAccuracy(model, params, x, batch.labels!, step) : null,
    firstToLastRatio: readings[first]!.gradNorm / readings[last]!.gradNorm,
    backpropFirstToLastRatio: readings[first]!.deltaNorm / readings[last]!.deltaNorm,
    layers: model.records(readings, spec.data.batchSize, ratios),
    ...(throughTime ? { throughTime } : {}),
  };
  const encoded = encodeNonFinite(raw, `records[${run.records.length}]`);
  run.recordPaths.push(...encoded.paths);
  const record = encoded.value as TrainingRecord;
  run.records.push(record);
  run.hooks.onRecord?.(record, prepared.steps > 0 ? step / prepared.steps : 1);
  await yieldToEventLoop();
  run.lastYield = performance.now();
  if (run.hooks.isCancelled?.()) throw new CancelledError();
}

/** The verdict and every number of the result, non-finite ones encoded and listed. */
function trainingResult(run: TrainingRun, o: RunOutcome): TrainingResult {
  const { prepared, model: { spec, dataset }, evaluation, records } = run;
  const lossReduction = (o.initial.loss - o.final.loss) / Math.max(Math.abs(o.initial.loss), 1e-12);
  const baseline = baselineLoss(run.model, evaluation.set);
  const verdict = judge({
    initialLoss: o.initial.loss,
    finalLoss: o.final.loss,
    lossReduction,
    baseline,
    stoppedAt: o.stoppedAt,
    lossBoundedBelow: spec.loss !== 'output',
    firstToLastAtInit: toNumberOrNaN(records[0]?.firstToLastRatio),
  });
  const rest = encodeNonFinite({
    initialLoss: o.initial.loss,
    finalLoss: o.final.loss,
    lossReduction,
    baselineLoss: baseline,
    initialAccuracy: o.initial.accuracy,
    finalAccuracy: o.final.accuracy,
    chanceAccuracy: hasAccuracy(spec, dataset) ? majorityFraction(evaluation.set.labels!, dataset.numClasses ?? 2) : null,
  });
  // A run that diverges can leave Infinity or NaN in its last adopted parameters: encoded and listed too.
  const included = encodeNonFinite({
    ...(run.initialParameters && o.finalParameters ? { parameters: run.initialParameters, finalParameters: o.finalParameters } : {}),
    ...(run.batchLog ? { batches: run.batchLog.toJson() } : {}),
  });
  const result: TrainingResult = {
    steps: prepared.steps,
    stepsCompleted: o.stepsCompleted,
    batchSize: spec.data.batchSize,
    optimizer: prepared.optimizer,
    layers: run.model.layers,
    records,
    evaluation: { examples: evaluation.set.size, description: evaluation.description },
    ...(rest.value as Pick<TrainingResult, 'initialLoss' | 'finalLoss' | 'lossReduction' | 'baselineLoss' | 'initialAccuracy' | 'finalAccuracy' | 'chanceAccuracy'>),
    learns: verdict.status === 'learning',
    status: verdict.status,
    reasons: verdict.reasons,
    nonFinite: nonFiniteSummary([...run.recordPaths, ...rest.paths, ...included.paths]),
    data: { source: dataset.source, examples: dataset.n, inputUnits: dataset.inputSize, task: dataset.task, description: dataset.description },
  };
  Object.assign(result, included.value);
  if (prepared.expect) Object.assign(result, evaluateChecks(prepared.expect, 'training', result));
  return result;
}

function toNumberOrNaN(v: JsonNumber | undefined): number {
  return typeof v === 'number' ? v : v === undefined ? NaN : Number(v);
}

function majorityFraction(labels: Int32Array, classes: number): number {
  const counts = new Array<number>(Math.max(classes, 2)).fill(0);
  for (const c of labels) counts[c] = (counts[c] ?? 0) + 1;
  return Math.max(...counts) / labels.length;
}

interface JudgeInput {
  initialLoss: number;
  finalLoss: number;
  lossReduction: number;
  baseline: number | null;
  stoppedAt: { step: number; loss: number } | null;
  lossBoundedBelow: boolean;
  firstToLastAtInit: number;
}

/** The learning / stalled / diverged rule documented on TrainingResultSchema.status. */
export function judge(j: JudgeInput): { status: TrainingStatus; reasons: string[] } {
  const reasons: string[] = [];
  if (j.stoppedAt) {
    reasons.push(`the minibatch loss became ${fmt(j.stoppedAt.loss)} at step ${j.stoppedAt.step}; training stopped there`);
    return { status: 'diverged', reasons };
  }
  if (!Number.isFinite(j.finalLoss) || !Number.isFinite(j.initialLoss)) {
    reasons.push(`the evaluation loss is ${fmt(j.initialLoss)} at initialisation and ${fmt(j.finalLoss)} at the end`);
    return { status: 'diverged', reasons };
  }
  if (j.lossBoundedBelow && j.finalLoss > DIVERGENCE_FACTOR * j.initialLoss) {
    reasons.push(`the evaluation loss grew from ${fmt(j.initialLoss)} to ${fmt(j.finalLoss)}, more than ${DIVERGENCE_FACTOR}× the initial loss`);
    return { status: 'diverged', reasons };
  }
  const pct = `${fmt(100 * j.lossReduction)}%`;
  const dropped = j.lossReduction >= MIN_LOSS_REDUCTION;
  reasons.push(dropped
    ? `the evaluation loss fell from ${fmt(j.initialLoss)} to ${fmt(j.finalLoss)} (${pct}), at least the ${100 * MIN_LOSS_REDUCTION}% needed`
    : `the evaluation loss went from ${fmt(j.initialLoss)} to ${fmt(j.finalLoss)} (${pct} reduction), less than the ${100 * MIN_LOSS_REDUCTION}% needed`);
  let beatsBaseline = true;
  // A (near-)zero baseline means constant targets: any network can match it, so it says nothing.
  if (j.baseline !== null && j.baseline > 1e-12) {
    beatsBaseline = j.finalLoss <= BASELINE_FRACTION * j.baseline;
    reasons.push(beatsBaseline
      ? `the final loss ${fmt(j.finalLoss)} is below ${100 * BASELINE_FRACTION}% of the best constant prediction's ${fmt(j.baseline)}`
      : `the final loss ${fmt(j.finalLoss)} is not below ${100 * BASELINE_FRACTION}% of the best constant prediction's ${fmt(j.baseline)}: the network has learned little more than the target averages`);
  }
  const learns = dropped && beatsBaseline;
  if (!learns && Number.isFinite(j.firstToLastAtInit) && j.firstToLastAtInit < 1e-3) {
    reasons.push(`at initialisation the first layer's weight gradient was ${fmt(j.firstToLastAtInit)} × the last layer's (vanishing gradients)`);
  }
  return { status: learns ? 'learning' : 'stalled', reasons };
}
