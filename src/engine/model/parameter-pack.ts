// A network's parameters as tensors, and the one flat order (W, then the biases that exist, then the auxiliary parameters) autodiff and optimizers see them in.
import * as tf from '@tensorflow/tfjs';
import { auxIsVector, type AuxTensor, type NetworkParameters } from './network.js';

/** Everything trainable as tensors: W and b per layer (null where a layer has no bias) and the auxiliary parameters. */
export interface ParameterTensors {
  weights: tf.Tensor2D[];
  biases: (tf.Tensor1D | null)[];
  aux: AuxTensor[];
}

/** The parameters as one list: every W in layer order, then every existing b, then every auxiliary parameter. */
export function packParameters(p: ParameterTensors): tf.Tensor[] {
  return [...p.weights, ...p.biases.filter((b): b is tf.Tensor1D => b !== null), ...p.aux.map((a) => a.tensor)];
}

/** How many tensors packParameters gives for parameters shaped like `template`. */
export function packedLength(template: ParameterTensors): number {
  return template.weights.length + template.biases.filter((b) => b !== null).length + template.aux.length;
}

/**
 * The inverse of packParameters: `list` (e.g. the same parameters updated, or their gradients) laid out
 * as `template` is, with a null bias wherever the template has none and the template's aux names.
 */
export function unpackParameters(list: readonly tf.Tensor[], template: ParameterTensors): ParameterTensors {
  const expected = packedLength(template);
  if (list.length !== expected) throw new RangeError(`unpackParameters: ${list.length} tensors for a layout of ${expected}`);
  const L = template.weights.length;
  let next = L;
  const take = (): tf.Tensor => list[next++]!;
  const biases = template.biases.map((b) => (b ? (take() as tf.Tensor1D) : null));
  const aux = template.aux.map((a) => ({ layer: a.layer, name: a.name, tensor: take() }));
  return { weights: list.slice(0, L) as tf.Tensor2D[], biases, aux };
}

/** Tensors of a network's plain parameters (the caller disposes them with disposeParameters). */
export function parameterTensors(params: NetworkParameters): ParameterTensors {
  const { layers } = params;
  return {
    weights: layers.map((l) => tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units])),
    biases: layers.map((l) => (params.biases[l.index] ? tf.tensor1d(params.biases[l.index]!) : null)),
    aux: (params.aux ?? []).map((p) => ({
      layer: p.layer, name: p.name, tensor: auxIsVector(p.name) ? tf.tensor1d(p.values) : tf.scalar(p.values[0]!),
    })),
  };
}

export function disposeParameters(p: ParameterTensors): void {
  packParameters(p).forEach((t) => t.dispose());
}
