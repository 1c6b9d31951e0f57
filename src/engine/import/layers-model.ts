// tfjs LayersModels (Keras models converted for tfjs, or saved by tfjs-layers): loaded by tfjs-layers itself
// (tf.models.modelFromJSON and loadWeights, what tf.loadLayersModel does, from model.json and its weight files) and run layer
// by layer in the model's own order, so that a zero probe can be added at each parameterised layer's output
// and measure.ts sees the same Measurable as for an ONNX graph. Layout is the model's own (channels-last
// for Keras convolutions). BatchNormalization runs on batch statistics ('batch') or its moving ones
// ('running'); dropout is off; the moving statistics a training-mode pass updates are put back afterwards.
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../common/errors.js';
import { ModelFormatError, UnsupportedOperatorError } from './errors.js';
import { convByPatches, dilateFilter } from './ops.js';
import type { ImportedLayer, Measurable, OutputKind, ParameterInfo, RunOptions } from './types.js';

/** model.json as tfjs writes it: the topology and the manifest of weight files. */
export interface LayersModelJson {
  readonly modelTopology: unknown;
  readonly weightsManifest: readonly { paths: readonly string[]; weights: readonly tf.io.WeightsManifestEntry[] }[];
  readonly format?: string;
}

export interface LayersModelFiles {
  readonly modelJson: LayersModelJson;
  /** Weight files by the path model.json names them with. */
  readonly weights: ReadonlyMap<string, Uint8Array>;
}

/** Layer classes whose parameters and call the importer has checked against tfjs's own gradients. */
export const SUPPORTED_LAYERS: readonly string[] = [
  'InputLayer', 'Dense', 'Conv2D', 'BatchNormalization', 'Add', 'Activation', 'Flatten', 'Dropout', 'ReLU',
  'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'Concatenate', 'Reshape', 'LayerNormalization',
];

type KerasLayer = tf.layers.Layer;

const BYTES_PER: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** The bytes a manifest group's weights take (quantised ones at their stored width); undefined for strings. */
function groupBytes(weights: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const w of weights) {
    const per = BYTES_PER[w.quantization?.dtype ?? w.dtype];
    if (per === undefined || !Array.isArray(w.shape)) return undefined;
    total += w.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}

function weightData(files: LayersModelFiles): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of files.modelJson.weightsManifest ?? []) {
    specs.push(...group.weights);
    let got = 0;
    for (const path of group.paths) {
      const bytes = files.weights.get(path);
      if (!bytes) throw new ModelFormatError(`weights ${path}`, `model.json names the weight file ${JSON.stringify(path)}, which was not given`);
      parts.push(bytes);
      got += bytes.length;
    }
    const want = groupBytes(group.weights);
    if (want !== undefined && want !== got) {
      throw new ModelFormatError(`weights ${group.paths.join(', ')}`, `the weight files ${group.paths.map((p) => JSON.stringify(p)).join(', ')} hold ${got} bytes; their manifest entries need ${want} (truncated, or not this model's)`);
    }
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const data = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { data.set(p, at); at += p.length; }
  return { specs, data: data.buffer };
}

export class LayersModelImport implements Measurable {
  readonly format = 'tfjs-layers' as const;
  readonly parameters: ParameterInfo[];
  readonly layers: ImportedLayer[];
  readonly outputKind: OutputKind;

  constructor(readonly model: tf.LayersModel) {
    const bad = model.layers.find((l) => !SUPPORTED_LAYERS.includes(l.getClassName()));
    if (bad) throw new UnsupportedOperatorError(bad.getClassName(), bad.name, 'a Keras layer class the importer does not measure');
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new ModelFormatError('modelTopology', `the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; one of each is measured`);
    }
    this.parameters = model.trainableWeights.map((w) => ({ name: w.originalName, shape: w.shape.map((d) => d ?? 0) }));
    this.layers = model.layers
      .filter((l) => l.trainableWeights.length > 0)
      .map((l, index) => ({ index, name: l.name, op: l.getClassName(), output: l.name, parameters: l.trainableWeights.map((w) => w.originalName) }));
    const last = model.layers[model.layers.length - 1]!;
    const activation = (last.getConfig() as { activation?: unknown }).activation;
    this.outputKind = activation === 'softmax' ? 'probabilities' : 'logits';
  }

  /** The declared input, batch first (null: a dynamic dimension), as analyzeImported reads it. */
  get inputs(): { name: string; shape: (number | null)[] }[] {
    return this.model.inputs.map((t, i) => ({ name: this.model.inputNames[i] ?? t.name, shape: [...t.shape] }));
  }

  parameterTensors(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Layer by layer in the model's (topological) order; each layer reads the outputs of its inbound layers. */
  run(input: tf.Tensor, options: RunOptions): { output: tf.Tensor; captured: Map<string, tf.Tensor> } {
    const declared = this.model.inputs[0]!.shape;
    if (input.rank !== declared.length || declared.some((d, i) => i > 0 && d !== null && d !== input.shape[i])) {
      throw new SpecError('data.inputs', `the model's input has shape [${declared.map((d) => d ?? '?').join(', ')}]; the data has [${input.shape.join(', ')}]`);
    }
    const saved = options.batchNorm === 'batch' ? this.model.nonTrainableWeights.map((w) => tf.keep(w.read().clone())) : [];
    try {
      const out = new Map<string, tf.Tensor>();
      for (const layer of this.model.layers) out.set(layer.name, this.apply(layer, out, input, options));
      const captured = new Map<string, tf.Tensor>();
      for (const name of options.capture ?? []) captured.set(name, out.get(name)!);
      return { output: out.get(this.model.outputLayers[0]!.name)!, captured };
    } finally {
      // Only a training-mode pass moved them ('running' saved nothing and must write nothing back).
      if (saved.length > 0) this.model.nonTrainableWeights.forEach((w, i) => { w.write(saved[i]!); });
      for (const t of saved) t.dispose();
    }
  }

  private apply(layer: KerasLayer, out: ReadonlyMap<string, tf.Tensor>, input: tf.Tensor, options: RunOptions): tf.Tensor {
    if (layer.getClassName() === 'InputLayer') return input;
    const node = layer.inboundNodes[0]!;
    const ins = node.inboundLayers.map((l) => out.get(l.name) ?? (l.getClassName() === 'InputLayer' ? input : undefined));
    if (ins.some((t) => t === undefined)) throw new ModelFormatError('modelTopology', `layer ${layer.name} reads a layer that comes after it`);
    const training = options.batchNorm === 'batch' && layer.getClassName() === 'BatchNormalization';
    const patches = layer.getClassName() === 'Conv2D' && tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) === undefined;
    const y = patches ? conv2dByPatches(layer, ins[0]!) : layer.apply(ins.length === 1 ? ins[0]! : (ins as tf.Tensor[]), { training }) as tf.Tensor;
    const probe = options.probes?.get(layer.name);
    return probe ? tf.add(y, probe) : y;
  }

  dispose(): void {
    this.model.dispose();
  }
}

interface Conv2DConfig {
  strides: number[]; padding: string; dataFormat?: string; dilationRate: number[]; useBias: boolean;
}

/**
 * A Keras Conv2D computed as patches times its kernel, for backends without conv2d's filter gradient (wasm):
 * the same padding, strides, dilation, bias and activation as the layer, on its own variables.
 */
function conv2dByPatches(layer: KerasLayer, x: tf.Tensor): tf.Tensor {
  const config = layer.getConfig() as unknown as Conv2DConfig;
  if (config.dataFormat === 'channelsFirst' || config.padding === 'causal') {
    throw new UnsupportedOperatorError('Conv2D', layer.name, `${config.dataFormat === 'channelsFirst' ? 'channelsFirst' : 'causal padding'} on a backend without conv2d gradients`);
  }
  const [kernel, bias] = layer.trainableWeights.map((w) => w.read());
  const filter = dilateFilter(kernel as tf.Tensor4D, config.dilationRate);
  const strides = config.strides as [number, number];
  let input = x as tf.Tensor4D;
  if (config.padding === 'same') {
    const pads = [1, 2].map((axis, i) => {
      const size = x.shape[axis]!;
      const out = Math.ceil(size / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + filter.shape[i]! - size);
      return [Math.floor(total / 2), total - Math.floor(total / 2)] as [number, number];
    });
    input = tf.pad(input, [[0, 0], pads[0]!, pads[1]!, [0, 0]]);
  }
  let y = convByPatches(input, filter, strides);
  if (config.useBias && bias) y = tf.add(y, bias);
  const activation = (layer as unknown as { activation?: { apply(t: tf.Tensor): tf.Tensor } }).activation;
  return activation ? activation.apply(y) : y;
}

interface TopologyLayer { class_name?: unknown; name?: unknown; config?: { name?: unknown } }

/**
 * A layer class the importer does not measure is refused by name before tfjs-layers reads the topology, so
 * that one tfjs does not know either (a custom Keras layer) is the same UnsupportedOperatorError, not a load failure.
 */
function refuseUnknownClasses(topology: unknown): void {
  const top = topology as { model_config?: unknown; class_name?: unknown; config?: unknown };
  const model = (top.model_config ?? top) as { config?: unknown };
  const config = model.config as { layers?: unknown } | unknown[] | undefined;
  const layers = (Array.isArray(config) ? config : config?.layers) as TopologyLayer[] | undefined;
  if (!Array.isArray(layers)) return;
  for (const layer of layers) {
    const className = typeof layer?.class_name === 'string' ? layer.class_name : undefined;
    if (className && !SUPPORTED_LAYERS.includes(className)) {
      const name = String(layer.name ?? layer.config?.name ?? '?');
      throw new UnsupportedOperatorError(className, name, 'a Keras layer class the importer does not measure');
    }
  }
}

/**
 * What tf.loadLayersModel does, in two steps so that a failure frees what was built: the model from its
 * topology (tf.models.modelFromJSON), then its weights decoded and loaded strictly (every variable named once,
 * optimizer weights left out); weights that name no variable, or lack one, free the model's variables.
 */
async function loadModel(topology: object, specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer): Promise<tf.LayersModel> {
  const fail = (err: unknown) => new ModelFormatError('model.json', `tfjs-layers could not load the model: ${(err as Error).message}`);
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topology } as unknown as tf.io.ModelJSON);
  } catch (err) {
    throw fail(err);
  }
  let decoded: tf.NamedTensorMap = {};
  try {
    decoded = tf.io.decodeWeights(data, specs);
    const weights: tf.NamedTensorMap = {};
    for (const spec of specs) if (spec.group !== 'optimizer') weights[spec.name] = decoded[spec.name]!;
    model.loadWeights(weights, true);
    return model;
  } catch (err) {
    model.dispose();
    throw fail(err);
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/** Loads a LayersModel from model.json and its weight files with tfjs-layers (topology, then weights: loadModel). */
export async function importLayersModel(files: LayersModelFiles): Promise<LayersModelImport> {
  if (typeof files.modelJson !== 'object' || files.modelJson === null || !files.modelJson.modelTopology) {
    throw new ModelFormatError('model.json', 'model.json has no modelTopology (not a tfjs LayersModel)');
  }
  refuseUnknownClasses(files.modelJson.modelTopology);
  const { specs, data } = weightData(files);
  const model = await loadModel(files.modelJson.modelTopology as object, specs, data);
  try {
    return new LayersModelImport(model);
  } catch (err) {
    model.dispose();
    throw err;
  }
}
