// One gradient-flow analysis: build the network, run real batches forward and backward, measure every layer.
import * as tf from '@tensorflow/tfjs';
import type { Dataset, Batch } from '../data/datasets.js';
import { sampleBatches } from '../data/datasets.js';
import { deriveSeed } from '../common/random.js';
import type { NormalizedSpec } from '../spec/normalize.js';
import { activationsFor, auxIsVector, forward, initParameters, lossOf, type AuxName, type AuxTensor, type ForwardTaps, type LayerPlan, type NetworkParameters } from '../model/network.js';
import type { NormalizationKind } from '../spec/normalize.js';
import { activation } from '../model/activations.js';
import { fitLogSlope, spreadOf, mean, type LogSlopeFit, type Spread } from '../common/stats.js';
import { layerPartial, perExampleNorms, type HostReading } from './batch-stats.js';
import { combineShards, shardRanges, type ShardPartial } from './combine-shards.js';
import type { LossName } from '../../schemas/spec.js';

/** Default threshold: an entry is saturated where |φ'(h)| < this × the activation's peak derivative. */
export const DEFAULT_SATURATION_THRESHOLD = 0.01;

export interface AnalysisOptions {
  saturationThreshold?: number;
  /** Where the statistics are computed (see MeasureExtras.statistics); tests compare both. */
  statistics?: 'host' | 'device';
  /** Measure each batch as this many row shards and combine them (what workers do in parallel). */
  split?: number;
  /** Per batch, every shard's measurement, computed elsewhere (measureAnalysisShard): nothing is run here. */
  partials?: ShardPartial[][];
}

export interface LayerStats {
  index: number;
  name: string;
  inputUnits: number;
  units: number;
  activation: string;
  residualBlock: number | null;
  weightNorm: number;
  weightGradNorm: number;
  weightGradRms: number;
  weightGradMaxAbs: number;
  biasGradNorm: number | null;
  gradToWeightRatio: number | null;
  backpropNorm: number;
  backpropRms: number;
  preActivationRms: number;
  activationMean: number;
  activationStd: number;
  outputRms: number;
  deadFraction: number | null;
  saturatedFraction: number | null;
  spread?: { weightGradNorm: Spread; backpropNorm: Spread };
  /** Normalisation gamma/beta, residual gates and Fixup scalars of this layer, with their gradients. */
  auxParameters?: AuxStats[];
  /** Spread of per-example weight-gradient norms over the batch: first and last layer only. */
  perExample?: PerExampleStats;
}

export interface AuxStats {
  name: AuxName;
  size: number;
  /** The initial value (every entry of a vector starts equal: gamma 1, beta 0). */
  initial: number;
  gradNorm: number;
}

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

/**
 * A reader for the host statistics: the backend's own arrays where reads are synchronous (no copy on
 * cpu), else every tensor in one asynchronous transfer (webgpu).
 */
export async function hostReader(tensors: (tf.Tensor | null | undefined)[]): Promise<(t: tf.Tensor) => Float32Array> {
  if (!readsAsync()) return hostFloat32;
  const unique = [...new Set(tensors.filter((t): t is tf.Tensor => t != null))];
  const values = await readTogether(unique);
  const byTensor = new Map(unique.map((t, i) => [t, values[i]!]));
  return (t) => byTensor.get(t) ?? hostFloat32(t);
}

/** What measureBatch needs beyond the plain network; all optional so existing callers keep working. */
export interface MeasureExtras {
  aux?: AuxTensor[];
  normalization?: NormalizationKind;
  /** Layers whose per-example gradient norms to read back (default: the first and the last). */
  perExampleLayers?: number[];
  /**
   * Where the statistics are computed: 'host' reads the tensors (free on cpu, a memcpy on wasm) and
   * reduces them in float64 (batch-stats.ts); 'device' reduces them with tfjs ops and reads back once.
   * Default: host on the cpu and wasm backends, device elsewhere (tfjs-node, where reads are transfers).
   */
  statistics?: 'host' | 'device';
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

export interface BatchMeasurement {
  loss: number;
  readings: Reading[];
  /** Gradient norm of each auxiliary parameter, in the order of extras.aux. */
  auxGradNorms: number[];
  /** Per-example weight-gradient norms ‖∂ℓ_i/∂W‖ of the requested layers. */
  perExample: { layer: number; norms: number[] }[];
}

export interface AnalysisSummary {
  /** weightGradNorm of the first layer divided by that of the last layer. */
  firstToLastRatio: number;
  /** backpropNorm of the first layer divided by that of the last layer. */
  backpropFirstToLastRatio: number;
  weightGradLogSlope: LogSlopeFit | null;
  backpropLogSlope: LogSlopeFit | null;
}

export interface AnalysisResult {
  loss: number;
  lossSpread?: Spread;
  batchSize: number;
  batches: number;
  layers: LayerStats[];
  summary: AnalysisSummary;
  parameters?: ParametersJson;
  batch?: { x: number[][]; y: number[][] }[];
}

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

/** Per-layer raw readings from one batch (float64 after read-back): one shape for host and device statistics. */
export type Reading = HostReading;

const FIELDS = 14;

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
function scaledNormParts(t: tf.Tensor): tf.Tensor[] {
  const maxAbs = tf.max(tf.abs(t));
  return [maxAbs, tf.sum(tf.square(tf.divNoNan(t, maxAbs)))];
}

/** ‖t‖ from scaledNormParts; a non-finite max (Inf or NaN inside) is reported as such. */
function normFromParts(maxAbs: number, scaled: number): number {
  if (!Number.isFinite(maxAbs)) return maxAbs;
  return maxAbs * Math.sqrt(scaled);
}

/** What one forward + backward measurement needs: the network, its parameter tensors, the batch and options. */
type MeasureArgs = [
  layers: LayerPlan[],
  weights: tf.Tensor2D[],
  biases: (tf.Tensor1D | null)[],
  residualScale: number,
  loss: LossName,
  x: tf.Tensor2D,
  y: tf.Tensor2D | null,
  saturationThreshold: number,
  extras?: MeasureExtras,
];

/** Runs one batch forward and backward and reads every layer's statistics back in one transfer; also used by training records. */
export async function measureBatch(...args: MeasureArgs): Promise<BatchMeasurement> {
  return (await measureImpl(...withExtras(args), false)) as BatchMeasurement;
}

/**
 * measureBatch for one shard (some rows) of a batch: the sums and gradients that combineShards adds up
 * with the other shards' into the whole batch's measurement (host statistics only).
 */
export async function measureShard(...args: MeasureArgs): Promise<ShardPartial> {
  if (args[8]?.normalization === 'batch') throw new RangeError('a batch-normalised network cannot be measured in shards');
  return (await measureImpl(...withExtras(args), true)) as ShardPartial;
}

function withExtras(args: MeasureArgs): Required<MeasureArgs> {
  const [layers, weights, biases, residualScale, loss, x, y, saturationThreshold, extras = {}] = args;
  return [layers, weights, biases, residualScale, loss, x, y, saturationThreshold, extras];
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

/**
 * One batch forward and backward by tfjs autodiff: the gradients every analysis statistic is made of
 * (zero probes added to each pre-activation give ∂Loss/∂h). The caller owns every returned tensor;
 * call it inside a scope. The gradient check compares these whole tensors with finite differences.
 */
export function batchGradients(args: GradientArgs): BatchGradients {
  const { layers, weights, biases, x } = args;
  const acts = activationsFor(layers);
  const L = layers.length;
  const auxIn = args.aux ?? [];
  const taps: ForwardTaps = { pre: [], post: [], out: [], input: [] };
  const probes = layers.map((l) => tf.zeros([x.shape[0], l.units]) as tf.Tensor2D);
  const withBias = biases.filter((b): b is tf.Tensor1D => b !== null);
  const f = (...list: tf.Tensor[]): tf.Scalar => {
    const ws = list.slice(0, L) as tf.Tensor2D[];
    let k = L;
    const bs = biases.map((b) => (b ? (list[k++] as tf.Tensor1D) : null));
    const ps = list.slice(k, k + L) as tf.Tensor2D[];
    const aux = auxIn.map((p, i) => ({ layer: p.layer, name: p.name, tensor: list[k + L + i]! }));
    const run = forward({
      layers, acts, residualScale: args.residualScale, weights: ws, biases: bs, probes: ps, x, aux, normalization: args.normalization,
    });
    // Keep the taps past the gradient's own scope: the statistics read them.
    for (const key of ['pre', 'post', 'out', 'input'] as const) run.taps[key].forEach((t) => taps[key].push(tf.keep(t)));
    return lossOf(args.loss, layers[L - 1]!.activation, run.logits, run.output, args.y);
  };
  let value: tf.Scalar;
  let grads: tf.Tensor[];
  try {
    ({ value, grads } = tf.valueAndGrads(f)([...weights, ...withBias, ...probes, ...auxIn.map((p) => p.tensor)]));
  } catch (err) {
    for (const key of ['pre', 'post', 'out', 'input'] as const) taps[key].forEach((t) => { if (t !== x) t.dispose(); });
    throw err;
  } finally {
    probes.forEach((p) => p.dispose());
  }
  let k = L;
  const gradB = biases.map((b) => (b ? grads[k++]! : null));
  return { value, weights: grads.slice(0, L), biases: gradB, deltas: grads.slice(k, k + L), aux: grads.slice(k + L), taps };
}

async function measureImpl(
  layers: LayerPlan[],
  weights: tf.Tensor2D[],
  biases: (tf.Tensor1D | null)[],
  residualScale: number,
  loss: LossName,
  x: tf.Tensor2D,
  y: tf.Tensor2D | null,
  saturationThreshold: number,
  extras: MeasureExtras,
  asPartial: boolean,
): Promise<BatchMeasurement | ShardPartial> {
  const acts = activationsFor(layers);
  const L = layers.length;
  const batchSize = x.shape[0];
  const auxIn = extras.aux ?? [];
  const perExampleLayers = [...new Set(extras.perExampleLayers ?? [0, L - 1])];
  // A manual scope rather than tf.tidy: tidy may only return tensors, and we return plain numbers. It
  // spans the read-back's await on webgpu: one task runs per thread (worker or serial in-process
  // runner), so no other work creates tensors in this scope meanwhile.
  let kept: ForwardTaps = { pre: [], post: [], out: [], input: [] };
  tf.engine().startScope();
  try {
    const g = batchGradients({ layers, weights, biases, residualScale, loss, x, y, aux: auxIn, normalization: extras.normalization });
    kept = g.taps;
    const { value, deltas } = g;
    const gradW = g.weights;
    const gradB = g.biases;
    const auxGrads = g.aux;

    if (asPartial || hostStatistics(extras.statistics)) {
      // ~15 tfjs kernels per layer on the device path against one float64 pass per array here
      // (W2 on cpu + native kernels: ~300 ms of statistics down to a few ms, README performance section).
      // The whole batch is one shard: the same code measures the shards of a split batch.
      const derivatives = acts.map((act, l) => (act.derivative ? act.derivative(kept.pre[l]!) : null));
      const host = await hostReader([
        value, ...weights, ...gradW, ...gradB, ...deltas, ...kept.pre, ...kept.post, ...kept.out, ...kept.input, ...derivatives, ...auxGrads,
      ]);
      const partial: ShardPartial = {
        batch: batchSize,
        loss: host(value)[0]!,
        layers: layers.map((layer, l) => {
          const act = acts[l]!;
          const derivative = derivatives[l];
          const post = host(kept.post[l]!);
          return layerPartial({
            weight: host(weights[l]!), grad: host(gradW[l]!), biasGrad: gradB[l] ? host(gradB[l]!) : null, delta: host(deltas[l]!),
            pre: host(kept.pre[l]!), post, out: kept.out[l] === kept.post[l] ? post : host(kept.out[l]!),
            derivative: derivative ? host(derivative) : null, units: layer.units,
            // tf.less compares against a float32 scalar: round the limit the same way.
            saturationLimit: act.derivative && act.saturating ? Math.fround(saturationThreshold * act.peakDerivative) : null,
          });
        }),
        auxGrads: auxGrads.map(host),
        perExample: perExampleLayers.map((layer) => ({
          layer, norms: perExampleNorms(host(kept.input[layer]!), layers[layer]!.inputUnits, host(deltas[layer]!), layers[layer]!.units, batchSize),
        })),
      };
      return asPartial ? partial : combineShards([partial]);
    }

    const rows: tf.Tensor[] = layers.map((layer, l) => {
      const h = kept.pre[l]!;
      const post = kept.post[l]!;
      const act = acts[l]!;
      const { mean: actMean, variance: actVar } = tf.moments(post);
      let dead: tf.Tensor = tf.scalar(-1);
      let saturated: tf.Tensor = tf.scalar(-1);
      if (act.derivative) {
        const d = tf.abs(act.derivative(h));
        // A unit is dead when no example in the batch passes any gradient through it.
        dead = tf.mean(tf.cast(tf.equal(tf.max(d, 0), 0), 'float32'));
        if (act.saturating) saturated = tf.mean(tf.cast(tf.less(d, saturationThreshold * act.peakDerivative), 'float32'));
      }
      const gw = gradW[l]!;
      const gb = gradB[l];
      return tf.stack([
        ...scaledNormParts(weights[l]!), ...scaledNormParts(gw), ...(gb ? scaledNormParts(gb) : [tf.scalar(NaN), tf.scalar(NaN)]),
        ...scaledNormParts(deltas[l]!), tf.mean(tf.square(h)), actMean, actVar, tf.mean(tf.square(kept.out[l]!)), dead, saturated,
      ].map((s) => tf.reshape(s, [])));
    });
    // Per-example ‖∂ℓ_i/∂W‖ = B·‖input_i‖·‖δ_i‖ (δ = ∂Loss/∂H of the batch-mean loss): row norms of
    // max-scaled tensors, so that 1e-27 gradients do not underflow in float32; rescaled after read-back.
    const extraParts: tf.Tensor[] = [];
    for (const l of perExampleLayers) {
      const input = kept.input[l]!;
      const delta = deltas[l]!;
      const inputMax = tf.max(tf.abs(input));
      const deltaMax = tf.max(tf.abs(delta));
      extraParts.push(
        tf.reshape(inputMax, [1]), tf.reshape(deltaMax, [1]),
        tf.sqrt(tf.sum(tf.square(tf.divNoNan(input, inputMax)), 1)),
        tf.sqrt(tf.sum(tf.square(tf.divNoNan(delta, deltaMax)), 1)),
      );
    }
    for (const g of auxGrads) extraParts.push(...scaledNormParts(g).map((t) => tf.reshape(t, [1])));
    // Everything in one read-back, the loss last.
    const [all] = await readTogether([tf.concat([...rows, ...extraParts, tf.reshape(value, [1])])]) as [Float32Array];
    const lossValue = all[all.length - 1]!;
    let offset = L * FIELDS;
    const perExample = perExampleLayers.map((layer) => {
      const inputMax = all[offset]!;
      const deltaMax = all[offset + 1]!;
      const inputRows = all.subarray(offset + 2, offset + 2 + batchSize);
      const deltaRows = all.subarray(offset + 2 + batchSize, offset + 2 + 2 * batchSize);
      offset += 2 + 2 * batchSize;
      const norms = Array.from(inputRows, (a, i) => batchSize * (Number.isFinite(inputMax) ? inputMax * a : inputMax) * (Number.isFinite(deltaMax) ? deltaMax * deltaRows[i]! : deltaMax));
      return { layer, norms };
    });
    const auxGradNorms = auxGrads.map(() => {
      const n = normFromParts(all[offset]!, all[offset + 1]!);
      offset += 2;
      return n;
    });
    const readings: Reading[] = layers.map((_, l) => {
      const r = all.subarray(l * FIELDS, (l + 1) * FIELDS);
      return {
        weightNorm: normFromParts(r[0]!, r[1]!),
        gradNorm: normFromParts(r[2]!, r[3]!),
        gradMaxAbs: r[2]!,
        biasGradNorm: normFromParts(r[4]!, r[5]!),
        deltaNorm: normFromParts(r[6]!, r[7]!),
        preMeanSq: r[8]!,
        actMean: r[9]!,
        actVar: r[10]!,
        outMeanSq: r[11]!,
        dead: r[12]!,
        saturated: r[13]!,
      };
    });
    return { loss: lossValue, readings, auxGradNorms, perExample };
  } finally {
    // The first layer's input is the caller's x itself (unless Fixup shifted it): not ours to dispose.
    kept.pre.concat(kept.post, kept.out, kept.input).forEach((t) => { if (t !== x) t.dispose(); });
    tf.engine().endScope();
  }
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

/**
 * Rows [start, end) of each batch forward and backward on the network's parameters: a BatchMeasurement
 * per batch, or with `asPartial` the ShardPartial combineShards needs. Leaves no tensors behind.
 */
async function measureRows(
  spec: NormalizedSpec,
  params: NetworkParameters,
  batches: Batch[],
  targets: { values: Float32Array; width: number }[],
  options: AnalysisOptions,
  start: number,
  end: number,
  asPartial: boolean,
): Promise<(BatchMeasurement | ShardPartial)[]> {
  const { layers } = params;
  const inputUnits = layers[0]!.inputUnits;
  const weights = layers.map((l) => tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units]));
  const biases = layers.map((l) => (params.biases[l.index] ? tf.tensor1d(params.biases[l.index]!) : null));
  const aux: AuxTensor[] = (params.aux ?? []).map((p) => ({
    layer: p.layer, name: p.name, tensor: auxIsVector(p.name) ? tf.tensor1d(p.values) : tf.scalar(p.values[0]!),
  }));
  const saturationThreshold = options.saturationThreshold ?? spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD;
  const extras: MeasureExtras = { aux, normalization: spec.network.normalization, ...(options.statistics ? { statistics: options.statistics } : {}) };
  const out: (BatchMeasurement | ShardPartial)[] = [];
  try {
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      const s = Math.min(start, batch.size), e = Math.min(end, batch.size);
      const width = targets[i]!.width;
      const x = tf.tensor2d(batch.x.subarray(s * inputUnits, e * inputUnits), [e - s, inputUnits]);
      const y = spec.loss === 'output' ? null : tf.tensor2d(targets[i]!.values.subarray(s * width, e * width), [e - s, width]);
      try {
        const measure = asPartial ? measureShard : measureBatch;
        out.push(await measure(layers, weights, biases, spec.network.residual.scale, spec.loss, x, y, saturationThreshold, extras));
      } finally {
        x.dispose();
        y?.dispose();
      }
    }
  } finally {
    weights.forEach((w) => w.dispose());
    biases.forEach((b) => b?.dispose());
    aux.forEach((p) => p.tensor.dispose());
  }
  return out;
}

/**
 * One shard of an analysis split across workers: rows [start, end) of shard `index` of `count` of
 * every batch the full analysis draws, measured as combineShards needs them (one entry per batch).
 * The other workers measure the other shards; runAnalysis({ partials }) puts them together.
 */
export async function measureAnalysisShard(spec: NormalizedSpec, dataset: Dataset, params: NetworkParameters, index: number, count: number, options: AnalysisOptions = {}): Promise<ShardPartial[]> {
  if (spec.network.normalization === 'batch') throw new RangeError('a batch-normalised network cannot be measured in shards');
  const batches = sampleBatches(dataset, spec.data.batchSize, spec.data.batches, deriveSeed(spec.seed, 'batches'));
  const targets = batches.map((b) => targetsFor(dataset, spec.loss, b));
  const [start, end] = shardRanges(spec.data.batchSize, count)[index] ?? [0, 0];
  return (await measureRows(spec, params, batches, targets, options, start, end, true)) as ShardPartial[];
}

/** Each batch measured in `split` row shards, one after another, and recombined exactly. */
async function splitBatches(
  spec: NormalizedSpec, params: NetworkParameters, batches: Batch[], targets: { values: Float32Array; width: number }[], options: AnalysisOptions, split: number,
): Promise<BatchMeasurement[]> {
  const out: BatchMeasurement[] = [];
  for (let i = 0; i < batches.length; i++) {
    const shards: ShardPartial[] = [];
    for (const [start, end] of shardRanges(batches[i]!.size, split)) {
      shards.push(...((await measureRows(spec, params, [batches[i]!], [targets[i]!], options, start, end, true)) as ShardPartial[]));
    }
    out.push(combineShards(shards));
  }
  return out;
}

/** Runs the analysis a normalised spec describes on its dataset. Leaves no tensors behind. */
export async function runAnalysis(
  spec: NormalizedSpec,
  dataset: Dataset,
  options: AnalysisOptions = {},
  params: NetworkParameters = initParameters(spec.network, spec.seed),
): Promise<{ result: AnalysisResult; timings: AnalysisTimings; input: InputMoments }> {
  const t0 = performance.now();
  const { layers } = params;
  const batches = sampleBatches(dataset, spec.data.batchSize, spec.data.batches, deriveSeed(spec.seed, 'batches'));
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
  const input: InputMoments = { mean: count > 0 ? sum / count : 0, meanSquare: count > 0 ? sumSq / count : 0 };
  const targets = batches.map((b) => targetsFor(dataset, spec.loss, b));
  const auxParams = params.aux ?? [];
  const t1 = performance.now();
  const split = options.split ?? 1;
  const perBatch: BatchMeasurement[] = options.partials
    ? options.partials.map((shards) => combineShards(shards))
    : split > 1
      ? await splitBatches(spec, params, batches, targets, options, split)
      : (await measureRows(spec, params, batches, targets, options, 0, Infinity, false)) as BatchMeasurement[];
  const t2 = performance.now();

  const B = spec.data.batchSize;
  const layerStats: LayerStats[] = layers.map((layer, l) => {
    const r = (key: keyof Reading): number[] => perBatch.map((p) => p.readings[l]![key]);
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
    const auxHere = auxParams.flatMap((p, i) => (p.layer === l ? [{ p, i }] : []));
    if (auxHere.length > 0) {
      stats.auxParameters = auxHere.map(({ p, i }) => ({
        name: p.name, size: p.values.length, initial: p.values[0]!, gradNorm: mean(perBatch.map((b) => b.auxGradNorms[i]!)),
      }));
    }
    const examples = perBatch.flatMap((b) => b.perExample.find((e) => e.layer === l)?.norms ?? []);
    if (examples.length > 0) {
      const sp = spreadOf(examples);
      const rmsPerBatch = perBatch.map((b) => Math.sqrt(mean((b.perExample.find((e) => e.layer === l)?.norms ?? [NaN]).map((v) => v * v))));
      // The batch gradient is the mean of the per-example ones, so its norm over their RMS is in [0, 1].
      const coherence = mean(gradNorms.map((g, i) => g / rmsPerBatch[i]!));
      stats.perExample = { ...sp, rms: Math.sqrt(mean(examples.map((v) => v * v))), coherence: Number.isNaN(coherence) ? null : coherence };
    }
    return stats;
  });

  const last = layerStats[layerStats.length - 1]!;
  const first = layerStats[0]!;
  const losses = perBatch.map((p) => p.loss);
  const result: AnalysisResult = {
    loss: mean(losses),
    batchSize: B,
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
    result.parameters = parametersJson(layers, params.weights, params.biases, auxParams);
  }
  if (spec.include.includes('batch')) {
    result.batch = batches.map((b, i) => ({ x: toRows(b.x, layers[0]!.inputUnits), y: toRows(targets[i]!.values, targets[i]!.width) }));
  }
  const t3 = performance.now();
  return { result, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: t3 - t0 }, input };
}
