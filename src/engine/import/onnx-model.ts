// An imported ONNX graph made ready to run: constants folded at import (Constant nodes, integer
// initializers, the arithmetic on them), every float initializer that is a parameter made a tf.Variable
// under its initializer name (for PyTorch exports, the state_dict name), the layers found (the nodes where
// parameters meet the data), and a forward pass that executes the remaining nodes with tfjs ops.
import * as tf from '@tensorflow/tfjs';
import { capEcho, LimitError, SpecError } from '../common/errors.js';
import { ModelFormatError, UnsupportedOperatorError } from './errors.js';
import { sizeOf, type HostTensor } from './host.js';
import { execute, foldable, isSupported, type Value } from './ops.js';
import type { ImportedLayer, OutputKind, ParameterInfo, RunOptions } from './types.js';
import { parseOnnx, type OnnxGraph, type OnnxNode, type OnnxValueInfo } from './onnx-parse.js';

export interface ForwardOptions {
  readonly batchNorm?: 'batch' | 'running';
  /** Tensors to use in place of the parameter variables (what tf.valueAndGrads differentiates). */
  readonly parameterValues?: ReadonlyMap<string, tf.Tensor>;
  /** Zero tensors added to these values (by value name) so that their gradient is the backward signal there. */
  readonly probes?: ReadonlyMap<string, tf.Tensor>;
  /** Value names to hand back besides the graph outputs. */
  readonly capture?: readonly string[];
}

export interface ForwardResult {
  readonly outputs: tf.Tensor[];
  readonly captured: Map<string, tf.Tensor>;
}

const FLOAT = 'float';
/** Variable names are global in tfjs: each imported model gets its own prefix. */
let modelsImported = 0;

export class OnnxModel {
  readonly format = 'onnx' as const;
  readonly parameters: ParameterInfo[];
  readonly layers: ImportedLayer[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly outputKind: OutputKind;
  /** Nodes folded into constants at import. */
  readonly foldedNodes: number;
  /** No BatchNormalization node and Conv weights renamed onnx::Conv_*: an eval-mode export folded BN into Conv. */
  readonly batchNormFolded: boolean;
  private readonly variables = new Map<string, tf.Variable>();
  private readonly constants = new Map<string, HostTensor>();
  private readonly plan: OnnxNode[];
  private readonly consumers = new Map<string, number>();
  private disposed = false;

  /** `variables: false` prepares the graph without creating tensors (a description, on a thread with no backend). */
  constructor(readonly graph: OnnxGraph, options: { variables?: boolean } = {}) {
    this.inputs = graph.inputs;
    this.outputs = graph.outputs;
    const first = graph.nodes.find((n) => !isSupported(n.opType));
    if (first) throw new UnsupportedOperatorError(first.opType, first.name);
    const parameterNames = findParameters(graph);
    for (const [name, t] of graph.initializers) {
      if (!parameterNames.has(name)) this.constants.set(name, t);
    }
    this.plan = this.fold(graph.nodes);
    this.parameters = [...parameterNames].map((name) => ({ name, shape: [...graph.initializers.get(name)!.dims] }));
    const prefix = `onnx${++modelsImported}`;
    for (const p of options.variables === false ? [] : this.parameters) {
      const t = graph.initializers.get(p.name)!;
      this.variables.set(p.name, tf.tidy(() => tf.variable(tf.tensor(t.data as Float32Array, [...t.dims], 'float32'), true, `${prefix}/${p.name}`)));
    }
    this.layers = findLayers(this.plan, graph, parameterNames);
    for (const node of this.plan) for (const i of node.inputs) this.consumers.set(i, (this.consumers.get(i) ?? 0) + 1);
    this.outputKind = outputKindOf(graph, this.plan);
    this.foldedNodes = graph.nodes.length - this.plan.length;
    this.batchNormFolded = !graph.nodes.some((n) => n.opType === 'BatchNormalization')
      && [...graph.initializers.keys()].some((n) => /^onnx::Conv_/.test(n));
  }

  /** Evaluates at import every node whose inputs are all constants; returns the nodes left to run. */
  private fold(nodes: readonly OnnxNode[]): OnnxNode[] {
    const plan: OnnxNode[] = [];
    for (const node of nodes) {
      const inputs = node.inputs.map((i) => (i === '' ? undefined : this.constants.get(i)));
      const allConstant = node.inputs.every((i, k) => i === '' || inputs[k] !== undefined);
      if (allConstant && node.opType !== 'Shape' && node.opType !== 'Size' && foldable(node, inputs)) {
        const outs = execute(node, inputs, { opset: this.graph.opset, batchNorm: 'batch', used: node.outputs.map(() => true) });
        node.outputs.forEach((name, k) => { if (outs[k] !== undefined) this.constants.set(name, outs[k] as HostTensor); });
      } else {
        plan.push(node);
      }
    }
    return plan;
  }

  /** The parameter variables by initializer name (kept by the model; dispose() frees them). */
  variable(name: string): tf.Variable {
    const v = this.variables.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** The parameter tensors in `parameters` order. */
  parameterTensors(): tf.Variable[] {
    return this.parameters.map((p) => this.variable(p.name));
  }

  /** Checks a batch against the declared input shape (the batch dimension may differ; the rest must match). */
  checkInput(input: tf.Tensor, index = 0): void {
    const declared = this.inputs[index]?.shape;
    if (!declared) return;
    const wrong = input.rank !== declared.length || declared.some((d, i) => i > 0 && d !== null && d !== input.shape[i]);
    if (wrong) {
      throw new SpecError('data.inputs', `the model's input ${JSON.stringify(this.inputs[index]!.name)} has shape [${declared.map((d) => d ?? '?').join(', ')}]; the data has [${input.shape.join(', ')}]`);
    }
  }

  /** Runs the graph on `inputs` (one tensor per graph input, in order); the caller owns tidying. */
  forward(inputs: readonly tf.Tensor[], options: ForwardOptions = {}): ForwardResult {
    if (this.disposed) throw new Error('the model was disposed');
    if (inputs.length !== this.inputs.length) throw new SpecError('data', `the model has ${this.inputs.length} inputs; ${inputs.length} given`);
    inputs.forEach((x, i) => this.checkInput(x, i));
    const env = new Map<string, Value>(this.constants);
    for (const [name, v] of this.variables) env.set(name, options.parameterValues?.get(name) ?? v);
    this.inputs.forEach((info, i) => env.set(info.name, inputs[i]!));
    const wanted = new Set([...this.outputs.map((o) => o.name), ...(options.capture ?? [])]);
    const ctx = { opset: this.graph.opset, batchNorm: options.batchNorm ?? 'batch' } as const;
    for (const node of this.plan) {
      const ins = node.inputs.map((i) => (i === '' ? undefined : env.get(i)));
      const used = node.outputs.map((o) => o !== '' && ((this.consumers.get(o) ?? 0) > 0 || wanted.has(o)));
      const outs = executeOrExplain(node, ins, { ...ctx, used });
      node.outputs.forEach((name, k) => {
        const v = outs[k];
        if (name === '' || v === undefined) return;
        const probe = options.probes?.get(name);
        env.set(name, probe && v instanceof tf.Tensor ? tf.add(v, probe) : v);
      });
    }
    const asTensor = (name: string): tf.Tensor => {
      const v = env.get(name);
      if (v === undefined) throw new Error(`value ${name} was not computed`);
      if (v instanceof tf.Tensor) return v;
      return tf.tensor(Array.from(v.data as ArrayLike<number>), [...v.dims], v.kind === FLOAT ? 'float32' : 'int32');
    };
    const captured = new Map<string, tf.Tensor>();
    for (const name of options.capture ?? []) captured.set(name, asTensor(name));
    return { outputs: this.outputs.map((o) => asTensor(o.name)), captured };
  }

  /** One input batch through the graph (Measurable, measure.ts). */
  run(input: tf.Tensor, options: RunOptions): { output: tf.Tensor; captured: Map<string, tf.Tensor> } {
    const { outputs, captured } = this.forward([input], options);
    return { output: outputs[0]!, captured };
  }

  /** Parameter count (elements). */
  parameterCount(): number {
    return this.parameters.reduce((s, p) => s + sizeOf(p.shape), 0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/**
 * Float initializers are parameters, except BatchNormalization's running mean and variance (state, not
 * parameters: PyTorch's named_parameters() leaves them out too) and initializers only used where a shape,
 * an index or a bound is read (Reshape's shape, Slice's starts, Clip's min and max, …).
 */
function findParameters(graph: OnnxGraph): Set<string> {
  const stateOnly = new Set<string>();
  const parameterUse = new Set<string>();
  for (const node of graph.nodes) {
    node.inputs.forEach((name, slot) => {
      if (!graph.initializers.has(name)) return;
      const isBnState = node.opType === 'BatchNormalization' && (slot === 3 || slot === 4);
      const isShapeSlot = ['Reshape', 'Slice', 'Pad', 'Squeeze', 'Unsqueeze', 'Split', 'Expand', 'ConstantOfShape', 'Tile', 'Clip'].includes(node.opType) && slot > 0;
      (isBnState || isShapeSlot ? stateOnly : parameterUse).add(name);
    });
  }
  return new Set([...graph.initializers].filter(([name, t]) => t.kind === FLOAT && parameterUse.has(name)).map(([name]) => name));
}

/** Layers: nodes reading the data and at least one parameter (through parameter-only nodes too), in graph order. */
function findLayers(plan: readonly OnnxNode[], graph: OnnxGraph, parameterNames: ReadonlySet<string>): ImportedLayer[] {
  const fromData = new Set(graph.inputs.map((i) => i.name));
  const paramsOf = new Map<string, string[]>([...parameterNames].map((n) => [n, [n]]));
  const claimed = new Set<string>();
  const layers: ImportedLayer[] = [];
  for (const node of plan) {
    const data = node.inputs.some((i) => fromData.has(i));
    const params = [...new Set(node.inputs.flatMap((i) => paramsOf.get(i) ?? []))];
    if (data) {
      for (const o of node.outputs) fromData.add(o);
      const own = params.filter((p) => !claimed.has(p));
      if (own.length > 0) {
        own.forEach((p) => claimed.add(p));
        layers.push({ index: layers.length, name: node.name, op: node.opType, output: node.outputs[0]!, parameters: own });
      }
    } else if (params.length > 0) {
      for (const o of node.outputs) paramsOf.set(o, params);
    }
  }
  return layers;
}

/** Softmax or LogSoftmax at the end (through Identity) means the output is already (log-)probabilities. */
function outputKindOf(graph: OnnxGraph, plan: readonly OnnxNode[]): OutputKind {
  let name = graph.outputs[0]!.name;
  for (;;) {
    const node = plan.find((n) => n.outputs.includes(name));
    if (!node) return 'logits';
    if (node.opType === 'Identity') { name = node.inputs[0]!; continue; }
    return node.opType === 'Softmax' ? 'probabilities' : node.opType === 'LogSoftmax' ? 'log_probabilities' : 'logits';
  }
}

/** Parses, checks and prepares an ONNX model; throws ModelFormatError or UnsupportedOperatorError. */
export function importOnnx(bytes: Uint8Array): OnnxModel {
  return new OnnxModel(parseOnnx(bytes));
}

/** What a client is told about an uploaded model: its interface, parameters and layers (no tensors made). */
export interface ModelDescription {
  readonly format: 'onnx' | 'tfjs-layers';
  /** The default-domain ONNX opset; 0 for a tfjs LayersModel (layers-bundle.ts describes those). */
  readonly opset: number;
  readonly producer: string;
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly outputKind: OutputKind;
  readonly parameters: readonly ParameterInfo[];
  readonly parameterCount: number;
  readonly layers: readonly { name: string; op: string; parameters: readonly string[] }[];
  readonly batchNormFolded: boolean;
  /** Operators the importer does not execute (always empty: a model with one is refused). */
  readonly unsupported: readonly { operator: string; node: string }[];
}

/** Parses, checks and describes an ONNX model without running it; throws as importOnnx does. */
export function describeOnnx(bytes: Uint8Array): ModelDescription {
  const graph = parseOnnx(bytes);
  const model = new OnnxModel(graph, { variables: false });
  return {
    format: 'onnx', opset: graph.opset, producer: graph.producer, inputs: graph.inputs, outputs: graph.outputs,
    outputKind: model.outputKind, parameters: model.parameters, parameterCount: model.parameterCount(),
    layers: model.layers.map((l) => ({ name: l.name, op: l.op, parameters: l.parameters })),
    batchNormFolded: model.batchNormFolded, unsupported: [],
  };
}

/** Every node whose operator the importer does not execute (for a report listing them all). */
export function unsupportedNodes(graph: OnnxGraph): { operator: string; node: string }[] {
  return graph.nodes.filter((n) => !isSupported(n.opType)).map((n) => ({ operator: n.opType, node: n.name }));
}

/**
 * execute(), with what a tfjs kernel throws on this model and input (inner dimensions that disagree deep in the
 * graph, say) turned into a SpecError naming the node: the model and data the client sent, not the server, are
 * at fault, so the answer is a 400, never a 500. The importer's own errors pass through as they are.
 */
function executeOrExplain(node: OnnxNode, inputs: readonly (Value | undefined)[], ctx: Parameters<typeof execute>[2]): (Value | undefined)[] {
  try {
    return execute(node, inputs, ctx);
  } catch (err) {
    if (err instanceof SpecError || err instanceof LimitError || err instanceof UnsupportedOperatorError || err instanceof ModelFormatError) throw err;
    const name = node.name || node.outputs[0] || '?';
    throw new SpecError('model', capEcho(`node ${JSON.stringify(name)} (${node.opType}) cannot run on this input: ${err instanceof Error ? err.message : String(err)}`));
  }
}
