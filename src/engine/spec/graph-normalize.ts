// A layer graph's spec made whole: defaults, paths, limits, and every layer's output shape inferred before
// anything runs (a 400 naming the layer and the two shapes that disagree); rows, parameters and FLOPs counted.
import type { LayerInput, LayerInitInput, PlainLayerInput } from '../../schemas/layers.js';
import type { ActivationSpec } from '../model/activations.js';
import { normalizeActivation } from '../model/activations.js';
import { normalizeInitializer } from '../model/initializers.js';
import { SpecError } from '../common/errors.js';
import { recurrentNode } from './recurrent-normalize.js';
import type {
  BlockScalars, BranchNode, ConvNode, DenseNode, GraphNode, LayerInits, NormalizedGraph, NormParam, ResidualNode, RowPlan, WeightNode,
} from './graph-types.js';
import { sequenceNode, sequenceRowCounts, type SequenceBuilder } from './transformer-spec.js';

/** Limits of a layer graph (besides SpecLimits' maxDepth for weight layers and maxWidth for units and filters). */
export const GRAPH_LIMITS = {
  /** Layers in all, those inside residual blocks included. */
  maxLayers: 600,
  maxKernel: 15,
  maxStride: 8,
  maxDilation: 8,
  maxPoolSize: 32,
  /** Height and width of any image tensor. */
  maxSpatial: 512,
  /** Entries of any one example's tensor (h·w·c). */
  maxElements: 4_000_000,
};

export interface GraphDefaults {
  init: LayerInits;
  useBias: boolean;
  /** Units of a last dense layer that does not say (the targets' width). */
  outputUnits: number;
  /** Loss "output": the network may end in any number of units. */
  anyOutput: boolean;
  maxWidth: number;
  maxDepth: number;
}

const SHORT: Record<string, string> = {
  dense: 'dense', conv2d: 'conv', max_pool: 'maxpool', avg_pool: 'avgpool', global_avg_pool: 'gap', flatten: 'flatten',
  batch_norm: 'bn', layer_norm: 'ln', activation: 'act', dropout: 'dropout', residual: 'block',
  simple_rnn: 'rnn', lstm: 'lstm', gru: 'gru',
  embedding: 'embed', positional_encoding: 'pos', attention: 'attn',
};

const LINEAR: ActivationSpec = { name: 'linear' };
const shapeText = (s: number[]): string => `[${s.join(', ')}]`;
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Builds the graph's nodes with their shapes; throws SpecError naming the field (network.layers[i]…) and the layer's path. */
/** A request's k or [kh, kw] as [height, width]. */
const pair = (v: number | number[]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0]!, v[1]!]);

class GraphBuilder {
  rows: RowPlan[] = [];
  norms: NormParam[] = [];
  blocks: BlockScalars[] = [];
  parameters = 0;
  weightFlops = 0;
  elements = 0;
  layerCount = 0;
  private paths = new Set<string>();

  constructor(private readonly d: GraphDefaults) {}

  fail(field: string, path: string, message: string): never {
    throw new SpecError(field, `${field} (${path}): ${message}`);
  }

  limit(field: string, path: string, what: string, value: number, max: number): void {
    if (value > max) this.fail(`${field}.${what}`, path, `${what} is ${value} but the limit is ${max}`);
  }

  scope(layers: readonly LayerInput[], input: number[], field: string, prefix: string, block: string | null, lastDense: boolean): { nodes: GraphNode[]; shape: number[] } {
    const counters = new Map<string, number>();
    const nodes: GraphNode[] = [];
    let shape = input;
    layers.forEach((raw, i) => {
      const f = `${field}[${i}]`;
      const n = (counters.get(raw.kind) ?? 0) + 1;
      counters.set(raw.kind, n);
      const name = raw.name ?? `${SHORT[raw.kind]}${n}`;
      const path = prefix ? `${prefix}.${name}` : name;
      if (this.paths.has(path)) this.fail(`${f}.name`, path, `the path ${path} is used by another layer; give the layers distinct names`);
      this.paths.add(path);
      if (++this.layerCount > GRAPH_LIMITS.maxLayers) this.fail(field, path, `the graph has more than ${GRAPH_LIMITS.maxLayers} layers (the limit)`);
      const node = raw.kind === 'residual'
        ? this.residual(raw, shape, f, path)
        : this.plain(raw, shape, f, path, block, lastDense && i === layers.length - 1);
      nodes.push(node);
      shape = node.outputShape;
    });
    return { nodes, shape };
  }

  private activationOf(raw: { activation?: unknown }, f: string): ActivationSpec {
    if (raw.activation === undefined) return LINEAR;
    const a = normalizeActivation(raw.activation as Parameters<typeof normalizeActivation>[0], `${f}.activation`);
    return a;
  }

  inits(raw: { init?: LayerInitInput }, f: string): LayerInits {
    return {
      weights: raw.init?.weights !== undefined ? normalizeInitializer(raw.init.weights, `${f}.init.weights`) : this.d.init.weights,
      bias: raw.init?.bias !== undefined ? normalizeInitializer(raw.init.bias, `${f}.init.bias`) : this.d.init.bias,
    };
  }

  private spatial(f: string, path: string, kind: string, shape: number[]): [number, number, number] {
    if (shape.length !== 3) this.fail(f, path, `${kind} needs an image input [height, width, channels] but gets ${shapeText(shape)}`);
    return shape as [number, number, number];
  }

  private checkOut(f: string, path: string, kind: string, input: number[], out: number[]): number[] {
    if (out.some((v) => !(v >= 1))) this.fail(f, path, `${kind} maps ${shapeText(input)} to ${shapeText(out)}: the input is too small for its window`);
    if (out.length === 3) {
      this.limit(f, path, 'height', out[0]!, GRAPH_LIMITS.maxSpatial);
      this.limit(f, path, 'width', out[1]!, GRAPH_LIMITS.maxSpatial);
    }
    if (size(out) > GRAPH_LIMITS.maxElements) this.fail(f, path, `its output ${shapeText(out)} has ${size(out)} entries per example, over the limit ${GRAPH_LIMITS.maxElements}`);
    this.elements += size(out);
    return out;
  }

  private plain(raw: PlainLayerInput, shape: number[], f: string, path: string, block: string | null, last: boolean): BranchNode {
    const base = { path, name: raw.name ?? path.split('.').pop()!, activation: this.activationOf(raw, f), inputShape: shape };
    switch (raw.kind) {
      case 'dense': {
        // A [time, features] sequence: dense acts on the last axis (as Keras's Dense), [T, F] → [T, units].
        if (shape.length !== 1 && shape.length !== 2) this.fail(f, path, `dense needs a flat [features] input (or a [time, features] sequence) but gets ${shapeText(shape)}; put flatten or global_avg_pool before it`);
        if (raw.units === undefined && !last) this.fail(`${f}.units`, path, 'units may only be omitted on the last layer (it then takes the width of the targets)');
        const units = raw.units ?? this.d.outputUnits;
        this.limit(f, path, 'units', units, this.d.maxWidth);
        const node: DenseNode = { ...base, kind: 'dense', units, useBias: raw.useBias ?? this.d.useBias, init: this.inits(raw, f), outputShape: [] };
        node.outputShape = this.checkOut(f, path, 'dense', shape, [...shape.slice(0, -1), units]);
        this.row(node, block, false, f);
        return node;
      }
      case 'conv2d': {
        const [h, w, c] = this.spatial(f, path, 'conv2d', shape);
        const stride = raw.stride ?? 1, dilation = raw.dilation ?? 1, padding = raw.padding ?? 'same';
        this.limit(f, path, 'filters', raw.filters, this.d.maxWidth);
        const kernel = pair(raw.kernel);
        for (const k of kernel) this.limit(f, path, 'kernel', k, GRAPH_LIMITS.maxKernel);
        this.limit(f, path, 'stride', stride, GRAPH_LIMITS.maxStride);
        this.limit(f, path, 'dilation', dilation, GRAPH_LIMITS.maxDilation);
        if (typeof padding === 'number') this.limit(f, path, 'padding', padding, GRAPH_LIMITS.maxKernel);
        if (dilation > 1 && stride > 1) this.fail(`${f}.dilation`, path, `dilation ${dilation} needs stride 1 (tfjs convolves with one or the other), not ${stride}`);
        const node: ConvNode = {
          ...base, kind: 'conv2d', filters: raw.filters, kernel, stride, padding, dilation,
          useBias: raw.useBias ?? this.d.useBias, init: this.inits(raw, f), outputShape: [],
        };
        const side = (n: number, k: number): number => (padding === 'same' ? Math.ceil(n / stride) : Math.floor((n + 2 * (padding === 'valid' ? 0 : padding) - ((k - 1) * dilation + 1)) / stride) + 1);
        node.outputShape = this.checkOut(f, path, 'conv2d', shape, [side(h, kernel[0]), side(w, kernel[1]), raw.filters]);
        void c;
        this.row(node, block, false, f);
        return node;
      }
      case 'max_pool':
      case 'avg_pool': {
        const [h, w, c] = this.spatial(f, path, raw.kind, shape);
        const size = pair(raw.size);
        const stride: [number, number] = raw.stride !== undefined ? [raw.stride, raw.stride] : size;
        for (const s of size) this.limit(f, path, 'size', s, GRAPH_LIMITS.maxPoolSize);
        for (const s of stride) this.limit(f, path, 'stride', s, GRAPH_LIMITS.maxStride);
        const side = (n: number, axis: 0 | 1): number => Math.floor((n - size[axis]) / stride[axis]) + 1;
        const out = this.checkOut(f, path, raw.kind, shape, [side(h, 0), side(w, 1), c]);
        return { ...base, kind: raw.kind, size, stride, outputShape: out };
      }
      case 'global_avg_pool': {
        // A [time, features] sequence is averaged over time.
        if (shape.length === 2) return { ...base, kind: raw.kind, outputShape: this.checkOut(f, path, raw.kind, shape, [shape[1]!]) };
        const [, , c] = this.spatial(f, path, 'global_avg_pool', shape);
        return { ...base, kind: raw.kind, outputShape: this.checkOut(f, path, raw.kind, shape, [c]) };
      }
      case 'flatten':
        return { ...base, kind: raw.kind, outputShape: this.checkOut(f, path, raw.kind, shape, [size(shape)]) };
      case 'batch_norm':
      case 'layer_norm': {
        const before = this.rows[this.rows.length - 1];
        if (!before) this.fail(f, path, `${raw.kind} needs a dense or conv2d layer before it (its gamma and beta are reported with that layer)`);
        const channels = shape[shape.length - 1]!;
        this.norms.push({ path, kind: raw.kind, channels, row: before.index });
        this.parameters += 2 * channels;
        return { ...base, kind: raw.kind, outputShape: this.checkOut(f, path, raw.kind, shape, [...shape]) };
      }
      case 'activation':
        if (raw.activation === undefined) this.fail(`${f}.activation`, path, 'an activation layer needs its activation, e.g. { "kind": "activation", "activation": "relu" }');
        return { ...base, kind: raw.kind, outputShape: this.checkOut(f, path, raw.kind, shape, [...shape]) };
      case 'dropout':
        return { ...base, kind: raw.kind, rate: raw.rate, mode: raw.mode ?? 'inference', outputShape: [...shape] };
      case 'simple_rnn':
      case 'lstm':
      case 'gru':
        return recurrentNode(this.recurrentBuild(), raw, shape, f, path, block);
      case 'embedding':
      case 'positional_encoding':
      case 'attention': {
        const node = sequenceNode(raw, base, f, this.sequenceBuilder(), this.d.maxWidth);
        node.outputShape = this.checkOut(f, path, raw.kind, shape, node.outputShape);
        if (node.kind !== 'positional_encoding') this.row(node, block, false, f);
        return node;
      }
    }
  }

  private residual(raw: Extract<LayerInput, { kind: 'residual' }>, shape: number[], f: string, path: string): ResidualNode {
    const variant = raw.variant ?? 'plain';
    // ReZero and SkipInit start their gate at 0 (the block is the identity); Fixup's multiplier and plain α at 1.
    const scale = raw.scale ?? (variant === 'rezero' || variant === 'skipinit' ? 0 : 1);
    if (!Number.isFinite(scale)) this.fail(`${f}.scale`, path, 'scale must be a finite number');
    const shortcut = raw.shortcut ?? 'identity';
    const firstRow = this.rows.length;
    const { nodes, shape: out } = this.scope(raw.layers, shape, `${f}.layers`, path, path, false);
    const branchRows = this.rows.slice(firstRow).map((r) => r.index);
    if (variant !== 'plain') {
      if (branchRows.length === 0) this.fail(`${f}.variant`, path, `variant ${variant} needs a dense or conv2d layer in the branch (its scalars are reported with the branch's last one)`);
      this.blocks.push({ path, variant, branchRows, row: branchRows[branchRows.length - 1]! });
      // A gate or multiplier per block; Fixup adds two scalar biases per branch row.
      this.parameters += 1 + (variant === 'fixup' ? 2 * branchRows.length : 0);
    }
    const node: ResidualNode = {
      path, name: raw.name ?? path, kind: 'residual', activation: this.activationOf(raw, f), inputShape: shape, outputShape: out,
      layers: nodes as BranchNode[], shortcut, scale, variant, projection: null,
    };
    const same = out.length === shape.length && out.every((v, i) => v === shape[i]);
    if (shortcut === 'identity') {
      if (!same) this.fail(`${f}.shortcut`, path, `an identity shortcut needs the branch to keep its input's shape, but the branch maps ${shapeText(shape)} to ${shapeText(out)}; use shortcut "projection"`);
    } else {
      node.projection = this.projection(shape, out, f, path);
    }
    this.elements += size(out);
    return node;
  }

  /** A 1×1 conv2d with the stride that maps the input's height and width onto the branch's, or dense on flat input. */
  private projection(input: number[], out: number[], f: string, path: string): ConvNode | DenseNode {
    const base = { path: `${path}.shortcut`, name: 'shortcut', activation: LINEAR, inputShape: input, outputShape: out, useBias: false, init: this.d.init };
    let node: ConvNode | DenseNode;
    if (input.length === 3 && out.length === 3) {
      const stride = Math.max(1, Math.round(input[0]! / out[0]!));
      if (Math.ceil(input[0]! / stride) !== out[0] || Math.ceil(input[1]! / stride) !== out[1]) {
        this.fail(`${f}.shortcut`, path, `no strided 1×1 projection maps ${shapeText(input)} onto the branch's output ${shapeText(out)}`);
      }
      node = { ...base, kind: 'conv2d', filters: out[2]!, kernel: [1, 1], stride, padding: 'same', dilation: 1 };
    } else if (input.length === 1 && out.length === 1) {
      node = { ...base, kind: 'dense', units: out[0]! };
    } else {
      this.fail(`${f}.shortcut`, path, `a projection shortcut maps images to images or vectors to vectors, not ${shapeText(input)} to ${shapeText(out)}`);
    }
    this.row(node, path, true, f);
    return node;
  }

  /** The builder as spec/recurrent-normalize.ts sees it: counters written back through the accessors. */
  private recurrentBuild() {
    const self = this;
    return {
      fail: (field: string, path: string, message: string): never => self.fail(field, path, message),
      limit: (field: string, path: string, what: string, value: number, max: number) => self.limit(field, path, what, value, max),
      rows: self.rows, init: self.d.init, useBias: self.d.useBias, maxWidth: self.d.maxWidth, maxDepth: self.d.maxDepth,
      get parameters() { return self.parameters; }, set parameters(v: number) { self.parameters = v; },
      get weightFlops() { return self.weightFlops; }, set weightFlops(v: number) { self.weightFlops = v; },
      get elements() { return self.elements; }, set elements(v: number) { self.elements = v; },
    };
  }

  private sequenceBuilder(): SequenceBuilder {
    return { fail: (a, b, c) => this.fail(a, b, c), limit: (...a) => this.limit(...a), inits: (r, f) => this.inits(r, f), useBias: this.d.useBias };
  }

  private row(node: WeightNode, block: string | null, shortcut: boolean, f: string): void {
    const outSize = size(node.outputShape);
    if (node.kind === 'embedding' || node.kind === 'attention') {
      const c = sequenceRowCounts(node);
      this.rows.push({ index: this.rows.length, node, block, shortcut, fanIn: c.fanIn, fanOut: c.fanOut, weightCount: c.weightCount, outputSize: outSize });
      if (this.rows.length > this.d.maxDepth) this.fail(f, node.path, `the graph has more than ${this.d.maxDepth} weight layers (the limit, GRADLENS_MAX_DEPTH)`);
      this.parameters += c.weightCount + c.biasCount;
      this.weightFlops += c.flops;
      return;
    }
    const inCh = node.inputShape[node.inputShape.length - 1]!;
    const k2 = node.kind === 'conv2d' ? node.kernel[0] * node.kernel[1] : 1;
    const units = node.kind === 'conv2d' ? node.filters : node.units;
    const weightCount = k2 * inCh * units;
    this.rows.push({ index: this.rows.length, node, block, shortcut, fanIn: k2 * inCh, fanOut: k2 * units, weightCount, outputSize: outSize });
    if (this.rows.length > this.d.maxDepth) this.fail(f, node.path, `the graph has more than ${this.d.maxDepth} dense/conv2d layers (the limit, GRADLENS_MAX_DEPTH)`);
    this.parameters += weightCount + (node.useBias ? units : 0);
    // One multiply-add per weight per output position: 2·kh·kw·c_in·c_out·h_out·w_out for a convolution.
    this.weightFlops += 2 * weightCount * (outSize / units);
  }
}

/** Normalises `layers` read from `input` (one example's shape); the last layer must be dense and give the output. */
export function normalizeGraph(layers: readonly LayerInput[], input: number[], d: GraphDefaults): NormalizedGraph {
  const b = new GraphBuilder(d);
  input.forEach((v, i) => { if (input.length === 3 && i < 2 && v > GRAPH_LIMITS.maxSpatial) throw new SpecError('network.input', `network.input[${i}] is ${v} but the limit is ${GRAPH_LIMITS.maxSpatial}`); });
  const { nodes, shape } = b.scope(layers, input, 'network.layers', '', null, true);
  const last = nodes[nodes.length - 1]!;
  if (last.kind !== 'dense') {
    throw new SpecError(`network.layers[${nodes.length - 1}]`, `network.layers[${nodes.length - 1}] (${last.path}): the last layer must be dense (the head that gives the ${d.outputUnits} outputs), not ${last.kind}`);
  }
  if (!d.anyOutput && shape[0] !== d.outputUnits) {
    throw new SpecError(`network.layers[${nodes.length - 1}].units`, `network.layers[${nodes.length - 1}] (${last.path}): the network ends in ${shape[0]} units but the targets have ${d.outputUnits} values`);
  }
  return {
    input, layers: nodes, rows: b.rows, norms: b.norms, blocks: b.blocks, outputUnits: shape[0]!,
    parameters: b.parameters, weightFlopsPerExample: b.weightFlops, elementsPerExample: b.elements,
  };
}
