// Host-side tensors: the constants of an imported graph (ONNX initializers that are not parameters,
// Constant nodes) and the shape arithmetic around them (Shape, Gather, Concat, Unsqueeze, Cast, …),
// computed in plain JavaScript so that folding them never touches a tfjs backend, a gradient tape or int64
// precision (tfjs has int32 only). Float data is kept as Float32Array, integers as plain numbers.

/** What a host tensor holds: floats (float32/float64 in the file), integers (int32/int64/uint8/int8) or booleans. */
export type HostKind = 'float' | 'int' | 'bool';

export interface HostTensor {
  readonly host: true;
  readonly kind: HostKind;
  readonly dims: readonly number[];
  readonly data: Float32Array | readonly number[];
}

export const sizeOf = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function hostTensor(kind: HostKind, dims: readonly number[], data: Float32Array | readonly number[]): HostTensor {
  if (data.length !== sizeOf(dims)) throw new Error(`host tensor of shape [${dims.join(', ')}] given ${data.length} values`);
  return { host: true, kind, dims: [...dims], data };
}

export const isHost = (v: unknown): v is HostTensor => typeof v === 'object' && v !== null && (v as { host?: unknown }).host === true;

/** The values as numbers (a scalar or a 1-D list, as shape arithmetic uses them). */
export const values = (t: HostTensor): number[] => Array.from(t.data as ArrayLike<number>);

/** Row-major strides of a shape. */
export function strides(dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) out[i] = out[i + 1]! * dims[i + 1]!;
  return out;
}

/** numpy-style broadcast of two shapes; throws when they do not broadcast. */
export function broadcastDims(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Index into a tensor of shape `dims` from an index of the broadcast shape `out`. */
function broadcastIndex(flat: number, out: readonly number[], outStrides: readonly number[], dims: readonly number[]): number {
  const s = strides(dims);
  const offset = out.length - dims.length;
  let index = 0;
  for (let i = 0; i < dims.length; i++) {
    const coordinate = Math.floor(flat / outStrides[i + offset]!) % out[i + offset]!;
    index += (dims[i] === 1 ? 0 : coordinate) * s[i]!;
  }
  return index;
}

/** An elementwise binary operation with broadcasting; integer division truncates, as ONNX's Div on integers does. */
export function hostBinary(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: HostTensor, b: HostTensor): HostTensor {
  const dims = broadcastDims(a.dims, b.dims);
  const outStrides = strides(dims);
  const n = sizeOf(dims);
  const integer = a.kind === 'int' && b.kind === 'int';
  const out = integer ? new Array<number>(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = a.data[broadcastIndex(i, dims, outStrides, a.dims)]!;
    const y = b.data[broadcastIndex(i, dims, outStrides, b.dims)]!;
    const r = op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : x / y;
    out[i] = integer && op === 'Div' ? Math.trunc(r) : r;
  }
  return hostTensor(integer ? 'int' : 'float', dims, out);
}

/** Gather along `axis` (negative indices count from the end, as ONNX allows). */
export function hostGather(x: HostTensor, indices: HostTensor, axis: number): HostTensor {
  const ax = axis < 0 ? axis + x.dims.length : axis;
  const outer = sizeOf(x.dims.slice(0, ax));
  const inner = sizeOf(x.dims.slice(ax + 1));
  const extent = x.dims[ax]!;
  const idx = values(indices).map((i) => (i < 0 ? i + extent : i));
  if (idx.some((i) => i < 0 || i >= extent)) throw new Error(`Gather index out of range for a dimension of ${extent}`);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const i of idx) for (let k = 0; k < inner; k++) out.push(x.data[(o * extent + i) * inner + k]!);
  }
  const dims = [...x.dims.slice(0, ax), ...indices.dims, ...x.dims.slice(ax + 1)];
  return hostTensor(x.kind, dims, x.kind === 'float' ? Float32Array.from(out) : out);
}

/** Concatenation along `axis`. */
export function hostConcat(parts: readonly HostTensor[], axis: number): HostTensor {
  const first = parts[0]!;
  const ax = axis < 0 ? axis + first.dims.length : axis;
  const outer = sizeOf(first.dims.slice(0, ax));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const block = sizeOf(p.dims.slice(ax));
      for (let k = 0; k < block; k++) out.push(p.data[o * block + k]!);
    }
  }
  const dims = [...first.dims];
  dims[ax] = parts.reduce((s, p) => s + p.dims[ax]!, 0);
  const kind = parts.every((p) => p.kind === 'int') ? 'int' : parts.every((p) => p.kind === 'bool') ? 'bool' : 'float';
  return hostTensor(kind, dims, kind === 'float' ? Float32Array.from(out) : out);
}

/** Transpose by `perm`. */
export function hostTranspose(x: HostTensor, perm: readonly number[]): HostTensor {
  const dims = perm.map((p) => x.dims[p]!);
  const inStrides = strides(x.dims);
  const outStrides = strides(dims);
  const n = sizeOf(dims);
  const out: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < dims.length; d++) src += (Math.floor(i / outStrides[d]!) % dims[d]!) * inStrides[perm[d]!]!;
    out[i] = x.data[src]!;
  }
  return hostTensor(x.kind, dims, x.kind === 'float' ? Float32Array.from(out) : out);
}

/** Slice with positive steps along the given axes (start/end already clamped to the dimension). */
export function hostSlice(x: HostTensor, begin: readonly number[], end: readonly number[], step: readonly number[]): HostTensor {
  const dims = x.dims.map((_, d) => Math.max(0, Math.ceil((end[d]! - begin[d]!) / step[d]!)));
  const inStrides = strides(x.dims);
  const outStrides = strides(dims);
  const n = sizeOf(dims);
  const out: number[] = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < dims.length; d++) src += (begin[d]! + (Math.floor(i / outStrides[d]!) % dims[d]!) * step[d]!) * inStrides[d]!;
    out[i] = x.data[src]!;
  }
  return hostTensor(x.kind, dims, x.kind === 'float' ? Float32Array.from(out) : out);
}
