// The network part of a layer-graph spec (network.layers or network.preset): the shorthand fields refused,
// the preset written out, the input shape from the data, and the graph normalised (spec/graph-normalize.ts).
import type { NetworkInput } from '../../schemas/spec.js';
import type { LayerInput } from '../../schemas/layers.js';
import type { DatasetShape } from '../data/datasets.js';
import { normalizeActivation, type ActivationSpec } from '../model/activations.js';
import { normalizeInitializer } from '../model/initializers.js';
import { SpecError } from '../common/errors.js';
import { normalizeGraph } from './graph-normalize.js';
import { DEFAULT_BLOCKS_PER_STAGE, DEFAULT_STAGES, expandPreset } from './presets.js';
import type { LayerInits, NormalizedGraph } from './graph-types.js';
import { checkTokenInput, expandTransformerBlocks, transformerPlans, type WrittenBlock } from './transformer-spec.js';

/** Whether the request describes a layer graph rather than the depth/width shorthand. */
export function isGraphInput(net: NetworkInput): boolean {
  return net.layers !== undefined || net.preset !== undefined;
}

const SHORTHAND_ONLY = ['depth', 'width', 'widths', 'outputUnits', 'residual', 'normalization'] as const;

export interface GraphNetworkParts {
  graph: NormalizedGraph;
  /** The layers as the normalised spec returns them (a preset written out). */
  layers: LayerInput[];
  outputActivation: ActivationSpec;
  useBias: boolean;
  init: LayerInits;
}

/** The layers a preset or network.layers gives, with network.activation standing in for the preset's relu. */
function layersOf(net: NetworkInput, blocks: WrittenBlock[]): LayerInput[] {
  if (net.preset === undefined) {
    const written = expandTransformerBlocks(net.layers!);
    blocks.push(...written.blocks);
    return written.layers;
  }
  if (net.layers !== undefined) throw new SpecError('network.preset', 'network.preset and network.layers are exclusive: a preset is written out as layers');
  const stages = net.stages ?? DEFAULT_STAGES;
  const layers = expandPreset(net.preset, stages, net.blocksPerStage ?? DEFAULT_BLOCKS_PER_STAGE);
  if (net.activation === undefined) return layers;
  if (Array.isArray(net.activation)) throw new SpecError('network.activation', 'network.activation with a preset is one activation for every layer, not a list');
  const act = net.activation;
  const swap = <T extends { activation?: unknown }>(l: T): T => (l.activation === 'relu' ? { ...l, activation: act } : l);
  return layers.map((l) => (l.kind === 'residual' ? { ...swap(l), layers: l.layers.map(swap) } : swap(l)));
}

/** The input shape: network.input, else the data's, checked against the data's features. */
function inputShapeOf(net: NetworkInput, dataset: DatasetShape): number[] {
  const shape = net.input ?? dataset.inputShape ?? [dataset.inputSize];
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== dataset.inputSize) {
    throw new SpecError('network.input', `network.input [${shape.join(', ')}] has ${size} entries but the data's examples have ${dataset.inputSize} features`);
  }
  return [...shape];
}

export function normalizeGraphNetwork(
  net: NetworkInput,
  ctx: { dataset: DatasetShape; outputUnits: number; anyOutput: boolean; defaultOutputActivation: ActivationSpec; maxDepth: number; maxWidth: number },
): GraphNetworkParts {
  for (const key of SHORTHAND_ONLY) {
    if (net[key] !== undefined) throw new SpecError(`network.${key}`, `network.${key} belongs to the depth/width shorthand and cannot be combined with network.${net.preset !== undefined ? 'preset' : 'layers'}`);
  }
  if (net.layers !== undefined && net.activation !== undefined) {
    throw new SpecError('network.activation', 'network.activation belongs to the depth/width shorthand (or a preset); with network.layers give each layer its activation');
  }
  if (net.preset === undefined && (net.stages !== undefined || net.blocksPerStage !== undefined)) {
    throw new SpecError(net.stages !== undefined ? 'network.stages' : 'network.blocksPerStage', 'network.stages and network.blocksPerStage describe a preset: set network.preset');
  }
  const blocks: WrittenBlock[] = [];
  const layers = layersOf(net, blocks);
  const init: LayerInits = {
    weights: normalizeInitializer(net.init?.weights ?? (net.preset !== undefined ? 'he_normal' : 'glorot_uniform'), 'network.init.weights'),
    bias: normalizeInitializer(net.init?.bias ?? 'zeros', 'network.init.bias'),
  };
  const useBias = net.useBias ?? true;
  const graph = normalizeGraph(layers, inputShapeOf(net, ctx.dataset), {
    init, useBias, outputUnits: ctx.outputUnits, anyOutput: ctx.anyOutput, maxDepth: ctx.maxDepth, maxWidth: ctx.maxWidth,
  });
  // The head's activation: its own if it names one, else network.outputActivation, else the loss's default.
  if (blocks.length > 0) graph.transformerBlocks = transformerPlans(blocks, graph);
  checkTokenInput(graph, ctx.dataset.normalization);
  const head = layers[layers.length - 1]!;
  const outputActivation = head.activation !== undefined
    ? normalizeActivation(head.activation, `network.layers[${layers.length - 1}].activation`)
    : net.outputActivation !== undefined ? normalizeActivation(net.outputActivation, 'network.outputActivation') : ctx.defaultOutputActivation;
  if (outputActivation.name === 'softmax' && graph.outputUnits < 2) throw new SpecError('network.outputActivation', 'softmax needs at least 2 output units');
  graph.layers[graph.layers.length - 1]!.activation = outputActivation;
  for (const row of graph.rows) {
    if (row.node !== graph.layers[graph.layers.length - 1] && row.node.activation.name === 'softmax') {
      throw new SpecError('network.layers', `${row.node.path}: softmax is only allowed on the last layer`);
    }
  }
  return { graph, layers: layers.map((l, i) => (i === layers.length - 1 ? { ...l, activation: { ...outputActivation } } : l)), outputActivation, useBias, init };
}
