// Training runs: validate and cost a training spec up front, then train with recorded per-layer gradient statistics.
import * as tf from '@tensorflow/tfjs';
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import { MAX_TRAINING_INCLUDED_VALUES, MAX_TRAINING_RECORDS, type TrainingInclude, type TrainingSpecInput } from '../../schemas/training.js';
import type { ExpectInput } from '../../schemas/checks.js';
import { normalizeSpec, specToInput, DEFAULT_LIMITS, type NormalizedSpec, type SpecLimits } from '../spec/normalize.js';
import { estimateCost, checkCost, type CostEstimate } from '../spec/cost.js';
import { measureBatch, parametersJson, targetsFor, DEFAULT_SATURATION_THRESHOLD, type ParametersJson } from '../measure/measure.js';
import { activation } from '../model/activations.js';
import { activationsFor, auxIsVector, auxParameterCount, forward, initParameters, lossOf, type AuxName, type AuxTensor, type LayerPlan } from '../model/network.js';
import { sampleBatches, type Batch, type Dataset } from '../data/datasets.js';
import { deriveSeed } from '../common/random.js';
import { encodeNonFinite, nonFiniteSummary, type NonFiniteSummary } from '../common/json-safe.js';
import { CancelledError, LimitError, SpecError } from '../common/errors.js';
import { createOptimizer, normalizeOptimizer, type OptimizerConfig } from '../model/optimizers.js';
import { evaluateChecks, validateExpect, type Check, type JsonNumber } from '../diagnosis/checks.js';

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

export interface TrainingLayerRecord {
  index: number;
  weightNorm: JsonNumber;
  weightGradNorm: JsonNumber;
  backpropNorm: JsonNumber;
  updateToWeightRatio: JsonNumber | null;
  deadFraction: JsonNumber | null;
  saturatedFraction: JsonNumber | null;
}

/** One recorded step, JSON-safe (non-finite numbers are "NaN"/"Infinity"/"-Infinity"). */
export interface TrainingRecord {
  step: number;
  loss: JsonNumber;
  accuracy: JsonNumber | null;
  firstToLastRatio: JsonNumber;
  backpropFirstToLastRatio: JsonNumber;
  layers: TrainingLayerRecord[];
}

export type TrainingStatus = 'learning' | 'stalled' | 'diverged';

export interface TrainingResult {
  steps: number;
  stepsCompleted: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  layers: { index: number; name: string; inputUnits: number; units: number; activation: string }[];
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

  const base = estimateCost(spec);
  const evaluationExamples = Math.min(dataset.n, EVALUATION_EXAMPLES);
  // Each step is one forward + backward pass; each record measures its batch once more; the two
  // evaluations are forward passes only, about a third of a forward + backward pass per example.
  const evaluationFlops = (2 * evaluationExamples * base.flopsPerStep) / (3 * spec.data.batchSize);
  const cost: TrainingCost = {
    parameters: base.parameters,
    flopsPerStep: base.flopsPerStep,
    flops: base.flopsPerStep * (steps + records) + evaluationFlops,
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

/**
 * Upper bound of the numbers include adds: parameters twice (initial and final); per step one index per
 * example, plus every distinct row (inputs + targets + its index), at most the whole dataset.
 */
function includedValues(spec: NormalizedSpec, dataset: Dataset, steps: number, include: TrainingInclude[]): number {
  let values = 0;
  if (include.includes('parameters')) {
    const { parameters } = estimateCost(spec);
    values += 2 * (parameters + auxParameterCount(spec.network));
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

/** Everything trainable: W, b, and the auxiliary parameters (normalisation gamma/beta, gates, Fixup scalars). */
interface Params {
  weights: tf.Tensor2D[];
  biases: (tf.Tensor1D | null)[];
  aux: AuxTensor[];
}

const flat = (p: Params): tf.Tensor[] => [
  ...p.weights, ...p.biases.filter((b): b is tf.Tensor1D => b !== null), ...p.aux.map((a) => a.tensor),
];

function rebuild(template: Params, list: tf.Tensor[]): Params {
  const L = template.weights.length;
  let k = L;
  const biases = template.biases.map((b) => (b ? (list[k++] as tf.Tensor1D) : null));
  return {
    weights: list.slice(0, L) as tf.Tensor2D[],
    biases,
    aux: template.aux.map((a) => ({ layer: a.layer, name: a.name, tensor: list[k++]! })),
  };
}

const disposeParams = (p: Params): void => flat(p).forEach((t) => t.dispose());

/** The parameters' current values in the include: ["parameters"] layout. */
async function parametersNow(layers: LayerPlan[], p: Params): Promise<ParametersJson> {
  const values = async (t: tf.Tensor): Promise<Float32Array> => Float32Array.from((await t.data()) as Float32Array);
  const aux: { layer: number; name: AuxName; values: Float32Array }[] = [];
  for (const a of p.aux) aux.push({ layer: a.layer, name: a.name, values: await values(a.tensor) });
  const weights = await Promise.all(p.weights.map(values));
  const biases = await Promise.all(p.biases.map((b) => (b ? values(b) : null)));
  return parametersJson(layers, weights, biases, aux);
}

/** Collects include: ["batches"]: each step's dataset rows, and every row once with the targets the loss saw. */
class BatchLog {
  readonly indices: number[][] = [];
  private readonly rows = new Map<number, { x: number[]; y: number[] }>();

  constructor(private readonly model: Model) {}

  add(batch: Batch): void {
    const indices = Array.from(batch.indices!);
    this.indices.push(indices);
    const inputs = this.model.layers[0]!.inputUnits;
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

interface Model {
  layers: LayerPlan[];
  acts: ReturnType<typeof activationsFor>;
  scale: number;
  spec: NormalizedSpec;
  dataset: Dataset;
}

/** The network's forward pass in training mode (normalisation uses the statistics of the rows given). */
function run(model: Model, params: Params, x: tf.Tensor2D): { logits: tf.Tensor2D; output: tf.Tensor2D } {
  const { logits, output } = forward({
    layers: model.layers, acts: model.acts, residualScale: model.scale, weights: params.weights, biases: params.biases,
    probes: null, x, aux: params.aux, normalization: model.spec.network.normalization,
  });
  return { logits, output };
}

function tensorsOf(model: Model, batch: Batch): { x: tf.Tensor2D; y: tf.Tensor2D | null } {
  const x = tf.tensor2d(batch.x, [batch.size, model.layers[0]!.inputUnits]);
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
async function evaluate(model: Model, params: Params, set: Batch): Promise<{ loss: number; accuracy: number | null }> {
  const withAccuracy = hasAccuracy(model.spec, model.dataset);
  const inputs = model.layers[0]!.inputUnits;
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
      const { logits, output } = run(model, params, x);
      const loss = lossOf(model.spec.loss, model.layers[model.layers.length - 1]!.activation, logits, output, y);
      return tf.stack([loss, withAccuracy ? correctCount(output, part.labels!) : tf.scalar(0)]);
    }));
    lossSum += l! * part.size;
    correct += c!;
  }
  return { loss: lossSum / set.size, accuracy: withAccuracy ? correct / set.size : null };
}

/** Loss of the best constant prediction on the set's targets (the level a network that ignores x reaches). */
function baselineLoss(model: Model, set: Batch): number | null {
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

async function updateRatios(before: tf.Tensor2D[], after: tf.Tensor2D[]): Promise<number[]> {
  const values = await readAndDispose(tf.tidy(() => tf.stack(before.flatMap((w, l) => [scaledNorm(tf.sub(after[l]!, w)), scaledNorm(w)]))));
  return before.map((_, l) => values[2 * l]! / values[2 * l + 1]!);
}

async function batchAccuracy(model: Model, params: Params, x: tf.Tensor2D, labels: Int32Array): Promise<number> {
  const c = tf.tidy(() => {
    const { output } = run(model, params, x);
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

/** Trains from a prepareTraining result (lets a worker prepare once and report errors early). */
export async function trainPrepared(prepared: PreparedTraining, hooks: TrainingHooks = {}): Promise<TrainingOutput> {
  const t0 = performance.now();
  const { spec, dataset, steps, recordEvery, optimizer: optimizerConfig } = prepared;
  const init = initParameters(spec.network, spec.seed);
  const model: Model = { layers: init.layers, acts: activationsFor(init.layers), scale: spec.network.residual.scale, spec, dataset };
  const { layers } = model;
  const last = layers.length - 1;
  const withAccuracy = hasAccuracy(spec, dataset);
  const B = spec.data.batchSize;
  const stream = new BatchStream(dataset, B, spec.seed);
  const { set: evalSet, description: evalDescription } = evaluationSet(dataset, spec.seed);
  const baseline = baselineLoss(model, evalSet);
  const chanceAccuracy = withAccuracy ? majorityFraction(evalSet.labels!, dataset.numClasses ?? 2) : null;
  const toRecord = new Set(recordSteps(steps, recordEvery));

  let params: Params = {
    weights: layers.map((l) => tf.tensor2d(init.weights[l.index]!, [l.inputUnits, l.units])),
    biases: layers.map((l) => (init.biases[l.index] ? tf.tensor1d(init.biases[l.index]!) : null)),
    aux: (init.aux ?? []).map((p) => ({ layer: p.layer, name: p.name, tensor: auxIsVector(p.name) ? tf.tensor1d(p.values) : tf.scalar(p.values[0]!) })),
  };
  const saturationThreshold = spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD;
  const optimizer = createOptimizer(optimizerConfig);
  const initialParameters = prepared.include.includes('parameters') ? parametersJson(layers, init.weights, init.biases, init.aux ?? []) : null;
  let finalParameters: ParametersJson | null = null;
  const batchLog = prepared.include.includes('batches') ? new BatchLog(model) : null;
  const t1 = performance.now();

  const records: TrainingRecord[] = [];
  const recordPaths: string[] = [];
  let stoppedAt: { step: number; loss: number } | null = null;
  let stepsCompleted = 0;
  let lastYield = performance.now();

  const takeRecord = async (step: number, x: tf.Tensor2D, y: tf.Tensor2D | null, batch: Batch, ratios: number[] | null): Promise<void> => {
    const { loss, readings } = await measureBatch(layers, params.weights, params.biases, model.scale, spec.loss, x, y, saturationThreshold,
      { aux: params.aux, normalization: spec.network.normalization, perExampleLayers: [] });
    const layerRecords = layers.map((layer, l) => {
      const r = readings[l]!;
      const act = activation(layer.activation);
      return {
        index: l,
        weightNorm: r.weightNorm,
        weightGradNorm: r.gradNorm,
        backpropNorm: Math.sqrt(B) * r.deltaNorm,
        updateToWeightRatio: ratios ? ratios[l]! : null,
        deadFraction: act.derivative ? r.dead : null,
        saturatedFraction: act.derivative && act.saturating ? r.saturated : null,
      };
    });
    const raw = {
      step,
      loss,
      accuracy: withAccuracy ? await batchAccuracy(model, params, x, batch.labels!) : null,
      firstToLastRatio: readings[0]!.gradNorm / readings[last]!.gradNorm,
      backpropFirstToLastRatio: readings[0]!.deltaNorm / readings[last]!.deltaNorm,
      layers: layerRecords,
    };
    const encoded = encodeNonFinite(raw, `records[${records.length}]`);
    recordPaths.push(...encoded.paths);
    const record = encoded.value as TrainingRecord;
    records.push(record);
    hooks.onRecord?.(record, steps > 0 ? step / steps : 1);
    await yieldToEventLoop();
    lastYield = performance.now();
    if (hooks.isCancelled?.()) throw new CancelledError();
  };

  let initial = { loss: NaN, accuracy: null as number | null };
  let final = { loss: NaN, accuracy: null as number | null };
  // Updated parameters not yet adopted: disposed if a record, a cancel or an error comes in between.
  let pending: Params | null = null;
  try {
    initial = await evaluate(model, params, evalSet);
    for (let step = 0; step < steps; step++) {
      if (hooks.isCancelled?.()) throw new CancelledError();
      const batch = stream.get(step);
      batchLog?.add(batch);
      const { x, y } = tensorsOf(model, batch);
      try {
        const list = flat(params);
        const out = tf.tidy(() => {
          const f = (...args: tf.Tensor[]): tf.Scalar => {
            const { logits, output } = run(model, rebuild(params, args), x);
            return lossOf(spec.loss, layers[last]!.activation, logits, output, y);
          };
          const { value, grads } = tf.valueAndGrads(f)(list);
          return { value, next: optimizer.step(list, grads) };
        });
        pending = rebuild(params, out.next);
        const loss = (await readAndDispose(out.value))[0]!;
        if (!Number.isFinite(loss)) {
          // Record the step that broke (before its update) and stop: further updates are NaN arithmetic.
          stoppedAt = { step, loss };
          await takeRecord(step, x, y, batch, null);
          break;
        }
        if (toRecord.has(step)) {
          const ratios = await updateRatios(params.weights, pending.weights);
          await takeRecord(step, x, y, batch, ratios);
        }
        disposeParams(params);
        params = pending;
        pending = null;
        stepsCompleted = step + 1;
      } finally {
        if (pending) disposeParams(pending);
        pending = null;
        x.dispose();
        y?.dispose();
      }
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
    if (!stoppedAt) {
      const batch = stream.get(steps);
      batchLog?.add(batch);
      const { x, y } = tensorsOf(model, batch);
      try {
        await takeRecord(steps, x, y, batch, null);
      } finally {
        x.dispose();
        y?.dispose();
      }
    }
    final = await evaluate(model, params, evalSet);
    if (initialParameters) finalParameters = await parametersNow(layers, params);
  } finally {
    disposeParams(params);
    optimizer.dispose();
  }
  const t2 = performance.now();

  const lossReduction = (initial.loss - final.loss) / Math.max(Math.abs(initial.loss), 1e-12);
  const verdict = judge({
    initialLoss: initial.loss,
    finalLoss: final.loss,
    lossReduction,
    baseline,
    stoppedAt,
    lossBoundedBelow: spec.loss !== 'output',
    firstToLastAtInit: toNumberOrNaN(records[0]?.firstToLastRatio),
  });

  const rest = encodeNonFinite({
    initialLoss: initial.loss,
    finalLoss: final.loss,
    lossReduction,
    baselineLoss: baseline,
    initialAccuracy: initial.accuracy,
    finalAccuracy: final.accuracy,
    chanceAccuracy,
  });
  // A run that diverges can leave Infinity or NaN in its last adopted parameters: encoded and listed too.
  const included = encodeNonFinite({
    ...(initialParameters && finalParameters ? { parameters: initialParameters, finalParameters } : {}),
    ...(batchLog ? { batches: batchLog.toJson() } : {}),
  });
  const paths = [...recordPaths, ...rest.paths, ...included.paths];
  const result: TrainingResult = {
    steps,
    stepsCompleted,
    batchSize: B,
    optimizer: optimizerConfig,
    layers: layers.map((l) => ({
      index: l.index, name: l.name, inputUnits: l.inputUnits, units: l.units,
      activation: l.activation.alpha !== undefined ? `${l.activation.name}(${l.activation.alpha})` : l.activation.name,
    })),
    records,
    evaluation: { examples: evalSet.size, description: evalDescription },
    ...(rest.value as Pick<TrainingResult, 'initialLoss' | 'finalLoss' | 'lossReduction' | 'baselineLoss' | 'initialAccuracy' | 'finalAccuracy' | 'chanceAccuracy'>),
    learns: verdict.status === 'learning',
    status: verdict.status,
    reasons: verdict.reasons,
    nonFinite: nonFiniteSummary(paths),
    data: { source: dataset.source, examples: dataset.n, inputUnits: dataset.inputSize, task: dataset.task, description: dataset.description },
  };
  Object.assign(result, included.value);
  if (prepared.expect) Object.assign(result, evaluateChecks(prepared.expect, 'training', result));
  const t3 = performance.now();
  return { spec: prepared.input, result, cost: prepared.cost, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: t3 - t0 } };
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
