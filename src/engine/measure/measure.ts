// One gradient-flow analysis: build the network, run real batches forward and backward, measure every layer.
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Batch } from '../data/datasets.js';
import { sampleBatches } from '../data/datasets.js';
import { deriveSeed } from '../common/random.js';
import type { NormalizedSpec } from '../spec/normalize.js';
import { activationsFor, forward, initParameters, lossOf, type AuxName, type AuxParameter, type AuxTensor, type ForwardTaps, type LayerPlan, type NetworkParameters } from '../model/network.js';
import { disposeParameters, packedLength, packParameters, parameterTensors, unpackParameters, type ParameterTensors } from '../model/parameter-pack.js';
import type { NormalizationKind } from '../spec/normalize.js';
import { activation, type Activation } from '../model/activations.js';
import { fitLogSlope, spreadOf, mean, type LogSlopeFit, type Spread } from '../common/stats.js';
import { layerPartial, perExampleNorms } from './batch-stats.js';
import type { BatchMeasurement, Reading } from './readings.js';
import { combineShards, shardRanges, type ShardPartial } from './combine-shards.js';
import { LAYER_ROW, layerRow, normFromParts, readingFromRow, readLayerRow, ReadCursor } from './device-layout.js';
import type { LossName } from '../../schemas/spec.js';
import type { AnalysisResultBody, LayerStatsBody, Measured } from '../../schemas/result.js';

export type { BatchMeasurement, Reading } from './readings.js';

/** Default threshold: an entry is saturated where |φ'(h)| < this × the activation's peak derivative. */
export const DEFAULT_SATURATION_THRESHOLD = 0.01;

export interface AnalysisOptions {
  saturationThreshold?: number;
  /** Where the statistics are computed (see MeasureArgs.statistics); tests compare both. */
  statistics?: 'host' | 'device';
  /** Measure each batch as this many row shards and combine them (what workers do in parallel). */
  split?: number;
  /** Per batch, every shard's measurement, computed elsewhere (measureAnalysisShard): nothing is run here. */
  partials?: ShardPartial[][];
}

/**
 * One layer's statistics: the response schema's LayerStats (src/schemas/result.ts) in measured form (plain
 * numbers, non-finite ones not yet encoded), without the flags the diagnosis adds.
 */
export type LayerStats = Omit<Measured<LayerStatsBody>, 'flags'>;
export type AuxStats = NonNullable<LayerStats['auxParameters']>[number];

export interface PerExampleStats {
  /** Statistics of ‖∂ℓ_i/∂W‖ = ‖x_i‖·‖∂ℓ_i/∂h_i‖ over every example of every batch. */
  mean: number;
  std: number;
  min: number;
  max: number;
  rms: number;
  /** ‖batch-mean gradient‖ / rms_i ‖∂ℓ_i/∂W‖ (mean over batches): 1 when all examples agree, ≈ 1/√B when they point at random; null when every per-example gradient is 0. */
  coherence: number | null;
}

const HOST_READ_BACKENDS = new Set(['cpu', 'wasm']);

function hostStatistics(choice: 'host' | 'device' | undefined): boolean {
  return choice === undefined ? HOST_READ_BACKENDS.has(tf.getBackend()) : choice === 'host';
}

/**
 * A float32 tensor's values as a Float32Array; on the cpu backend the backend's own array (no copy).
 * Not always what dataSync() gives: the cpu backend casts bool and int32 to float32 by relabelling the
 * same buffer (tfjs-backend-cpu Cast: no encoding loss, no copy), so e.g. relu6's derivative
 * cast(h > 0 && h < 6) reads back as a Uint8Array. The native reductions require a Float32Array.
 */
export function hostFloat32(t: tf.Tensor): Float32Array {
  const values = t.dataSync();
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

/**
 * Backends that cannot read synchronously: tfjs-backend-webgpu's dataSync needs OffscreenCanvas, which
 * Node does not have, and WebGPU has no blocking read-back at all (mapAsync only).
 */
const ASYNC_READ_BACKENDS = new Set(['webgpu']);

/** Whether tensors of the running backend must be read with `await t.data()` instead of dataSync(). */
export function readsAsync(): boolean {
  return ASYNC_READ_BACKENDS.has(tf.getBackend());
}

/**
 * Reads many tensors in one transfer (one concatenated float32 tensor, one `await data()`): on a GPU every
 * read-back is a round trip, so an analysis reads each batch's statistics once, not once per layer.
 * Returns each tensor's values, in order.
 */
export async function readTogether(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  if (tensors.length === 0) return [];
  const flat = tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), [-1]))));
  let all: Float32Array;
  try {
    // A cast that the backend implements as a relabelling (bool → float32) can still read back as bytes.
    const values = await flat.data();
    all = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  } finally {
    flat.dispose();
  }
  let offset = 0;
  return tensors.map((t) => all.subarray(offset, (offset += t.size)));
}

/**
 * A float32 tensor's values without a copy wherever the host can see the backend's memory: the cpu backend's
 * own array, a view of the wasm module's heap (tfjs-backend-wasm's typedArrayFromHeap). Valid only until the
 * next tfjs op or dispose: the view is detached when the heap grows and its bytes are reused once the tensor
 * is freed. For statistics reduced on the spot. Why: readSync copies every read on wasm (a fresh ArrayBuffer
 * outside the V8 heap), and those copies (~1.5 MB per layer and batch at width 256) are external memory that
 * makes V8 run full mark-compacts, on the compute thread and its GC threads (`node --trace-gc`: about half
 * as many without the copies); a worker process that shares its cores with another pays for them in compute.
 */
export function transientFloat32(t: tf.Tensor): Float32Array {
  if (t.dtype === 'float32' && tf.getBackend() === 'wasm') {
    const wasm = tf.backend() as unknown as { typedArrayFromHeap?(info: tf.TensorInfo): Float32Array };
    if (typeof wasm.typedArrayFromHeap === 'function') return wasm.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  }
  return hostFloat32(t);
}

/**
 * Reads a tensor's values as a Float32Array: calling it gives values the caller may keep (hostFloat32, or one of
 * the values hostReader read together); `transient` gives values to reduce at once (transientFloat32).
 */
export interface HostRead {
  (t: tf.Tensor): Float32Array;
  transient(t: tf.Tensor): Float32Array;
}

/**
 * A reader for the host statistics: the backend's own arrays where reads are synchronous (no copy on
 * cpu; on wasm a copy, or a view of the heap for transient reads), else every tensor in one asynchronous
 * transfer (webgpu).
 */
export async function hostReader(tensors: (tf.Tensor | null | undefined)[]): Promise<HostRead> {
  if (!readsAsync()) return Object.assign((t: tf.Tensor) => hostFloat32(t), { transient: transientFloat32 });
  const unique = [...new Set(tensors.filter((t): t is tf.Tensor => t != null))];
  const values = await readTogether(unique);
  const byTensor = new Map(unique.map((t, i) => [t, values[i]!]));
  const read = (t: tf.Tensor): Float32Array => byTensor.get(t) ?? hostFloat32(t);
  return Object.assign(read, { transient: read });
}

/** The measured part of the response's summary (the diagnosis adds the verdict and the rest). */
export type AnalysisSummary = Pick<Measured<AnalysisResultBody['summary']>, 'firstToLastRatio' | 'backpropFirstToLastRatio' | 'weightGradLogSlope' | 'backpropLogSlope'>;

/**
 * What the measurement returns: the response's AnalysisResult (src/schemas/result.ts) in measured form,
 * before the diagnosis (summary verdict, theory, what-if), the encoding (nonFinite) and the dataset summary.
 */
export type AnalysisResult = Omit<Measured<AnalysisResultBody>, 'layers' | 'summary' | 'theory' | 'whatIf' | 'nonFinite' | 'data' | 'checks' | 'passed'> & {
  layers: LayerStats[];
  summary: AnalysisSummary;
};

/** Moments of the input entries over the batches analysed: where mean-field theory starts (q⁰). */
export interface InputMoments {
  mean: number;
  meanSquare: number;
}

export interface AnalysisTimings {
  buildMs: number;
  computeMs: number;
  totalMs: number;
}


/** Targets shaped for the loss: one-hot for categorical, a 0/1 column for two-class binary. */
export function targetsFor(ds: Dataset, loss: LossName, batch: Batch): { values: Float32Array; width: number } {
  if (loss === 'categorical_crossentropy' && ds.task === 'binary') {
    const y = new Float32Array(batch.size * 2);
    batch.labels!.forEach((c, i) => { y[i * 2 + c] = 1; });
    return { values: y, width: 2 };
  }
  if (loss === 'binary_crossentropy' && ds.task === 'classification' && ds.numClasses === 2) {
    return { values: Float32Array.from(batch.labels!), width: 1 };
  }
  return { values: batch.y, width: ds.outputSize };
}

/**
 * [max|t|, Σ(t / max|t|)²]: the norm is then max·sqrt(Σ), computed in float64 after read-back. A plain
 * Σt² in float32 underflows for the 1e-27 gradients of a vanishing chain and overflows for exploding ones.
 */
function scaledNormParts(t: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const maxAbs = tf.max(tf.abs(t));
  return [maxAbs, tf.sum(tf.square(tf.divNoNan(t, maxAbs)))];
}

export interface GradientArgs {
  layers: LayerPlan[];
  weights: tf.Tensor2D[];
  biases: (tf.Tensor1D | null)[];
  residualScale: number;
  loss: LossName;
  x: tf.Tensor2D;
  y: tf.Tensor2D | null;
  aux?: AuxTensor[];
  normalization?: NormalizationKind;
}

/** What one forward + backward measurement needs: the network, its parameter tensors, the batch and what to read. */
export interface MeasureArgs extends GradientArgs {
  /** An entry is saturated where |φ'(h)| < this × the activation's peak derivative. */
  saturationThreshold: number;
  /** Layers whose per-example gradient norms to read back (default: the first and the last). */
  perExampleLayers?: number[];
  /**
   * Where the statistics are computed: 'host' reads the tensors (free on cpu, a memcpy on wasm) and
   * reduces them in float64 (batch-stats.ts); 'device' reduces them with tfjs ops and reads back once.
   * Default: host on the cpu and wasm backends, device elsewhere (tfjs-node, where reads are transfers).
   */
  statistics?: 'host' | 'device';
}

/** Runs one batch forward and backward and reads every layer's statistics back in one transfer; also used by training records. */
export async function measureBatch(args: MeasureArgs): Promise<BatchMeasurement> {
  return withBatchGradients(args, async (g) => (hostStatistics(args.statistics) ? hostPartial(args, g, { keepGradients: false, use: (p) => combineShards([p]) }) : deviceMeasurement(args, g)));
}

/**
 * measureBatch for one shard (some rows) of a batch: the sums and gradients that combineShards adds up
 * with the other shards' into the whole batch's measurement (host statistics only).
 */
export async function measureShard(args: MeasureArgs): Promise<ShardPartial> {
  if (args.normalization === 'batch') throw new RangeError('a batch-normalised network cannot be measured in shards');
  return withBatchGradients(args, (g) => hostPartial(args, g, { keepGradients: true, use: (p) => p }));
}

/** The loss of one batch and its gradient w.r.t. everything the analysis reports on. */
export interface BatchGradients {
  value: tf.Scalar;
  /** ∂Loss/∂W per layer, [inputUnits, units]. */
  weights: tf.Tensor[];
  /** ∂Loss/∂b per layer; null where the layer has no bias. */
  biases: (tf.Tensor | null)[];
  /** ∂Loss/∂h per layer (batch × units), h the pre-activation before any normalisation. */
  deltas: tf.Tensor[];
  /** ∂Loss/∂(auxiliary parameter), in the order of args.aux. */
  aux: tf.Tensor[];
  /** The forward pass's taps, kept past the gradient's scope (the statistics read them). */
  taps: ForwardTaps;
}

const TAP_KEYS = ['pre', 'post', 'out', 'input'] as const;

/** Disposes the kept taps except the caller's x (the first layer's input unless Fixup shifted it). */
function disposeTaps(taps: ForwardTaps, x: tf.Tensor): void {
  for (const key of TAP_KEYS) taps[key].forEach((t) => { if (t !== x) t.dispose(); });
}

/**
 * One batch forward and backward by tfjs autodiff: the gradients every analysis statistic is made of
 * (zero probes added to each pre-activation give ∂Loss/∂h). The caller owns every returned tensor;
 * call it inside a scope. The gradient check compares these whole tensors with finite differences.
 */
export function batchGradients(args: GradientArgs): BatchGradients {
  const { layers, x } = args;
  const acts = activationsFor(layers);
  const params: ParameterTensors = { weights: args.weights, biases: args.biases, aux: args.aux ?? [] };
  const n = packedLength(params);
  const taps: ForwardTaps = { pre: [], post: [], out: [], input: [] };
  const probes = layers.map((l) => tf.zeros([x.shape[0], l.units]) as tf.Tensor2D);
  // The list autodiff differentiates: the packed parameters, then the probes.
  const f = (...list: tf.Tensor[]): tf.Scalar => {
    const p = unpackParameters(list.slice(0, n), params);
    const run = forward({
      layers, acts, residualScale: args.residualScale, weights: p.weights, biases: p.biases,
      probes: list.slice(n) as tf.Tensor2D[], x, aux: p.aux, normalization: args.normalization,
    });
    // Keep the taps past the gradient's own scope: the statistics read them.
    for (const key of TAP_KEYS) run.taps[key].forEach((t) => taps[key].push(tf.keep(t)));
    return lossOf(args.loss, layers[layers.length - 1]!.activation, run.logits, run.output, args.y);
  };
  let value: tf.Scalar;
  let grads: tf.Tensor[];
  try {
    ({ value, grads } = tf.valueAndGrads(f)([...packParameters(params), ...probes]));
  } catch (err) {
    disposeTaps(taps, x);
    throw err;
  } finally {
    probes.forEach((p) => p.dispose());
  }
  const g = unpackParameters(grads.slice(0, n), params);
  return { value, weights: g.weights, biases: g.biases, deltas: grads.slice(n), aux: g.aux.map((a) => a.tensor), taps };
}

/**
 * `read` on one batch's gradients inside a manual scope (not tf.tidy: tidy may only return tensors, and
 * the measurements are plain numbers): every tensor made is released afterwards, the kept taps too. The
 * scope spans the read-back's await on webgpu: one task runs per thread (worker or serial in-process
 * runner), so no other work creates tensors in this scope meanwhile.
 */
async function withBatchGradients<T>(args: MeasureArgs, read: (g: BatchGradients) => Promise<T>): Promise<T> {
  let taps: ForwardTaps | null = null;
  tf.engine().startScope();
  try {
    const g = batchGradients(args);
    taps = g.taps;
    return await read(g);
  } finally {
    if (taps) disposeTaps(taps, args.x);
    tf.engine().endScope();
  }
}

function perExampleLayersOf(args: MeasureArgs): number[] {
  return [...new Set(args.perExampleLayers ?? [0, args.layers.length - 1])];
}

/**
 * The host path: the tensors read into float64 passes (batch-stats.ts). ~15 tfjs kernels per layer on
 * the device path against one float64 pass per array here (W2 on cpu + native kernels: ~300 ms of
 * statistics down to a few ms, README performance section). The whole batch is one shard: the same
 * code measures the shards of a split batch. `use` runs on the partial synchronously, while the transient
 * views of the wasm heap are still valid (transientFloat32); the gradients are read to keep only when the
 * partial outlives that (a shard of a split batch, summed with the others later).
 */
async function hostPartial<T>(args: MeasureArgs, g: BatchGradients, o: { keepGradients: boolean; use: (p: ShardPartial) => T }): Promise<T> {
  const { layers, weights } = args;
  const acts = activationsFor(layers);
  const batchSize = args.x.shape[0];
  const { taps, deltas } = g;
  const derivatives = acts.map((act, l) => (act.derivative ? act.derivative(taps.pre[l]!) : null));
  // One transfer on webgpu; the backend's own arrays elsewhere.
  const host = await hostReader([
    g.value, ...weights, ...g.weights, ...g.biases, ...deltas, ...taps.pre, ...taps.post, ...taps.out, ...taps.input, ...derivatives, ...g.aux,
  ]);
  const gradient = o.keepGradients ? host : host.transient;
  return o.use({
    batch: batchSize,
    loss: host(g.value)[0]!,
    layers: layers.map((layer, l) => {
      const act = acts[l]!;
      const derivative = derivatives[l];
      const post = host.transient(taps.post[l]!);
      return layerPartial({
        weight: host.transient(weights[l]!), grad: gradient(g.weights[l]!), biasGrad: g.biases[l] ? gradient(g.biases[l]!) : null, delta: host.transient(deltas[l]!),
        pre: host.transient(taps.pre[l]!), post, out: taps.out[l] === taps.post[l] ? post : host.transient(taps.out[l]!),
        derivative: derivative ? host.transient(derivative) : null, units: layer.units,
        // tf.less compares against a float32 scalar: round the limit the same way.
        saturationLimit: act.derivative && act.saturating ? Math.fround(args.saturationThreshold * act.peakDerivative) : null,
      });
    }),
    auxGrads: g.aux.map((t) => gradient(t)),
    perExample: perExampleLayersOf(args).map((layer) => ({
      layer, norms: perExampleNorms(host.transient(taps.input[layer]!), layers[layer]!.inputUnits, host.transient(deltas[layer]!), layers[layer]!.units, batchSize),
    })),
  });
}

/** The device path: every statistic reduced by tfjs ops, read back in one transfer (layout: device-layout.ts). */
async function deviceMeasurement(args: MeasureArgs, g: BatchGradients): Promise<BatchMeasurement> {
  const acts = activationsFor(args.layers);
  const perExampleLayers = perExampleLayersOf(args);
  const rows = args.layers.map((_, l) => deviceLayerRow(args, g, acts[l]!, l));
  const perExample = perExampleLayers.flatMap((l) => perExampleParts(g.taps.input[l]!, g.deltas[l]!));
  const aux = g.aux.flatMap((t) => scaledNormParts(t).map((s) => tf.reshape(s, [1])));
  // Everything in one read-back, the loss last.
  const [read] = await readTogether([tf.concat([...rows, ...perExample, ...aux, tf.reshape(g.value, [1])])]) as [Float32Array];
  const all = read.subarray(0, read.length - 1);
  const loss = read[read.length - 1]!;
  return readDeviceMeasurement(new ReadCursor(all), { loss, layers: args.layers.length, perExampleLayers, aux: g.aux.length, batchSize: args.x.shape[0] });
}

/** Layer l's row of LAYER_FIELDS as one 1-D tensor. */
function deviceLayerRow(args: MeasureArgs, g: BatchGradients, act: Activation, l: number): tf.Tensor {
  const h = g.taps.pre[l]!;
  const { mean: actMean, variance: actVar } = tf.moments(g.taps.post[l]!);
  let dead: tf.Tensor = tf.scalar(-1);
  let saturated: tf.Tensor = tf.scalar(-1);
  if (act.derivative) {
    const d = tf.abs(act.derivative(h));
    // A unit is dead when no example in the batch passes any gradient through it.
    dead = tf.mean(tf.cast(tf.equal(tf.max(d, 0), 0), 'float32'));
    if (act.saturating) saturated = tf.mean(tf.cast(tf.less(d, args.saturationThreshold * act.peakDerivative), 'float32'));
  }
  const [weightMax, weightScaledSumSq] = scaledNormParts(args.weights[l]!);
  const [gradMax, gradScaledSumSq] = scaledNormParts(g.weights[l]!);
  const gb = g.biases[l];
  const [biasGradMax, biasGradScaledSumSq] = gb ? scaledNormParts(gb) : [tf.scalar(NaN), tf.scalar(NaN)];
  const [deltaMax, deltaScaledSumSq] = scaledNormParts(g.deltas[l]!);
  const row = layerRow<tf.Tensor>({
    weightMax, weightScaledSumSq, gradMax, gradScaledSumSq, biasGradMax, biasGradScaledSumSq, deltaMax, deltaScaledSumSq,
    preMeanSq: tf.mean(tf.square(h)), actMean, actVar, outMeanSq: tf.mean(tf.square(g.taps.out[l]!)), dead, saturated,
  });
  return tf.stack(row.map((s) => tf.reshape(s, [])));
}

/**
 * Per-example ‖∂ℓ_i/∂W‖ = B·‖input_i‖·‖δ_i‖ (δ = ∂Loss/∂H of the batch-mean loss): [max|input|, max|δ|,
 * row norms of input / max, row norms of δ / max], so that 1e-27 gradients do not underflow in float32.
 */
function perExampleParts(input: tf.Tensor, delta: tf.Tensor): tf.Tensor[] {
  const inputMax = tf.max(tf.abs(input));
  const deltaMax = tf.max(tf.abs(delta));
  return [
    tf.reshape(inputMax, [1]), tf.reshape(deltaMax, [1]),
    tf.sqrt(tf.sum(tf.square(tf.divNoNan(input, inputMax)), 1)),
    tf.sqrt(tf.sum(tf.square(tf.divNoNan(delta, deltaMax)), 1)),
  ];
}

/** The device read-back, front to back: the layer rows, the per-example parts, the auxiliary gradients' parts. */
function readDeviceMeasurement(
  cursor: ReadCursor,
  shape: { loss: number; layers: number; perExampleLayers: number[]; aux: number; batchSize: number },
): BatchMeasurement {
  const B = shape.batchSize;
  const readings = Array.from({ length: shape.layers }, () => readingFromRow(readLayerRow(cursor.take(LAYER_ROW))));
  // A max that is not finite is reported for every example (as the host path does).
  const rescale = (max: number, v: number): number => (Number.isFinite(max) ? max * v : max);
  const perExample = shape.perExampleLayers.map((layer) => {
    const inputMax = cursor.next();
    const deltaMax = cursor.next();
    const inputRows = cursor.take(B);
    const deltaRows = cursor.take(B);
    return { layer, norms: Array.from(inputRows, (a, i) => B * rescale(inputMax, a) * rescale(deltaMax, deltaRows[i]!)) };
  });
  const auxGradNorms = Array.from({ length: shape.aux }, () => {
    const maxAbs = cursor.next();
    return normFromParts(maxAbs, cursor.next());
  });
  if (cursor.remaining !== 0) throw new Error(`device read-back: ${cursor.remaining} entries left unread`);
  return { loss: shape.loss, readings, auxGradNorms, perExample };
}

/** Parameters as include: ["parameters"] reports them: per layer W as [inputUnits][units], b, and the auxiliary parameters. */
export type ParametersJson = {
  index: number;
  weights: number[][];
  bias: number[] | null;
  auxParameters?: { name: AuxName; values: number[] }[];
}[];

/** The layout analyses and trainings share for include: ["parameters"]; aux only on layers that have some. */
export function parametersJson(layers: LayerPlan[], weights: Float32Array[], biases: (Float32Array | null)[], aux: { layer: number; name: AuxName; values: Float32Array }[]): ParametersJson {
  return layers.map((layer, l) => {
    const own = aux.filter((p) => p.layer === l).map((p) => ({ name: p.name, values: Array.from(p.values) }));
    return {
      index: l,
      weights: toRows(weights[l]!, layer.units),
      bias: biases[l] ? Array.from(biases[l]!) : null,
      ...(own.length > 0 ? { auxParameters: own } : {}),
    };
  });
}

function toRows(values: Float32Array, width: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += width) rows.push(Array.from(values.subarray(i, i + width)));
  return rows;
}

/** Which rows of which batches to measure on which parameters (rows [start, end) of each batch; all by default). */
interface RowsArgs {
  spec: NormalizedSpec;
  params: NetworkParameters;
  batches: Batch[];
  targets: { values: Float32Array; width: number }[];
  options: AnalysisOptions;
  rows?: [start: number, end: number];
}

/**
 * Rows [start, end) of each batch forward and backward on the network's parameters, each measured by
 * `measure` (measureBatch, or measureShard for what combineShards needs). Leaves no tensors behind.
 */
async function measureRows<T>(r: RowsArgs, measure: (args: MeasureArgs) => Promise<T>): Promise<T[]> {
  const { spec, options } = r;
  const { layers } = r.params;
  const inputUnits = layers[0]!.inputUnits;
  const [start, end] = r.rows ?? [0, Infinity];
  const p = parameterTensors(r.params);
  const saturationThreshold = options.saturationThreshold ?? spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD;
  const out: T[] = [];
  try {
    for (const [i, batch] of r.batches.entries()) {
      const s = Math.min(start, batch.size), e = Math.min(end, batch.size);
      const { values, width } = r.targets[i]!;
      const x = tf.tensor2d(batch.x.subarray(s * inputUnits, e * inputUnits), [e - s, inputUnits]);
      const y = spec.loss === 'output' ? null : tf.tensor2d(values.subarray(s * width, e * width), [e - s, width]);
      try {
        out.push(await measure({
          layers, weights: p.weights, biases: p.biases, aux: p.aux, residualScale: spec.network.residual.scale, loss: spec.loss,
          x, y, saturationThreshold, normalization: spec.network.normalization, ...(options.statistics ? { statistics: options.statistics } : {}),
        }));
      } finally {
        x.dispose();
        y?.dispose();
      }
    }
  } finally {
    disposeParameters(p);
  }
  return out;
}

/** The batches an analysis draws and their targets: the same for every shard and for the whole. */
export function analysisBatches(spec: NormalizedSpec, dataset: Dataset): { batches: Batch[]; targets: { values: Float32Array; width: number }[] } {
  const batches = sampleBatches(dataset, spec.data.batchSize, spec.data.batches, deriveSeed(spec.seed, 'batches'));
  return { batches, targets: batches.map((b) => targetsFor(dataset, spec.loss, b)) };
}

/**
 * One shard of an analysis split across workers: rows [start, end) of shard `index` of `count` of
 * every batch the full analysis draws, measured as combineShards needs them (one entry per batch).
 * The other workers measure the other shards; runAnalysis({ partials }) puts them together.
 */
export async function measureAnalysisShard(spec: NormalizedSpec, dataset: Dataset, params: NetworkParameters, index: number, count: number, options: AnalysisOptions = {}): Promise<ShardPartial[]> {
  if (spec.network.normalization === 'batch') throw new RangeError('a batch-normalised network cannot be measured in shards');
  const { batches, targets } = analysisBatches(spec, dataset);
  const rows = shardRanges(spec.data.batchSize, count)[index] ?? [0, 0];
  return measureRows({ spec, params, batches, targets, options, rows }, measureShard);
}

/** Runs the analysis a normalised spec describes on its dataset. Leaves no tensors behind. */
export async function runAnalysis(
  spec: NormalizedSpec,
  dataset: Dataset,
  options: AnalysisOptions = {},
  params: NetworkParameters = initParameters(spec.network, spec.seed),
): Promise<{ result: AnalysisResult; timings: AnalysisTimings; input: InputMoments }> {
  const t0 = performance.now();
  const { batches, targets } = analysisBatches(spec, dataset);
  const input = inputMoments(batches);
  const t1 = performance.now();
  const perBatch = await measureBatches({ spec, params, batches, targets, options });
  const t2 = performance.now();
  const layers = params.layers.map((layer, l) => layerStatsOf(layer, perBatch.map((p) => p.readings[l]!), perBatch, params, spec.data.batchSize));
  const result = assembleResult(spec, params, perBatch, layers);
  if (spec.include.includes('batch')) {
    result.batch = batches.map((b, i) => ({ x: toRows(b.x, params.layers[0]!.inputUnits), y: toRows(targets[i]!.values, targets[i]!.width) }));
  }
  const t3 = performance.now();
  return { result, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: t3 - t0 }, input };
}

/** Mean and mean square of every input entry of the batches. */
export function inputMoments(batches: Batch[]): InputMoments {
  let sum = 0;
  let sumSq = 0;
  let count = 0;
  for (const b of batches) {
    for (const v of b.x) {
      sum += v;
      sumSq += v * v;
    }
    count += b.x.length;
  }
  return { mean: count > 0 ? sum / count : 0, meanSquare: count > 0 ? sumSq / count : 0 };
}

/** Every batch's measurement: combined from other workers' shards, measured here in shards, or measured whole. */
async function measureBatches(r: RowsArgs): Promise<BatchMeasurement[]> {
  const { options } = r;
  if (options.partials) return options.partials.map((shards) => combineShards(shards));
  const split = options.split ?? 1;
  if (split <= 1) return measureRows(r, measureBatch);
  // Shard after shard, batch after batch: one measurement in flight at a time (see withBatchGradients).
  const out: BatchMeasurement[] = [];
  for (const [i, b] of r.batches.entries()) {
    const shards: ShardPartial[] = [];
    for (const rows of shardRanges(b.size, split)) {
      shards.push(...(await measureRows({ ...r, batches: [b], targets: [r.targets[i]!], rows }, measureShard)));
    }
    out.push(combineShards(shards));
  }
  return out;
}

/** One layer's statistics over the batches (`readings`: this layer's reading of each batch). */
function layerStatsOf(layer: LayerPlan, readings: Reading[], perBatch: BatchMeasurement[], params: NetworkParameters, B: number): LayerStats {
  const l = layer.index;
  const r = (key: keyof Reading): number[] => readings.map((p) => p[key]);
  const gradNorms = r('gradNorm');
  // Per-example backprop signal: the loss is a batch mean, so ∂ℓ_i/∂h_i = B·δ_i; report the RMS over
  // examples of its norm, sqrt(B)·‖δ‖_F, which does not depend on the batch size.
  const backpropNorms = r('deltaNorm').map((n) => Math.sqrt(B) * n);
  const weightNorm = r('weightNorm')[0]!;
  const weightGradNorm = mean(gradNorms);
  const act = activation(layer.activation);
  const stats: LayerStats = {
    index: layer.index,
    name: layer.name,
    inputUnits: layer.inputUnits,
    units: layer.units,
    activation: layer.activation.alpha !== undefined ? `${layer.activation.name}(${layer.activation.alpha})` : layer.activation.name,
    residualBlock: layer.block,
    weightNorm,
    weightGradNorm,
    weightGradRms: weightGradNorm / Math.sqrt(layer.inputUnits * layer.units),
    weightGradMaxAbs: mean(r('gradMaxAbs')),
    biasGradNorm: params.biases[l] ? mean(r('biasGradNorm')) : null,
    gradToWeightRatio: weightNorm > 0 ? weightGradNorm / weightNorm : null,
    backpropNorm: mean(backpropNorms),
    backpropRms: mean(backpropNorms) / Math.sqrt(layer.units),
    preActivationRms: Math.sqrt(mean(r('preMeanSq'))),
    activationMean: mean(r('actMean')),
    activationStd: Math.sqrt(mean(r('actVar'))),
    outputRms: Math.sqrt(mean(r('outMeanSq'))),
    deadFraction: act.derivative ? mean(r('dead')) : null,
    saturatedFraction: act.derivative && act.saturating ? mean(r('saturated')) : null,
  };
  if (perBatch.length > 1) stats.spread = { weightGradNorm: spreadOf(gradNorms), backpropNorm: spreadOf(backpropNorms) };
  const auxParameters = auxStatsOf(l, params.aux ?? [], perBatch);
  if (auxParameters.length > 0) stats.auxParameters = auxParameters;
  const perExample = perExampleStatsOf(l, gradNorms, perBatch);
  if (perExample) stats.perExample = perExample;
  return stats;
}

/** The auxiliary parameters of layer l with their mean gradient norm over the batches. */
function auxStatsOf(l: number, aux: AuxParameter[], perBatch: BatchMeasurement[]): AuxStats[] {
  return aux.flatMap((p, i) => (p.layer === l
    ? [{ name: p.name, size: p.values.length, initial: p.values[0]!, gradNorm: mean(perBatch.map((b) => b.auxGradNorms[i]!)) }]
    : []));
}

/** Spread and coherence of layer l's per-example gradient norms, or null where they were not read. */
function perExampleStatsOf(l: number, gradNorms: number[], perBatch: BatchMeasurement[]): PerExampleStats | null {
  const examples = perBatch.flatMap((b) => b.perExample.find((e) => e.layer === l)?.norms ?? []);
  if (examples.length === 0) return null;
  const sp = spreadOf(examples);
  const rmsPerBatch = perBatch.map((b) => Math.sqrt(mean((b.perExample.find((e) => e.layer === l)?.norms ?? [NaN]).map((v) => v * v))));
  // The batch gradient is the mean of the per-example ones, so its norm over their RMS is in [0, 1].
  const coherence = mean(gradNorms.map((g, i) => g / rmsPerBatch[i]!));
  return { ...sp, rms: Math.sqrt(mean(examples.map((v) => v * v))), coherence: Number.isNaN(coherence) ? null : coherence };
}

/** The result around the layers: loss, summary ratios and slopes, and the parameters where included. */
function assembleResult(spec: NormalizedSpec, params: NetworkParameters, perBatch: BatchMeasurement[], layerStats: LayerStats[]): AnalysisResult {
  const last = layerStats[layerStats.length - 1]!;
  const first = layerStats[0]!;
  const losses = perBatch.map((p) => p.loss);
  const result: AnalysisResult = {
    loss: mean(losses),
    batchSize: spec.data.batchSize,
    batches: perBatch.length,
    layers: layerStats,
    summary: {
      firstToLastRatio: first.weightGradNorm / last.weightGradNorm,
      backpropFirstToLastRatio: first.backpropNorm / last.backpropNorm,
      weightGradLogSlope: fitLogSlope(layerStats.map((s) => s.weightGradNorm)),
      backpropLogSlope: fitLogSlope(layerStats.map((s) => s.backpropNorm)),
    },
  };
  if (perBatch.length > 1) result.lossSpread = spreadOf(losses);
  if (spec.include.includes('parameters')) {
    result.parameters = parametersJson(params.layers, params.weights, params.biases, params.aux ?? []);
  }
  return result;
}
