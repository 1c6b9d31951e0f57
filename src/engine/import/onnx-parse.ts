// ONNX bytes to a checked op graph. The protobuf is decoded by onnx-proto (the ONNX schema compiled for
// protobufjs), never by hand; what comes out is then checked to hold together — a truncated file often
// still decodes, only with nodes, initializers or outputs cut off, so every node input must come from a
// graph input, an initializer or an earlier node, every initializer's data must match its shape, and the
// graph must have an input and an output.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { ModelFormatError, UnsupportedOperatorError } from './errors.js';
import { hostTensor, sizeOf, type HostTensor } from './host.js';

const { onnx } = onnxProto;

/** An attribute's value as the executors read it. */
export type AttributeValue = number | string | number[] | string[] | HostTensor;

export interface OnnxNode {
  /** The node's name, or its first output when the exporter left it unnamed. */
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  /** Input value names; '' marks an optional input left out. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, AttributeValue>;
}

/** A graph input or output: its name and shape (null for a dimension given only a symbolic name). */
export interface OnnxValueInfo {
  readonly name: string;
  readonly shape: readonly (number | null)[] | null;
}

export interface OnnxGraph {
  readonly opset: number;
  readonly producer: string;
  /** Graph inputs that are not initializers: what the caller feeds. */
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /** Initializers in file order. */
  readonly initializers: ReadonlyMap<string, HostTensor>;
  readonly nodes: readonly OnnxNode[];
}

type Longish = number | { toNumber(): number } | null | undefined;
const num = (v: Longish): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

/** ONNX TensorProto.DataType values the importer reads. */
const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** Decodes one TensorProto (an initializer or an attribute's tensor) into a host tensor. */
export function decodeTensor(t: OnnxTypes.ITensorProto, where: string): HostTensor {
  const dims = (t.dims ?? []).map((d) => num(d as Longish));
  const n = sizeOf(dims);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new ModelFormatError(where, `${where} keeps its data in an external file; export with the weights inside the .onnx file`);
  }
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const expectBytes = (bytesPer: number): void => {
    if (raw!.length !== n * bytesPer) {
      throw new ModelFormatError(where, `${where}: shape [${dims.join(', ')}] needs ${n * bytesPer} bytes of data, the file has ${raw!.length} (truncated or corrupt)`);
    }
  };
  const expectCount = (count: number): void => {
    if (count !== n) throw new ModelFormatError(where, `${where}: shape [${dims.join(', ')}] needs ${n} values, the file has ${count} (truncated or corrupt)`);
  };
  switch (t.dataType) {
    case DT.FLOAT: {
      if (view) {
        expectBytes(4);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
        return hostTensor('float', dims, out);
      }
      const data = t.floatData ?? [];
      expectCount(data.length);
      return hostTensor('float', dims, Float32Array.from(data));
    }
    case DT.DOUBLE: {
      if (view) {
        expectBytes(8);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
        return hostTensor('float', dims, out);
      }
      const data = t.doubleData ?? [];
      expectCount(data.length);
      return hostTensor('float', dims, Float32Array.from(data));
    }
    case DT.INT64: {
      if (view) {
        expectBytes(8);
        return hostTensor('int', dims, Array.from({ length: n }, (_, i) => Number(view.getBigInt64(i * 8, true))));
      }
      const data = t.int64Data ?? [];
      expectCount(data.length);
      return hostTensor('int', dims, data.map((v) => num(v as Longish)));
    }
    case DT.INT32: case DT.INT8: case DT.UINT8: case DT.BOOL: {
      const kind = t.dataType === DT.BOOL ? 'bool' : 'int';
      if (view) {
        const bytesPer = t.dataType === DT.INT32 ? 4 : 1;
        expectBytes(bytesPer);
        const read = (i: number): number => (t.dataType === DT.INT32 ? view.getInt32(i * 4, true) : t.dataType === DT.INT8 ? view.getInt8(i) : view.getUint8(i));
        return hostTensor(kind, dims, Array.from({ length: n }, (_, i) => read(i)));
      }
      const data = t.int32Data ?? [];
      expectCount(data.length);
      return hostTensor(kind, dims, [...data]);
    }
    default:
      throw new ModelFormatError(where, `${where} has data type ${t.dataType} (${onnx.TensorProto.DataType[t.dataType ?? 0] ?? 'unknown'}); the importer reads float32, float64, int64, int32, int8, uint8 and bool`);
  }
}

function decodeAttribute(a: OnnxTypes.IAttributeProto, where: string): AttributeValue {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.FLOAT: return a.f ?? 0;
    case T.INT: return num(a.i as Longish);
    case T.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case T.TENSOR: return decodeTensor(a.t!, `${where} attribute ${a.name}`);
    case T.FLOATS: return [...(a.floats ?? [])];
    case T.INTS: return (a.ints ?? []).map((v) => num(v as Longish));
    case T.STRINGS: return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
    default: throw new ModelFormatError(where, `${where} attribute ${a.name} has type ${a.type}, which the importer does not read`);
  }
}

function valueInfo(v: OnnxTypes.IValueInfoProto): OnnxValueInfo {
  const dims = v.type?.tensorType?.shape?.dim;
  return {
    name: v.name ?? '',
    shape: dims ? dims.map((d) => (d.dimValue != null && num(d.dimValue as Longish) > 0 ? num(d.dimValue as Longish) : null)) : null,
  };
}

function decodeModel(bytes: Uint8Array): InstanceType<typeof onnx.ModelProto> {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelFormatError('file', `the file does not decode as an ONNX model (truncated or corrupt): ${(err as Error).message}`);
  }
}

/** Every node input defined before use; inputs and outputs present. */
function checkWiring(graph: Omit<OnnxGraph, 'opset' | 'producer'>): void {
  if (graph.inputs.length === 0) throw new ModelFormatError('graph.input', 'the graph has no input (truncated or corrupt file)');
  if (graph.outputs.length === 0) throw new ModelFormatError('graph.output', 'the graph has no output (truncated or corrupt file)');
  const defined = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  graph.nodes.forEach((node, i) => {
    for (const input of node.inputs) {
      if (input !== '' && !defined.has(input)) {
        throw new ModelFormatError(`graph.node[${i}]`, `node ${JSON.stringify(node.name)} (${node.opType}) reads ${JSON.stringify(input)}, which nothing before it defines (truncated or corrupt file)`);
      }
    }
    for (const output of node.outputs) if (output !== '') defined.add(output);
  });
  for (const output of graph.outputs) {
    if (!defined.has(output.name)) throw new ModelFormatError('graph.output', `graph output ${JSON.stringify(output.name)} is produced by no node (truncated or corrupt file)`);
  }
}

/** Decodes and checks an ONNX model; ModelFormatError when it cannot be read, UnsupportedOperatorError for a foreign domain. */
export function parseOnnx(bytes: Uint8Array): OnnxGraph {
  const model = decodeModel(bytes);
  const g = model.graph;
  if (!g) throw new ModelFormatError('graph', 'the file has no graph (truncated, corrupt, or not an ONNX model)');
  const opset = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (!opset) throw new ModelFormatError('opset_import', 'the model imports no version of the default ONNX operator set (truncated, corrupt, or not an ONNX model)');
  const initializers = new Map<string, HostTensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', decodeTensor(t, `initializer ${t.name}`));
  const nodes: OnnxNode[] = (g.node ?? []).map((n, i) => {
    const name = n.name || n.output?.[0] || `node ${i}`;
    const attributes = new Map<string, AttributeValue>();
    for (const a of n.attribute ?? []) attributes.set(a.name ?? '', decodeAttribute(a, `node ${JSON.stringify(name)}`));
    return { name, opType: n.opType ?? '', domain: n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attributes };
  });
  for (const node of nodes) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw new UnsupportedOperatorError(`${node.domain}.${node.opType}`, node.name, 'only the default ONNX domain is executed');
  }
  const graph = {
    inputs: (g.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(valueInfo),
    outputs: (g.output ?? []).map(valueInfo),
    initializers,
    nodes,
  };
  checkWiring(graph);
  return { ...graph, opset: num(opset.version as Longish), producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim() };
}
