// One batch through an imported model, forward and backward: the loss as PyTorch users compute it
// (categorical_crossentropy on logits is torch.nn.functional.cross_entropy; a graph ending in Softmax or
// LogSoftmax is read as (log-)probabilities; mse is F.mse_loss), tf.variableGrads of it with respect to every
// parameter and to a zero probe added at each layer's output (its gradient is the backward signal there,
// backpropNorm), and per-parameter and per-layer statistics accumulated in float64 after read-back.
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../common/errors.js';
import type { Measurable, OutputKind } from './types.js';
import { MODEL_LOSSES, type ModelLoss } from '../../schemas/vocabulary.js';

export const IMPORTED_LOSSES = MODEL_LOSSES;
export type ImportedLoss = ModelLoss;

export interface MeasureOptions {
  readonly input: tf.Tensor;
  /** categorical_crossentropy: class indices [N] (any numeric dtype) or target distributions [N, C]; mse: values shaped as the output. */
  readonly target: tf.Tensor;
  readonly loss: ImportedLoss;
  /** 'batch' (default): BatchNormalization on batch statistics, the training-mode state; 'running': stored statistics. */
  readonly batchNorm?: 'batch' | 'running';
}

export interface ParameterStats {
  readonly name: string;
  readonly shape: readonly number[];
  readonly norm: number;
  readonly gradNorm: number;
  readonly gradRms: number;
  readonly gradMaxAbs: number;
}

export interface ImportedLayerStats {
  readonly index: number;
  readonly name: string;
  readonly op: string;
  readonly outputShape: readonly number[];
  readonly parameters: ParameterStats[];
  /** ‖∂loss/∂output‖ over the whole batch (the loss is the batch mean). */
  readonly backpropNorm: number;
  readonly backpropRms: number;
  readonly activationMean: number;
  readonly activationStd: number;
  readonly activationMaxAbs: number;
  /** Share of the output's entries that are exactly 0. */
  readonly zeroFraction: number;
}

export interface ImportedMeasurement {
  readonly format: Measurable['format'];
  readonly loss: number;
  readonly lossName: ImportedLoss;
  readonly outputKind: OutputKind;
  readonly batchNorm: 'batch' | 'running';
  readonly layers: ImportedLayerStats[];
  /** Every parameter, in the model's order (each also appears under its layer). */
  readonly parameters: ParameterStats[];
}

/** The batch-mean loss on the model's output, as PyTorch computes it. */
export function importedLoss(output: tf.Tensor, target: tf.Tensor, loss: ImportedLoss, kind: OutputKind): tf.Scalar {
  return tf.tidy(() => {
    if (loss === 'mse') {
      if (target.shape.join() !== output.shape.join()) throw new SpecError('data.targets', `mse targets must be shaped as the output [${output.shape.join(', ')}]; got [${target.shape.join(', ')}]`);
      return tf.mean(tf.square(tf.sub(output, target.toFloat()))) as tf.Scalar;
    }
    if (output.rank !== 2) throw new SpecError('loss', `categorical_crossentropy needs an output of shape [batch, classes]; the model's is [${output.shape.join(', ')}]`);
    const [n, classes] = output.shape as [number, number];
    const labels = target.rank === 1 ? tf.oneHot(tf.cast(target, 'int32'), classes).toFloat() : target.toFloat();
    if (labels.shape[0] !== n || labels.shape[1] !== classes) throw new SpecError('data.targets', `targets must be ${n} class indices or a [${n}, ${classes}] distribution; got [${target.shape.join(', ')}]`);
    const logp = kind === 'logits' ? tf.logSoftmax(output) : kind === 'probabilities' ? tf.log(output) : output;
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, logp), 1))) as tf.Scalar;
  });
}

/** float64 statistics of one read-back tensor. */
function stats(data: Float32Array | Int32Array | Uint8Array): { sumSq: number; sum: number; maxAbs: number; zeros: number } {
  let sumSq = 0;
  let sum = 0;
  let maxAbs = 0;
  let zeros = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    sumSq += v * v;
    sum += v;
    const a = Math.abs(v);
    if (a > maxAbs || Number.isNaN(a)) maxAbs = a;
    if (v === 0) zeros++;
  }
  return { sumSq, sum, maxAbs, zeros };
}

/** Shapes of the layer outputs for this input shape (one forward pass, cached by the caller). */
function layerShapes(model: Measurable, input: tf.Tensor, batchNorm: 'batch' | 'running'): number[][] {
  return tf.tidy(() => {
    const { captured } = model.run(input, { batchNorm, capture: model.layers.map((l) => l.output) });
    return model.layers.map((l) => captured.get(l.output)!.shape);
  });
}

/** Measures one batch: loss, per-parameter gradients and per-layer backward signals and activations. */
export async function measureImported(model: Measurable, options: MeasureOptions): Promise<ImportedMeasurement> {
  const batchNorm = options.batchNorm ?? 'batch';
  const shapes = layerShapes(model, options.input, batchNorm);
  const probes = tf.tidy(() => model.layers.map((_, i) => tf.variable(tf.zeros(shapes[i]!), true)));
  const probeMap = new Map(model.layers.map((l, i) => [l.output, probes[i]! as tf.Tensor]));
  const params = model.parameterTensors();
  const kept: tf.Tensor[] = [];
  let lossValue: tf.Scalar | undefined;
  let grads: tf.NamedTensorMap = {};
  try {
    ({ value: lossValue, grads } = tf.variableGrads(() => {
      const { output, captured } = model.run(options.input, { batchNorm, probes: probeMap, capture: model.layers.map((l) => l.output) });
      for (const l of model.layers) kept.push(tf.keep(captured.get(l.output)!));
      return importedLoss(output, options.target, options.loss, model.outputKind);
    }, [...params, ...probes]));
    const reads = await Promise.all([
      lossValue.data(), ...params.map((p) => grads[p.name]!.data()), ...params.map((p) => p.data()),
      ...probes.map((p) => grads[p.name]!.data()), ...kept.map((t) => t.data()),
    ]);
    return summarise(model, reads, shapes, { loss: options.loss, batchNorm });
  } finally {
    lossValue?.dispose();
    for (const g of Object.values(grads)) g.dispose();
    for (const t of kept) t.dispose();
    for (const p of probes) p.dispose();
  }
}

type Read = Float32Array | Int32Array | Uint8Array;

function summarise(model: Measurable, reads: Read[], shapes: number[][], opts: { loss: ImportedLoss; batchNorm: 'batch' | 'running' }): ImportedMeasurement {
  const P = model.parameters.length;
  const L = model.layers.length;
  const parameters: ParameterStats[] = model.parameters.map((p, i) => {
    const g = stats(reads[1 + i]!);
    const w = stats(reads[1 + P + i]!);
    const n = reads[1 + i]!.length;
    return { name: p.name, shape: p.shape, norm: Math.sqrt(w.sumSq), gradNorm: Math.sqrt(g.sumSq), gradRms: Math.sqrt(g.sumSq / n), gradMaxAbs: g.maxAbs };
  });
  const byName = new Map(parameters.map((p) => [p.name, p]));
  const layers = model.layers.map((l, i): ImportedLayerStats => {
    const back = reads[1 + 2 * P + i]!;
    const act = reads[1 + 2 * P + L + i]!;
    const b = stats(back);
    const a = stats(act);
    const mean = a.sum / act.length;
    return {
      index: l.index, name: l.name, op: l.op, outputShape: shapes[i]!,
      parameters: l.parameters.map((name) => byName.get(name)!),
      backpropNorm: Math.sqrt(b.sumSq), backpropRms: Math.sqrt(b.sumSq / back.length),
      activationMean: mean, activationStd: Math.sqrt(Math.max(0, a.sumSq / act.length - mean * mean)),
      activationMaxAbs: a.maxAbs, zeroFraction: a.zeros / act.length,
    };
  });
  return {
    format: model.format, loss: reads[0]![0]!, lossName: opts.loss, outputKind: model.outputKind, batchNorm: opts.batchNorm,
    layers, parameters,
  };
}
