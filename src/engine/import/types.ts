// The shapes an imported model shows the measurement (ONNX graphs and tfjs LayersModels alike): its
// parameters, its layers, what its output means, and one batch through it with probes and captures.
import type * as tf from '@tensorflow/tfjs';

/** A parameterised node: where parameters meet values computed from the data. */
export interface ImportedLayer {
  readonly index: number;
  /** The node's name (PyTorch: the module path and op, `/layer1/conv1/Conv`). */
  readonly name: string;
  readonly op: string;
  /** The value whose backward gradient is the layer's backpropNorm (the node's first output). */
  readonly output: string;
  /** Parameters (initializer names) this node reads, directly or through parameter-only nodes (a Transpose of a weight). */
  readonly parameters: readonly string[];
}

export interface ParameterInfo {
  readonly name: string;
  readonly shape: readonly number[];
}

/** What the graph computes at its end, so that the loss reads it as PyTorch users mean it. */
export type OutputKind = 'logits' | 'probabilities' | 'log_probabilities';

/** What measure needs of an imported model (ONNX or tfjs LayersModel). */
export interface Measurable {
  readonly format: 'onnx' | 'tfjs-layers';
  readonly parameters: readonly ParameterInfo[];
  readonly layers: readonly ImportedLayer[];
  readonly outputKind: OutputKind;
  /** The parameter variables, in `parameters` order. */
  parameterTensors(): tf.Variable[];
  /** The graph on one batch, with probes added at layer outputs and those outputs captured. */
  run(input: tf.Tensor, options: RunOptions): { output: tf.Tensor; captured: Map<string, tf.Tensor> };
}

export interface RunOptions {
  readonly batchNorm: 'batch' | 'running';
  readonly probes?: ReadonlyMap<string, tf.Tensor>;
  readonly capture?: readonly string[];
}

