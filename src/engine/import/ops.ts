// The ONNX operators the importer executes, each on tfjs ops that have gradients (so the whole graph
// differentiates with tfjs autodiff), in the model's own layout: NCHW tensors are transposed to NHWC
// around tf.conv2d and the pools, which is what every tfjs backend implements. Shape arithmetic (Shape,
// Gather, Concat, Unsqueeze, Cast, integer Add/Mul/Div, …) runs on host tensors (host.ts) whenever all of
// a node's inputs are host values: folded at import for constants, per input shape at run time for Shape.
import * as tf from '@tensorflow/tfjs';
import { UnsupportedOperatorError } from './errors.js';
import {
  hostBinary, hostConcat, hostGather, hostSlice, hostTensor, hostTranspose, isHost, sizeOf, values, type HostTensor,
} from './host.js';
import type { AttributeValue, OnnxNode } from './onnx-parse.js';

/** A value flowing through the graph: a tfjs tensor (data, parameters) or a host constant. */
export type Value = tf.Tensor | HostTensor;

export interface ExecContext {
  /** The default-domain opset the model imports (attribute-versus-input conventions changed at 11, 13, 18). */
  readonly opset: number;
  /** 'batch': BatchNormalization uses the batch's statistics (training mode); 'running': its stored ones. */
  readonly batchNorm: 'batch' | 'running';
  /** Which of the node's outputs something reads (unread optional outputs are not computed). */
  readonly used: readonly boolean[];
}

type In = readonly (Value | undefined)[];
type TensorOp = (node: OnnxNode, inputs: In, ctx: ExecContext) => (Value | undefined)[];
type HostOp = (node: OnnxNode, inputs: readonly (HostTensor | undefined)[], ctx: ExecContext) => HostTensor[];

// ---- reading inputs and attributes -------------------------------------------------------------------

const unsupported = (node: OnnxNode, detail: string): UnsupportedOperatorError => new UnsupportedOperatorError(node.opType, node.name, detail);

function attr(node: OnnxNode, name: string): AttributeValue | undefined {
  return node.attributes.get(name);
}
const attrNum = (node: OnnxNode, name: string, fallback: number): number => {
  const v = attr(node, name);
  return typeof v === 'number' ? v : fallback;
};
const attrInts = (node: OnnxNode, name: string): number[] | undefined => {
  const v = attr(node, name);
  return Array.isArray(v) ? (v as number[]) : undefined;
};
const attrStr = (node: OnnxNode, name: string, fallback: string): string => {
  const v = attr(node, name);
  return typeof v === 'string' ? v : fallback;
};

/** A tfjs tensor for an input (host constants become tensors: float32, or int32 for integers and booleans). */
function T(v: Value | undefined): tf.Tensor {
  if (v === undefined) throw new Error('a required input is missing');
  if (!isHost(v)) return v;
  const dtype = v.kind === 'float' ? 'float32' : v.kind === 'bool' ? 'bool' : 'int32';
  return tf.tensor(v.data instanceof Float32Array ? v.data : Array.from(v.data), [...v.dims], dtype);
}

/** An input that must be known without running the model (axes, shapes, pads …), as numbers. */
function H(node: OnnxNode, v: Value | undefined, what: string): number[] {
  if (v === undefined) throw unsupported(node, `input ${what} is missing`);
  if (!isHost(v)) throw unsupported(node, `input ${what} must be a constant (or computed from shapes), not a value of the data`);
  return values(v);
}
const optionalH = (node: OnnxNode, v: Value | undefined, what: string): number[] | undefined =>
  v === undefined ? undefined : H(node, v, what);

const dimsOf = (v: Value): readonly number[] => (isHost(v) ? v.dims : v.shape);
const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

// ---- shapes shared by the host and tensor versions ---------------------------------------------------

function reshapeDims(node: OnnxNode, input: readonly number[], requested: readonly number[]): number[] {
  const allowZero = attrNum(node, 'allowzero', 0) === 1;
  const dims = requested.map((d, i) => (d === 0 && !allowZero ? input[i]! : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return dims.map((d) => (d === -1 ? sizeOf(input) / known : d));
}

function squeezeDims(node: OnnxNode, input: readonly number[], axes: readonly number[] | undefined): number[] {
  const drop = new Set((axes ?? input.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, input.length)));
  for (const a of drop) if (input[a] !== 1) throw unsupported(node, `cannot squeeze axis ${a} of size ${input[a]}`);
  return input.filter((_, i) => !drop.has(i));
}

function unsqueezeDims(input: readonly number[], axes: readonly number[]): number[] {
  const rank = input.length + axes.length;
  const at = new Set(axes.map((a) => normAxis(a, rank)));
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(at.has(i) ? 1 : input[j++]!);
  return out;
}

function flattenDims(node: OnnxNode, input: readonly number[]): number[] {
  const axis = normAxis(attrNum(node, 'axis', 1), input.length);
  return [sizeOf(input.slice(0, axis)), sizeOf(input.slice(axis))];
}

/** Squeeze/Unsqueeze/ReduceX axes: an attribute before opset 13 (18 for ReduceMean), an input from then on. */
function axesOf(node: OnnxNode, inputs: In, inputIndex: number): number[] | undefined {
  return attrInts(node, 'axes') ?? optionalH(node, inputs[inputIndex], 'axes');
}

interface SliceSpec { begin: number[]; end: number[]; step: number[] }

/** Slice's starts/ends/axes/steps made whole and clamped as ONNX defines (negative steps included). */
function sliceSpec(node: OnnxNode, inputs: In, dims: readonly number[]): SliceSpec {
  const starts = attrInts(node, 'starts') ?? H(node, inputs[1], 'starts');
  const ends = attrInts(node, 'ends') ?? H(node, inputs[2], 'ends');
  const axes = attrInts(node, 'axes') ?? optionalH(node, inputs[3], 'axes') ?? starts.map((_, i) => i);
  const steps = optionalH(node, inputs[4], 'steps') ?? starts.map(() => 1);
  const spec: SliceSpec = { begin: dims.map(() => 0), end: [...dims], step: dims.map(() => 1) };
  axes.forEach((a, i) => {
    const axis = normAxis(a, dims.length);
    const dim = dims[axis]!;
    const step = steps[i]!;
    if (step === 0) throw unsupported(node, 'a step of 0');
    const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
    spec.begin[axis] = step > 0 ? clamp(starts[i]!, 0, dim) : clamp(starts[i]!, -1, dim - 1);
    spec.end[axis] = step > 0 ? clamp(ends[i]!, 0, dim) : clamp(ends[i]!, -1, dim - 1);
    spec.step[axis] = step;
  });
  return spec;
}

function splitSizes(node: OnnxNode, inputs: In, dim: number): number[] {
  const given = attrInts(node, 'split') ?? optionalH(node, inputs[1], 'split');
  if (given) return given;
  const parts = node.outputs.length;
  const size = Math.ceil(dim / parts);
  return Array.from({ length: parts }, (_, i) => Math.min(size, dim - size * i));
}

function castKind(node: OnnxNode): HostTensor['kind'] {
  const to = attrNum(node, 'to', 1);
  if (to === 1 || to === 11 || to === 10) return 'float';
  if (to === 9) return 'bool';
  if ([2, 3, 4, 5, 6, 7, 12, 13].includes(to)) return 'int';
  throw unsupported(node, `cast to data type ${to}`);
}

// ---- host versions: every input a host value ---------------------------------------------------------

const reshapeHost = (x: HostTensor, dims: readonly number[]): HostTensor => hostTensor(x.kind, dims, x.data);

function constantValue(node: OnnxNode): HostTensor {
  const t = attr(node, 'value');
  if (t !== undefined && isHost(t)) return t;
  const f = attr(node, 'value_float');
  if (typeof f === 'number') return hostTensor('float', [], Float32Array.of(f));
  const fs = attr(node, 'value_floats');
  if (Array.isArray(fs) && attr(node, 'value_floats') !== undefined) return hostTensor('float', [fs.length], Float32Array.from(fs as number[]));
  const i = attr(node, 'value_int');
  if (typeof i === 'number') return hostTensor('int', [], [i]);
  const is = attrInts(node, 'value_ints');
  if (is) return hostTensor('int', [is.length], is);
  throw unsupported(node, 'a Constant without a value, value_float(s) or value_int(s) attribute');
}

const HOST_OPS: Record<string, HostOp> = {
  Constant: (node) => [constantValue(node)],
  Identity: (_n, [x]) => [x!],
  Add: (_n, [a, b]) => [hostBinary('Add', a!, b!)],
  Sub: (_n, [a, b]) => [hostBinary('Sub', a!, b!)],
  Mul: (_n, [a, b]) => [hostBinary('Mul', a!, b!)],
  Div: (_n, [a, b]) => [hostBinary('Div', a!, b!)],
  Gather: (node, [x, i]) => [hostGather(x!, i!, attrNum(node, 'axis', 0))],
  Concat: (node, parts) => [hostConcat(parts.filter((p): p is HostTensor => p !== undefined), attrNum(node, 'axis', 0))],
  Reshape: (node, [x, s]) => [reshapeHost(x!, reshapeDims(node, x!.dims, values(s!)))],
  Flatten: (node, [x]) => [reshapeHost(x!, flattenDims(node, x!.dims))],
  Squeeze: (node, inputs) => [reshapeHost(inputs[0]!, squeezeDims(node, inputs[0]!.dims, axesOf(node, inputs, 1)))],
  Unsqueeze: (node, inputs) => [reshapeHost(inputs[0]!, unsqueezeDims(inputs[0]!.dims, axesOf(node, inputs, 1)!))],
  Transpose: (node, [x]) => [hostTranspose(x!, attrInts(node, 'perm') ?? x!.dims.map((_, i) => x!.dims.length - 1 - i))],
  Slice: (node, inputs) => {
    const spec = sliceSpec(node, inputs, inputs[0]!.dims);
    return [hostSlice(inputs[0]!, spec.begin, spec.end, spec.step)];
  },
  Cast: (node, [x]) => {
    const kind = castKind(node);
    const data = values(x!).map((v) => (kind === 'int' ? Math.trunc(v) : kind === 'bool' ? Number(v !== 0) : v));
    return [hostTensor(kind, x!.dims, kind === 'float' ? Float32Array.from(data) : data)];
  },
  ConstantOfShape: (node, [s]) => {
    const dims = values(s!);
    const v = attr(node, 'value');
    const fill = v !== undefined && isHost(v) ? v : hostTensor('float', [1], Float32Array.of(0));
    const n = sizeOf(dims);
    const data = fill.kind === 'float' ? new Float32Array(n).fill(fill.data[0]!) : new Array<number>(n).fill(fill.data[0]!);
    return [hostTensor(fill.kind, dims, data)];
  },
};

/** Shape and Size read only the dimensions, so they run on the host whatever their input is. */
function shapeOf(node: OnnxNode, x: Value): HostTensor {
  const dims = dimsOf(x);
  if (node.opType === 'Size') return hostTensor('int', [], [sizeOf(dims)]);
  const start = normAxis(attrNum(node, 'start', 0), dims.length);
  const end = attr(node, 'end') === undefined ? dims.length : normAxis(attrNum(node, 'end', dims.length), dims.length);
  const kept = dims.slice(Math.max(0, start), Math.min(dims.length, end));
  return hostTensor('int', [kept.length], kept);
}

// ---- tensor versions -----------------------------------------------------------------------------------

/**
 * Elements along `axis` at begin, begin+step, … (step > 0) by pad, reshape and slice: ops whose gradients
 * every backend has (tfjs's strided slice has no gradient, and gather's needs UnsortedSegmentSum, which the
 * wasm backend lacks).
 */
function stepAlong(x: tf.Tensor, axis: number, begin: number, end: number, step: number): tf.Tensor {
  const count = Math.max(0, Math.ceil((end - begin) / step));
  const take = (count - 1) * step + 1;
  const shape = x.shape;
  const window = tf.slice(x, shape.map((_, d) => (d === axis ? begin : 0)), shape.map((s, d) => (d === axis ? take : s)));
  if (step === 1 || count <= 1) return window;
  // As [outer, count·step, inner] (rank 3: the webgpu backend's shaders stop at rank 4), pad, split, take.
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const padded = tf.pad(tf.reshape(window, [outer, take, inner]), [[0, 0], [0, count * step - take], [0, 0]]);
  const split = tf.reshape(padded, [outer, count, step * inner]);
  const first = tf.slice(split, [0, 0, 0], [outer, count, inner]);
  return tf.reshape(first, [...shape.slice(0, axis), count, ...shape.slice(axis + 1)]);
}

/**
 * Positions `list` along `axis`, by slices (see stepAlong for why not tf.gather). A few positions are
 * placed by padding and summed rather than concatenated: webgpu runs a concat of small tensors still held
 * on the CPU as a synchronous read, which the service's webgpu backend refuses in Node.
 */
function pickAlong(x: tf.Tensor, axis: number, list: readonly number[]): tf.Tensor {
  const one = (i: number): tf.Tensor => tf.slice(x, x.shape.map((_, d) => (d === axis ? i : 0)), x.shape.map((s, d) => (d === axis ? 1 : s)));
  if (list.length === 1) return one(list[0]!);
  const contiguous = list.every((v, k) => v === list[0]! + k);
  if (contiguous) return tf.slice(x, x.shape.map((_, d) => (d === axis ? list[0]! : 0)), x.shape.map((s, d) => (d === axis ? list.length : s)));
  if (list.length > 16) return tf.concat(list.map(one), axis);
  const placed = list.map((i, k) => tf.pad(one(i), x.shape.map((_, d): [number, number] => (d === axis ? [k, list.length - 1 - k] : [0, 0]))));
  return tf.addN(placed);
}

function sliceTensor(x: tf.Tensor, spec: SliceSpec): tf.Tensor {
  if (spec.step.every((s) => s === 1)) {
    return tf.slice(x, spec.begin, spec.end.map((e, d) => Math.max(0, e - spec.begin[d]!)));
  }
  let out = x;
  spec.step.forEach((step, axis) => {
    if (step > 0) {
      out = stepAlong(out, axis, spec.begin[axis]!, spec.end[axis]!, step);
    } else {
      // Counting down from begin to end (exclusive) is counting up in the reversed axis.
      const dim = out.shape[axis]!;
      out = stepAlong(tf.reverse(out, axis), axis, dim - 1 - spec.begin[axis]!, dim - 1 - spec.end[axis]!, -step);
    }
  });
  return out;
}

/** Moves `axis` last, applies `f` (tfjs's softmaxes act on the last axis), and moves it back. */
function onAxis(x: tf.Tensor, axis: number, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const rank = x.rank;
  const a = normAxis(axis, rank);
  if (a === rank - 1) return f(x);
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[a] = rank - 1;
  perm[rank - 1] = a;
  return tf.transpose(f(tf.transpose(x, perm)), perm);
}

function softmaxLike(node: OnnxNode, x: tf.Tensor, ctx: ExecContext, f: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  if (ctx.opset >= 13) return onAxis(x, attrNum(node, 'axis', -1), f);
  // Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised over the trailing block.
  const dims = flattenDims({ ...node, attributes: new Map([['axis', attrNum(node, 'axis', 1)]]) }, x.shape);
  return tf.reshape(f(tf.reshape(x, dims)), x.shape);
}

/**
 * relu(x) + α(exp(min(x, 0)) − 1): ELU without a select (tfjs's where needs a gradient for its condition,
 * and the comparison has none), finite on both sides.
 */
const eluLike = (x: tf.Tensor, alpha: number): tf.Tensor => tf.add(tf.relu(x), tf.mul(tf.sub(tf.exp(tf.minimum(x, 0)), 1), alpha));

function hardSigmoid(x: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

function matMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const a2 = a.rank === 1 ? tf.reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.rank === 1 ? tf.reshape(b, [b.shape[0]!, 1]) : b;
  let out: tf.Tensor;
  if (a2.rank === 2 && b2.rank === 2) {
    out = tf.matMul(a2 as tf.Tensor2D, b2 as tf.Tensor2D);
  } else if (b2.rank === 2) {
    const lead = a2.shape.slice(0, -1);
    out = tf.reshape(tf.matMul(tf.reshape(a2, [-1, a2.shape[a2.rank - 1]!]) as tf.Tensor2D, b2 as tf.Tensor2D), [...lead, b2.shape[1]!]);
  } else {
    const batchA = a2.shape.slice(0, -2);
    const batchB = b2.shape.slice(0, -2);
    const rank = Math.max(batchA.length, batchB.length);
    const batch = Array.from({ length: rank }, (_, i) => Math.max(batchA[batchA.length - rank + i] ?? 1, batchB[batchB.length - rank + i] ?? 1));
    const [m, k] = a2.shape.slice(-2) as [number, number];
    const n = b2.shape[b2.rank - 1]!;
    const a3 = tf.reshape(tf.broadcastTo(a2, [...batch, m, k]), [-1, m, k]) as tf.Tensor3D;
    const b3 = tf.reshape(tf.broadcastTo(b2, [...batch, k, n]), [-1, k, n]) as tf.Tensor3D;
    out = tf.reshape(tf.matMul(a3, b3), [...batch, m, n]);
  }
  if (a.rank === 1) out = tf.squeeze(out, [out.rank - 2]);
  if (b.rank === 1) out = tf.squeeze(out, [out.rank - 1]);
  return out;
}

interface Window { kernel: number[]; strides: number[]; dilations: number[]; pads: number[] }

/** Pads [begin…, end…] for 2 spatial dims, from `pads` or auto_pad (SAME_UPPER/SAME_LOWER/VALID). */
function windowOf(node: OnnxNode, spatial: readonly number[], kernel: number[]): Window {
  const n = spatial.length;
  const strides = attrInts(node, 'strides') ?? new Array<number>(n).fill(1);
  const dilations = attrInts(node, 'dilations') ?? new Array<number>(n).fill(1);
  const autoPad = attrStr(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads') ?? new Array<number>(2 * n).fill(0);
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array<number>(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const out = Math.ceil(spatial[i]! / strides[i]!);
      const total = Math.max(0, (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - spatial[i]!);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + n] = total - pads[i]!;
    }
  } else if (autoPad === 'VALID') {
    pads = new Array<number>(2 * n).fill(0);
  }
  return { kernel, strides, dilations, pads };
}

const toNhwc = (x: tf.Tensor): tf.Tensor4D => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
const toNchw = (x: tf.Tensor): tf.Tensor => tf.transpose(x, [0, 3, 1, 2]);

/** Runs `f` on a 4-D NCHW view of a 3-D (N, C, L) or 4-D input; other ranks are not executed. */
function spatial2d(node: OnnxNode, x: tf.Tensor, f: (x4: tf.Tensor, lift: <A>(a: A[], fill: A) => A[]) => tf.Tensor): tf.Tensor {
  if (x.rank === 4) return f(x, (a) => a);
  if (x.rank === 3) {
    // 1-D: height 1 in front of the length; per-axis attributes get a leading 1 (pads: begin and end halves).
    const lift = <A>(a: A[], fill: A): A[] => (a.length === 2 ? [fill, a[0]!, fill, a[1]!] : [fill, ...a]);
    const y = f(tf.expandDims(x, 2), lift);
    return tf.squeeze(y, [2]);
  }
  throw unsupported(node, `a ${x.rank - 2}-D input; 1-D and 2-D are executed`);
}

/**
 * A [kh, kw, I, O] filter with zeros inserted between its taps ((k − 1)·d + 1 wide): tfjs's conv2d has no
 * gradient for dilations above 1, and a dilated convolution is the plain one with the dilated filter.
 */
export function dilateFilter(filter: tf.Tensor4D, dilations: readonly number[]): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const [dh, dw] = [dilations[0]!, dilations[1]!];
  if (dh === 1 && dw === 1) return filter;
  const rows = tf.pad(tf.reshape(filter, [kh, 1, kw * ci * co]), [[0, 0], [0, dh - 1], [0, 0]]);
  const tallH = (kh - 1) * dh + 1;
  const tall = tf.slice(tf.reshape(rows, [kh * dh, kw * ci * co]), [0, 0], [tallH, kw * ci * co]);
  const cols = tf.pad(tf.reshape(tall, [tallH, kw, 1, ci * co]), [[0, 0], [0, 0], [0, dw - 1], [0, 0]]);
  const wideW = (kw - 1) * dw + 1;
  const wide = tf.slice(tf.reshape(cols, [tallH, kw * dw, ci * co]), [0, 0, 0], [tallH, wideW, ci * co]);
  return tf.reshape(wide, [tallH, wideW, ci, co]) as tf.Tensor4D;
}

/**
 * A 'valid' NHWC convolution as patches times the filter (im2col from slices, one matMul): for backends
 * without conv2d's filter gradient (wasm has no Conv2DBackpropFilter kernel).
 */
export function convByPatches(x: tf.Tensor4D, filter: tf.Tensor4D, strides: readonly [number, number]): tf.Tensor {
  const [n, h, w, c] = x.shape;
  const [kh, kw, , o] = filter.shape;
  const outH = Math.floor((h - kh) / strides[0]) + 1;
  const outW = Math.floor((w - kw) / strides[1]) + 1;
  const taps: tf.Tensor[] = [];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const rows = stepAlong(x, 1, a, a + (outH - 1) * strides[0] + 1, strides[0]);
      taps.push(stepAlong(rows, 2, b, b + (outW - 1) * strides[1] + 1, strides[1]));
    }
  }
  const patches = tf.reshape(tf.concat(taps, 3), [n * outH * outW, kh * kw * c]);
  return tf.reshape(tf.matMul(patches as tf.Tensor2D, tf.reshape(filter, [kh * kw * c, o]) as tf.Tensor2D), [n, outH, outW, o]);
}

function conv(node: OnnxNode, inputs: In): tf.Tensor {
  const x0 = T(inputs[0]);
  const w0 = T(inputs[1]);
  const group = attrNum(node, 'group', 1);
  return spatial2d(node, x0, (x, lift) => {
    const w = w0.rank === 3 ? tf.expandDims(w0, 2) : w0;
    const kernel = [w.shape[2]!, w.shape[3]!];
    const win = windowOf(node, x.shape.slice(2), kernel);
    const liftedWin: Window = x0.rank === 3 ? {
      kernel,
      strides: lift(attrInts(node, 'strides') ?? [1], 1),
      dilations: lift(attrInts(node, 'dilations') ?? [1], 1),
      pads: lift(attrInts(node, 'pads') ?? [0, 0], 0),
    } : win;
    const { strides, dilations, pads } = liftedWin;
    const padded = tf.pad(toNhwc(x), [[0, 0], [pads[0]!, pads[2]!], [pads[1]!, pads[3]!], [0, 0]]);
    // [O, I/g, kh, kw] -> [kh, kw, I/g, O], dilated here (see dilateFilter).
    const filter = dilateFilter(tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, dilations);
    const convStrides: [number, number] = [strides[0]!, strides[1]!];
    const direct = tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) !== undefined;
    const one = (xs: tf.Tensor4D, fs: tf.Tensor4D): tf.Tensor =>
      direct ? tf.conv2d(xs, fs, convStrides, 'valid', 'NHWC') : convByPatches(xs, fs, convStrides);
    let y: tf.Tensor;
    if (group === 1) {
      y = one(padded, filter);
    } else {
      const xs = tf.split(padded, group, 3) as tf.Tensor4D[];
      const fs = tf.split(filter, group, 3) as tf.Tensor4D[];
      y = tf.concat(xs.map((xg, g) => one(xg, fs[g]!)), 3);
    }
    const out = toNchw(y);
    return inputs[2] === undefined ? out : tf.add(out, tf.reshape(T(inputs[2]), [1, -1, 1, 1]));
  });
}

/** MaxPool/AveragePool with explicit pads, ceil_mode and count_include_pad, via padding then a 'valid' pool. */
function pool(node: OnnxNode, inputs: In, kind: 'max' | 'avg'): tf.Tensor {
  const x0 = T(inputs[0]);
  return spatial2d(node, x0, (x, lift) => {
    const kernelAttr = attrInts(node, 'kernel_shape')!;
    const k = x0.rank === 3 ? lift(kernelAttr, 1) : kernelAttr;
    const win0 = windowOf(node, x.shape.slice(2), k);
    const win: Window = x0.rank === 3
      ? { kernel: k, strides: lift(attrInts(node, 'strides') ?? [1], 1), dilations: [1, 1], pads: lift(attrInts(node, 'pads') ?? [0, 0], 0) }
      : win0;
    if (win0.dilations.some((d) => d > 1)) throw unsupported(node, 'pooling with dilations');
    if (node.outputs.length > 1 && node.outputs[1] !== '') throw unsupported(node, 'the Indices output of MaxPool');
    const ceil = attrNum(node, 'ceil_mode', 0) === 1;
    // Extra end padding so that a 'valid' pool yields ceil-mode sizes; a window must start inside input or begin pad.
    const extra = [0, 1].map((i) => {
      const size = x.shape[2 + i]! + win.pads[i]! + win.pads[i + 2]!;
      if (!ceil) return 0;
      let out = Math.ceil((size - win.kernel[i]!) / win.strides[i]!) + 1;
      if ((out - 1) * win.strides[i]! >= x.shape[2 + i]! + win.pads[i]!) out--;
      return Math.max(0, (out - 1) * win.strides[i]! + win.kernel[i]! - size);
    });
    const pairs: [number, number][] = [[0, 0], [win.pads[0]!, win.pads[2]! + extra[0]!], [win.pads[1]!, win.pads[3]! + extra[1]!], [0, 0]];
    const nhwc = toNhwc(x);
    const filter: [number, number] = [win.kernel[0]!, win.kernel[1]!];
    const strides: [number, number] = [win.strides[0]!, win.strides[1]!];
    if (kind === 'max') return toNchw(tf.maxPool(tf.pad(nhwc, pairs, -3.4e38), filter, strides, 'valid'));
    const noPad = pairs.every(([a, b]) => a === 0 && b === 0);
    const mean = tf.avgPool(noPad ? nhwc : tf.pad(nhwc, pairs, 0), filter, strides, 'valid');
    if (noPad) return toNchw(mean);
    // The divisor: how many cells of each window count (the input, and the pads when count_include_pad=1).
    const includePad = attrNum(node, 'count_include_pad', 0) === 1;
    const ones = tf.ones([1, x.shape[2]!, x.shape[3]!, 1]);
    const mask = includePad
      ? tf.pad(tf.pad(ones, [[0, 0], [win.pads[0]!, win.pads[2]!], [win.pads[1]!, win.pads[3]!], [0, 0]], 1), [[0, 0], [0, extra[0]!], [0, extra[1]!], [0, 0]], 0)
      : tf.pad(ones, pairs, 0);
    const share = tf.avgPool(mask as tf.Tensor4D, filter, strides, 'valid');
    return toNchw(tf.div(mean, share));
  });
}

function batchNorm(node: OnnxNode, inputs: In, ctx: ExecContext): (tf.Tensor | undefined)[] {
  const x = T(inputs[0]);
  const eps = attrNum(node, 'epsilon', 1e-5);
  const momentum = attrNum(node, 'momentum', 0.9);
  const shape = x.shape.map((d, i) => (i === 1 ? d : 1));
  const param = (i: number): tf.Tensor => tf.reshape(T(inputs[i]), shape);
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  let mean: tf.Tensor;
  let variance: tf.Tensor;
  if (ctx.batchNorm === 'batch') {
    mean = tf.mean(x, axes, true);
    variance = tf.mean(tf.square(tf.sub(x, mean)), axes, true); // biased, as PyTorch normalises in training
  } else {
    mean = param(3);
    variance = param(4);
  }
  const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), param(1)), param(2));
  const running = (i: number, batch: tf.Tensor): tf.Tensor | undefined =>
    ctx.used[i] ? tf.add(tf.mul(T(inputs[2 + i]), momentum), tf.mul(tf.reshape(batch, [-1]), 1 - momentum)) : undefined;
  return [y, running(1, mean), running(2, variance)];
}

function layerNorm(node: OnnxNode, inputs: In, ctx: ExecContext): (tf.Tensor | undefined)[] {
  const x = T(inputs[0]);
  const axis = normAxis(attrNum(node, 'axis', -1), x.rank);
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const invStd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axes, true), attrNum(node, 'epsilon', 1e-5)));
  let y = tf.mul(tf.mul(centred, invStd), T(inputs[1]));
  if (inputs[2] !== undefined) y = tf.add(y, T(inputs[2]));
  return [y, ctx.used[1] ? mean : undefined, ctx.used[2] ? invStd : undefined];
}

function pad(node: OnnxNode, inputs: In, ctx: ExecContext): tf.Tensor {
  const x = T(inputs[0]);
  const pads = ctx.opset >= 11 ? H(node, inputs[1], 'pads') : attrInts(node, 'pads')!;
  const value = ctx.opset >= 11 ? (optionalH(node, inputs[2], 'constant_value')?.[0] ?? 0) : attrNum(node, 'value', 0);
  const axes = (optionalH(node, inputs[3], 'axes') ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  const pairs: [number, number][] = x.shape.map(() => [0, 0]);
  axes.forEach((a, i) => { pairs[a] = [pads[i]!, pads[i + axes.length]!]; });
  if (pairs.some(([a, b]) => a < 0 || b < 0)) throw unsupported(node, 'negative pads');
  const mode = attrStr(node, 'mode', 'constant');
  if (mode === 'constant') return tf.pad(x, pairs, value);
  if (mode === 'reflect') return tf.mirrorPad(x, pairs, 'reflect');
  throw unsupported(node, `mode ${JSON.stringify(mode)} (constant and reflect are executed)`);
}

function reduce(node: OnnxNode, inputs: In, ctx: ExecContext, f: typeof tf.mean): tf.Tensor {
  const x = T(inputs[0]);
  const axesFromInput = node.opType === 'ReduceSum' ? ctx.opset >= 13 : ctx.opset >= 18;
  const axes = axesFromInput ? optionalH(node, inputs[1], 'axes') : attrInts(node, 'axes');
  const keep = attrNum(node, 'keepdims', 1) === 1;
  if ((axes === undefined || axes.length === 0) && attrNum(node, 'noop_with_empty_axes', 0) === 1) return x;
  return f(x, axes?.map((a) => normAxis(a, x.rank)), keep);
}

function gather(node: OnnxNode, inputs: In): tf.Tensor {
  const x = T(inputs[0]);
  const axis = normAxis(attrNum(node, 'axis', 0), x.rank);
  const index = inputs[1]!;
  if (!isHost(index)) return tf.gather(x, tf.cast(index, 'int32'), axis);
  const extent = x.shape[axis]!;
  const list = values(index).map((i) => (i < 0 ? i + extent : i));
  const picked = pickAlong(x, axis, list);
  return tf.reshape(picked, [...x.shape.slice(0, axis), ...index.dims, ...x.shape.slice(axis + 1)]);
}

function clip(node: OnnxNode, inputs: In, ctx: ExecContext): tf.Tensor {
  const x = T(inputs[0]);
  const lo = ctx.opset >= 11 ? optionalH(node, inputs[1], 'min')?.[0] : attrNum(node, 'min', -3.4e38);
  const hi = ctx.opset >= 11 ? optionalH(node, inputs[2], 'max')?.[0] : attrNum(node, 'max', 3.4e38);
  return tf.clipByValue(x, lo ?? -3.4e38, hi ?? 3.4e38);
}

const unary = (f: (x: tf.Tensor) => tf.Tensor): TensorOp => (_n, inputs) => [f(T(inputs[0]))];
const binary = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): TensorOp => (_n, inputs) => [f(T(inputs[0]), T(inputs[1]))];

const TENSOR_OPS: Record<string, TensorOp> = {
  Identity: (_n, [x]) => [x],
  Dropout: (_n, [x], ctx) => [x, ctx.used[1] ? tf.onesLike(T(x)).cast('bool') : undefined], // off: gradlens measures without it
  Add: binary(tf.add), Sub: binary(tf.sub), Mul: binary(tf.mul), Div: binary(tf.div),
  Pow: (_n, [a, b]) => {
    const exponent = isHost(b) && b.data.length === 1 ? b.data[0] : undefined;
    if (exponent === 2) return [tf.square(T(a))];
    if (exponent === 0.5) return [tf.sqrt(T(a))];
    return [tf.pow(T(a), T(b))];
  },
  Relu: unary(tf.relu), Sigmoid: unary(tf.sigmoid), Tanh: unary(tf.tanh), Erf: unary(tf.erf), Sqrt: unary(tf.sqrt),
  Exp: unary(tf.exp), Log: unary(tf.log), Neg: unary(tf.neg), Abs: unary(tf.abs), Reciprocal: unary(tf.reciprocal),
  Softplus: unary(tf.softplus),
  LeakyRelu: (node, [x]) => [tf.leakyRelu(T(x), attrNum(node, 'alpha', 0.01))],
  Elu: (node, [x]) => [eluLike(T(x), attrNum(node, 'alpha', 1))],
  Selu: (node, [x]) => [tf.mul(eluLike(T(x), attrNum(node, 'alpha', 1.67326319217681884765625)), attrNum(node, 'gamma', 1.05070102214813232421875))],
  HardSigmoid: (node, [x]) => [hardSigmoid(T(x), attrNum(node, 'alpha', 0.2), attrNum(node, 'beta', 0.5))],
  HardSwish: (_n, [x]) => [tf.mul(T(x), hardSigmoid(T(x), 1 / 6, 0.5))],
  Clip: (node, inputs, ctx) => [clip(node, inputs, ctx)],
  Softmax: (node, [x], ctx) => [softmaxLike(node, T(x), ctx, (t) => tf.softmax(t))],
  LogSoftmax: (node, [x], ctx) => [softmaxLike(node, T(x), ctx, (t) => tf.logSoftmax(t))],
  Gemm: (node, [a, b, c]) => {
    const ab = tf.matMul(T(a) as tf.Tensor2D, T(b) as tf.Tensor2D, attrNum(node, 'transA', 0) === 1, attrNum(node, 'transB', 0) === 1);
    const scaled = attrNum(node, 'alpha', 1) === 1 ? ab : tf.mul(ab, attrNum(node, 'alpha', 1));
    if (c === undefined) return [scaled];
    const beta = attrNum(node, 'beta', 1);
    return [tf.add(scaled, beta === 1 ? T(c) : tf.mul(T(c), beta))];
  },
  MatMul: (_n, [a, b]) => [matMul(T(a), T(b))],
  Conv: (node, inputs) => [conv(node, inputs)],
  MaxPool: (node, inputs) => [pool(node, inputs, 'max')],
  AveragePool: (node, inputs) => [pool(node, inputs, 'avg')],
  GlobalAveragePool: (_n, [x]) => [tf.mean(T(x), Array.from({ length: T(x).rank - 2 }, (_, i) => i + 2), true)],
  GlobalMaxPool: (_n, [x]) => [tf.max(T(x), Array.from({ length: T(x).rank - 2 }, (_, i) => i + 2), true)],
  BatchNormalization: batchNorm,
  LayerNormalization: layerNorm,
  Flatten: (node, [x]) => [tf.reshape(T(x), flattenDims(node, dimsOf(x!)))],
  Reshape: (node, [x, s]) => [tf.reshape(T(x), reshapeDims(node, dimsOf(x!), H(node, s, 'shape')))],
  Transpose: (node, [x]) => [tf.transpose(T(x), attrInts(node, 'perm'))],
  Squeeze: (node, inputs) => [tf.reshape(T(inputs[0]), squeezeDims(node, dimsOf(inputs[0]!), axesOf(node, inputs, 1)))],
  Unsqueeze: (node, inputs) => [tf.reshape(T(inputs[0]), unsqueezeDims(dimsOf(inputs[0]!), axesOf(node, inputs, 1)!))],
  Concat: (node, parts) => [tf.concat(parts.filter((p) => p !== undefined).map(T), normAxis(attrNum(node, 'axis', 0), dimsOf(parts[0]!).length))],
  Split: (node, inputs) => {
    const x = T(inputs[0]);
    const axis = normAxis(attrNum(node, 'axis', 0), x.rank);
    return tf.split(x, splitSizes(node, inputs, x.shape[axis]!), axis);
  },
  Slice: (node, inputs) => [sliceTensor(T(inputs[0]), sliceSpec(node, inputs, dimsOf(inputs[0]!)))],
  Gather: (node, inputs) => [gather(node, inputs)],
  Pad: (node, inputs, ctx) => [pad(node, inputs, ctx)],
  ReduceMean: (node, inputs, ctx) => [reduce(node, inputs, ctx, tf.mean)],
  ReduceSum: (node, inputs, ctx) => [reduce(node, inputs, ctx, tf.sum)],
  Cast: (node, [x]) => {
    const kind = castKind(node);
    return [tf.cast(T(x), kind === 'float' ? 'float32' : kind === 'bool' ? 'bool' : 'int32')];
  },
};

/** Every operator the importer executes (the coverage list). */
export const SUPPORTED_OPERATORS: readonly string[] = [
  ...new Set([...Object.keys(TENSOR_OPS), ...Object.keys(HOST_OPS), 'Shape', 'Size']),
].sort();

export const isSupported = (opType: string): boolean => SUPPORTED_OPERATORS.includes(opType);

/** Whether a node with these inputs can be computed on the host (folded): a host op with host inputs only. */
export function foldable(node: OnnxNode, inputs: readonly (Value | undefined)[]): boolean {
  if (node.opType === 'Shape' || node.opType === 'Size') return inputs[0] !== undefined;
  return node.opType in HOST_OPS && inputs.every((v) => v === undefined || isHost(v));
}

/** Executes one node: on the host when foldable, else with tfjs ops. */
export function execute(node: OnnxNode, inputs: readonly (Value | undefined)[], ctx: ExecContext): (Value | undefined)[] {
  if (node.opType === 'Shape' || node.opType === 'Size') return [shapeOf(node, inputs[0]!)];
  if (foldable(node, inputs)) return HOST_OPS[node.opType]!(node, inputs as (HostTensor | undefined)[], ctx);
  const op = TENSOR_OPS[node.opType];
  if (!op) throw unsupported(node, 'on values computed from the data');
  return op(node, inputs, ctx);
}
