// What a training run trains, whatever the network is: one flat parameter list for autodiff and the
// optimizer, a forward pass, a measurement per record, and the rows the records report. The training loop
// (training-run.ts) sees only this; the dense shorthand's is here, a layer graph's in graph-trainable.ts.
import * as tf from '@tensorflow/tfjs';
import type { NormalizedSpec } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import type { ActivationSpec } from '../model/activations.js';
import { activation } from '../model/activations.js';
import { activationsFor, auxParameterCount, forward, initParameters } from '../model/network.js';
import { packParameters, parameterTensors, unpackParameters } from '../model/parameter-pack.js';
import { measureBatch, parametersJson, type ParametersJson, type Reading } from '../measure/measure.js';
import { estimateCost } from '../spec/cost.js';
import type { JsonNumber } from '../diagnosis/checks.js';

/** A row of result.layers: the layer the records' entries with the same index describe. */
export interface TrainingLayer {
  index: number;
  name: string;
  inputUnits: number;
  units: number;
  activation: string;
  /** Layer graphs only (as on analysis rows): the row's path, kind, output shape, block and whether it is a projection shortcut. */
  path?: string;
  kind?: string;
  outputShape?: number[];
  block?: string | null;
  shortcut?: boolean;
}

export interface TrainingLayerRecord {
  index: number;
  weightNorm: JsonNumber;
  weightGradNorm: JsonNumber;
  backpropNorm: JsonNumber;
  updateToWeightRatio: JsonNumber | null;
  deadFraction: JsonNumber | null;
  saturatedFraction: JsonNumber | null;
}

/** One recurrent layer at one recorded step (records[].throughTime, TrainingThroughTimeRecordSchema). */
export interface TrainingThroughTimeRecord {
  /** The layer's row in result.layers. */
  layer: number;
  /** ‖∂L/∂h_t‖ for t = 0 … T−1 on the record's minibatch, normalised as result.throughTime's norms. */
  norms: JsonNumber[];
  memoryHorizon: number | null;
  /** lstm's forget / gru's update gate: mean over steps, examples and units; null for simple_rnn. */
  gateMean: JsonNumber | null;
}

/** One batch measured on the current parameters: its loss and a reading per row. */
export interface TrainableMeasurement {
  loss: number;
  readings: Reading[];
}

export interface MeasureOnArgs {
  list: tf.Tensor[];
  x: tf.Tensor;
  y: tf.Tensor2D | null;
  saturationThreshold: number;
  /** The training step: its dropout masks (a layer graph's mode "train" dropout layers). */
  step: number;
}

export interface Trainable {
  spec: NormalizedSpec;
  dataset: Dataset;
  /** One example's shape as the network reads it ([features], or [h, w, c] NHWC). */
  inputShape: number[];
  /** Entries of one example. */
  inputSize: number;
  outputActivation: ActivationSpec;
  layers: TrainingLayer[];
  /** The row firstToLastRatio puts over the last one: the first on the main path (projection shortcuts are not). */
  firstRow: number;
  /** Position in the parameter list of each row's weight tensor (for update-to-weight ratios), by row. */
  weightSlots: number[];
  /** Numbers one copy of the parameters adds to include: ["parameters"]. */
  parameterValues: number;
  /** The parameters drawn from the seed as new tensors, in the order autodiff and the optimizer see them. */
  initialList(): tf.Tensor[];
  /** The initial parameters in the include: ["parameters"] layout (host values, no tensors). */
  initialParameters(): ParametersJson;
  /**
   * Training-mode forward pass on `list` (normalisation uses the rows' own statistics). With a step, dropout
   * layers in mode "train" drop with that step's masks; without one (evaluations) they are the identity. Call inside a tidy.
   */
  forward(list: tf.Tensor[], x: tf.Tensor, step?: number): { logits: tf.Tensor2D; output: tf.Tensor2D };
  /** One batch forward and backward, read on the host; leaves no tensors. */
  measure(a: MeasureOnArgs): Promise<TrainableMeasurement>;
  /**
   * Layer graphs with recurrent layers: per recurrent layer the gradient through time on the record's batch
   * (one more forward and backward pass with probes on every h_t); absent for networks without one.
   */
  throughTime?(a: MeasureOnArgs): Promise<TrainingThroughTimeRecord[]>;
  /** Per-row record entries from a measurement (backpropNorm scaled by √B as in analyses). */
  records(readings: Reading[], batchSize: number, ratios: number[] | null): TrainingLayerRecord[];
  /** The current parameters in the include: ["parameters"] layout. */
  parametersOf(list: tf.Tensor[]): Promise<ParametersJson>;
}

/** Host copies of tensors (async: webgpu cannot read synchronously in Node). */
export async function hostValues(list: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(list.map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
}

/** The depth/width shorthand's network: W, b and the auxiliary parameters of model/network.ts. */
export function denseTrainable(spec: NormalizedSpec, dataset: Dataset): Trainable {
  const init = initParameters(spec.network, spec.seed);
  const { layers } = init;
  const acts = activationsFor(layers);
  const template = parameterTensors(init);
  // Only the layout (bias mask, aux names) is kept: the tensors themselves are released now.
  packParameters(template).forEach((t) => t.dispose());
  const unpack = (list: tf.Tensor[]) => unpackParameters(list, template);
  const { parameters } = estimateCost(spec);
  return {
    spec, dataset,
    inputShape: [layers[0]!.inputUnits],
    inputSize: layers[0]!.inputUnits,
    outputActivation: layers[layers.length - 1]!.activation,
    layers: layers.map((l) => ({
      index: l.index, name: l.name, inputUnits: l.inputUnits, units: l.units,
      activation: l.activation.alpha !== undefined ? `${l.activation.name}(${l.activation.alpha})` : l.activation.name,
    })),
    firstRow: 0,
    weightSlots: layers.map((_, l) => l),
    parameterValues: parameters + auxParameterCount(spec.network),
    initialList: () => packParameters(parameterTensors(init)),
    initialParameters: () => parametersJson(layers, init.weights, init.biases, init.aux ?? []),
    forward(list, x) {
      const p = unpack(list);
      const { logits, output } = forward({
        layers, acts, residualScale: spec.network.residual.scale, weights: p.weights, biases: p.biases,
        probes: null, x: x as tf.Tensor2D, aux: p.aux, normalization: spec.network.normalization,
      });
      return { logits, output };
    },
    async measure({ list, x, y, saturationThreshold }) {
      const p = unpack(list);
      return measureBatch({
        layers, weights: p.weights, biases: p.biases, aux: p.aux, residualScale: spec.network.residual.scale, loss: spec.loss,
        x: x as tf.Tensor2D, y, saturationThreshold, normalization: spec.network.normalization, perExampleLayers: [],
      });
    },
    records: (readings, B, ratios) => layers.map((layer, l) => {
      const r = readings[l]!;
      const act = activation(layer.activation);
      return {
        index: l, weightNorm: r.weightNorm, weightGradNorm: r.gradNorm, backpropNorm: Math.sqrt(B) * r.deltaNorm,
        updateToWeightRatio: ratios ? ratios[l]! : null,
        deadFraction: act.derivative ? r.dead : null,
        saturatedFraction: act.derivative && act.saturating ? r.saturated : null,
      };
    }),
    async parametersOf(list) {
      const values = await hostValues(list);
      const p = unpack(list);
      const at = new Map(list.map((t, i) => [t, values[i]!]));
      return parametersJson(
        layers, p.weights.map((w) => at.get(w)!), p.biases.map((b) => (b ? at.get(b)! : null)),
        p.aux.map((a) => ({ layer: a.layer, name: a.name, values: at.get(a.tensor)! })),
      );
    },
  };
}
