// Optional native (N-API + OpenBLAS) replacements for the tfjs cpu kernels that dominate dense and convolutional forward and backward passes.
import { swapKernel } from './kernel-swap.js';
import { makeConvImpls, NATIVE_CONV_KERNELS, type ConvAddon, type CpuBackendInternals, type Impl } from './native-conv.js';
import { setZigguratFill, type ZigguratFill } from '../common/random.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataType, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

type Tf = typeof import('@tensorflow/tfjs');

/**
 * The kernels read `backend.data.get(dataId).values` and the wasm backend's heap layout, internals of
 * tfjs that may change in any release: they are only registered on the version they were tested with.
 */
export const NATIVE_KERNELS_TFJS_VERSION = '4.22.0';

/** Kernels that `registerNativeKernels` replaces on the cpu backend (when asked for all of them). */
export const NATIVE_CPU_KERNELS: readonly string[] = Object.freeze([
  'BatchMatMul',
  '_FusedMatMul',
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'SquaredDifference',
  'Relu',
  'Step',
  'Sigmoid',
  'Tanh',
  'Square',
  'Sqrt',
  'Sum',
  // Batch-norm statistics: tf.moments over [0, 1, 2] is two Means.
  'Mean',
  // NHWC convolution and pooling (native-conv.ts, native/src/conv.c).
  ...NATIVE_CONV_KERNELS,
  'FusedConv2D',
  // A permutation copy without tfjs-backend-cpu's per-element index arrays (transposeF32 below).
  'Transpose',
]);

const ADDON_RELATIVE_PATH = join('native', 'build', 'Release', 'gradlens_native.node');
const BUILD_HINT =
  'build it with `npm run build:native` (needs python3, make, g++ and libopenblas-dev; ' +
  'Debian/Ubuntu: apt-get install -y python3 make g++ libopenblas-dev)';

/** Must stay in step with the C limit: deeper broadcasts fall back to the stock kernel. */
const MAX_RANK = 16;

interface NativeAddon extends ConvAddon {
  sgemm(
    a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, c: Float32Array, cOffset: number,
    batch: number, batchA: number, batchB: number, m: number, n: number, k: number,
    transposeA: boolean, transposeB: boolean,
  ): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, meta: Int32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  sum(x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number): void;
  mean(x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number, divisor: number): void;
  setBlasThreads(n: number): void;
  /** coreNote: set when the addon replaced OpenBLAS's Prescott fallback (gradlens_native.c, fix_blas_core). */
  info(): { config: string; corename: string; threads: number; coreNote?: string };
  // Float64 reductions for the statistics (batch-stats.ts); absent from addons built before them.
  moments?(x: Float32Array, out: Float64Array): void;
  centered?(x: Float32Array, mean: number): number;
  derivativeStats?(d: Float32Array, units: number, limit: number, out: Float64Array, deadFlags?: Uint8Array): void;
  rowSumSq?(x: Float32Array, cols: number, out: Float64Array): void;
  // The Ziggurat's rectangle test (common/random.ts); absent from addons built before it.
  zigguratFill?: ZigguratFill;
}

/** The addon's float64 reductions, as batch-stats.ts calls them. */
export interface NativeReductions {
  moments(x: Float32Array, out: Float64Array): void;
  centered(x: Float32Array, mean: number): number;
  derivativeStats(d: Float32Array, units: number, limit: number, out: Float64Array, deadFlags?: Uint8Array): void;
  rowSumSq(x: Float32Array, cols: number, out: Float64Array): void;
}

// Op codes shared with native/src/gradlens_native.c.
const OP_ADD = 0, OP_SUB = 1, OP_MUL = 2, OP_DIV = 3, OP_SQDIFF = 4;
const OP_RELU = 0, OP_STEP = 1, OP_SQUARE = 2, OP_SQRT = 3, OP_SIGMOID = 4, OP_TANH = 5;

export type NativeLoadResult =
  | { loaded: true; kernels: string[]; blas: string; path: string }
  | { loaded: false; reason: string };

let cachedLoad: NativeLoadResult | undefined;
let addon: NativeAddon | undefined;

/** Where the addon would be: `native/build/Release/gradlens_native.node` in this module's directory or above. */
function findAddon(override: string | undefined): { path: string | undefined; searched: string } {
  if (override) return { path: existsSync(override) ? override : undefined, searched: `${override} (GRADLENS_NATIVE_ADDON)` };
  const start = dirname(fileURLToPath(import.meta.url));
  const root = parse(start).root;
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON_RELATIVE_PATH);
    if (existsSync(candidate)) return { path: candidate, searched: candidate };
    if (dir === root) return { path: undefined, searched: `${ADDON_RELATIVE_PATH} in ${start} or any directory above it` };
  }
}

function tryLoad(path: string | undefined, searched: string): NativeLoadResult {
  if (path === undefined) {
    return { loaded: false, reason: `gradlens_native.node is not built (no ${searched}); ${BUILD_HINT}` };
  }
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<NativeAddon>;
    for (const fn of ['sgemm', 'binary', 'unary', 'sum', 'mean', 'convKernel', 'setBlasThreads', 'info'] as const) {
      if (typeof mod[fn] !== 'function') {
        return { loaded: false, reason: `${path} does not export ${fn}(): it is stale or foreign; rebuild it (${BUILD_HINT})` };
      }
    }
    const full = mod as NativeAddon;
    const info = full.info();
    addon = full;
    return {
      loaded: true,
      kernels: [...NATIVE_CPU_KERNELS],
      blas: `${info.config} (core ${info.corename}${info.coreNote ? `: ${info.coreNote}` : ''}, ${info.threads} thread${info.threads === 1 ? '' : 's'})`,
      path,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const hint = /libopenblas|libgfortran/.test(message)
      ? 'install the OpenBLAS runtime (Debian/Ubuntu: apt-get install -y libopenblas0-pthread)'
      : `rebuild it (${BUILD_HINT})`;
    return { loaded: false, reason: `could not load ${path}: ${message}; ${hint}` };
  }
}

/**
 * Loads the compiled addon once per process. Never throws: when the addon is absent or cannot be
 * loaded, the result says why and how to fix it. `addonPath` (the configured GRADLENS_NATIVE_ADDON,
 * read by src/config.ts) replaces the search for that one load: the first call decides, later calls
 * return its result. An explicit `path` is tried afresh, without touching the cached result.
 */
export function loadNativeKernels(options: { path?: string; addonPath?: string } = {}): NativeLoadResult {
  if (options.path !== undefined) {
    return tryLoad(existsSync(options.path) ? options.path : undefined, options.path);
  }
  if (cachedLoad === undefined) {
    const { path, searched } = findAddon(options.addonPath);
    cachedLoad = tryLoad(path, searched);
  }
  return cachedLoad;
}

// ---------------------------------------------------------------------------------------------------
// Kernel implementations. They share the stock kernels' calling convention ({inputs, backend, attrs})
// and create outputs the way the stock kernels do (backend.makeTensorInfo); anything they do not cover
// (other dtypes, complex numbers, odd layouts) goes to the stock kernel kept from before registration.

interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

interface KernelStats { native: number; fallback: number }
const stats = new Map<string, KernelStats>();

function count(name: string, native: boolean): void {
  let s = stats.get(name);
  if (s === undefined) {
    s = { native: 0, fallback: 0 };
    stats.set(name, s);
  }
  if (native) s.native++;
  else s.fallback++;
}

/** How often each replaced kernel ran natively or fell back to the stock kernel since process start. */
export function nativeKernelStats(): Record<string, KernelStats> {
  return Object.fromEntries([...stats].map(([k, v]) => [k, { ...v }]));
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The backend's own Float32Array for a float32 tensor (possibly a subarray view), or null if it is not one. */
function f32(backend: CpuBackendInternals, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId)?.values;
  if (!ArrayBuffer.isView(v) || (v as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] !== 'Float32Array') return null;
  const arr = v as Float32Array;
  return arr.length === sizeOf(t.shape) ? arr : null;
}

interface MatMulPlan {
  outShape: number[];
  batch: number;
  batchA: number;
  batchB: number;
  m: number;
  n: number;
  k: number;
}

/** The dimensions tfjs-backend-cpu's BatchMatMul uses, or null where we leave the case to the stock kernel. */
function planMatMul(tf: Tf, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): MatMulPlan | null {
  const aRank = a.shape.length, bRank = b.shape.length;
  if (aRank < 2 || bRank < 2) return null;
  const k = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
  const kB = transposeB ? b.shape[bRank - 1]! : b.shape[bRank - 2]!;
  const m = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
  const n = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
  if (k !== kB) return null; // the stock kernel throws the proper error
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = sizeOf(outerA), batchB = sizeOf(outerB);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const outShape = outer.concat([m, n]);
  const batch = Math.max(batchA, batchB);
  // The stock kernel indexes batches as bi % batchA; where that disagrees with the broadcast output shape
  // (e.g. [2,1] x [3]) or a size is zero, let it do whatever it does.
  if (batchA === 0 || batchB === 0 || m === 0 || n === 0 || batch * m * n !== sizeOf(outShape)) return null;
  return { outShape, batch, batchA, batchB, m, n, k };
}

/** `conv2D` is native-conv.ts's Conv2D, which FusedConv2D runs before its bias and activation. */
/**
 * x [shape] permuted by `perm` (output axis i is input axis perm[i]), float32, the same values as tfjs-backend-cpu's
 * transposeImpl. Why not the stock kernel: it allocates two index arrays per element (indexToLoc, locToIndex), about
 * a hundred times the cost of the copy; an imported NCHW model transposes around every convolution (R18-onnx:
 * bench/profile-onnx.ts). Walks the output in order with an odometer over its outer axes; the innermost output axis
 * is a strided run through the input.
 */
export function transposeF32(x: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const out = new Float32Array(x.length);
  if (x.length === 0) return out;
  if (rank <= 1) {
    out.set(x);
    return out;
  }
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, stride = 1; i >= 0; i--) {
    inStrides[i] = stride;
    stride *= shape[i]!;
  }
  const outShape = perm.map((p) => shape[p]!);
  const step = perm.map((p) => inStrides[p]!);
  const last = rank - 1;
  const n = outShape[last]!, runStride = step[last]!;
  const index = new Array<number>(rank).fill(0);
  let base = 0, o = 0;
  for (let run = x.length / n; run > 0; run--) {
    for (let j = 0, at = base; j < n; j++, at += runStride) out[o++] = x[at]!;
    for (let a = last - 1; a >= 0; a--) {
      base += step[a]!;
      if (++index[a]! < outShape[a]!) break;
      base -= step[a]! * outShape[a]!;
      index[a] = 0;
    }
  }
  return out;
}

function makeCpuImpls(tf: Tf, native: NativeAddon, conv2D: Impl): Record<string, Impl> {
  const meta = new Int32Array(1 + 3 * MAX_RANK);

  const matMul = (backend: CpuBackendInternals, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null => {
    const av = f32(backend, a), bv = f32(backend, b);
    if (av === null || bv === null) return null;
    const plan = planMatMul(tf, a, b, transposeA, transposeB);
    if (plan === null) return null;
    const out = new Float32Array(plan.batch * plan.m * plan.n);
    native.sgemm(av, 0, bv, 0, out, 0, plan.batch, plan.batchA, plan.batchB, plan.m, plan.n, plan.k, transposeA, transposeB);
    return backend.makeTensorInfo(plan.outShape, 'float32', out);
  };

  const binary = (backend: CpuBackendInternals, op: number, a: TensorInfo, b: TensorInfo): TensorInfo | null => {
    const av = f32(backend, a), bv = f32(backend, b);
    if (av === null || bv === null) return null;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const rank = outShape.length;
    if (rank > MAX_RANK) return null;
    meta[0] = rank;
    const aPad = rank - a.shape.length, bPad = rank - b.shape.length;
    for (let d = 0; d < rank; d++) {
      meta[1 + d] = outShape[d]!;
      meta[1 + rank + d] = d < aPad ? 1 : a.shape[d - aPad]!;
      meta[1 + 2 * rank + d] = d < bPad ? 1 : b.shape[d - bPad]!;
    }
    const out = new Float32Array(sizeOf(outShape));
    native.binary(op, av, bv, out, meta);
    return backend.makeTensorInfo(outShape, 'float32', out);
  };

  const unary = (backend: CpuBackendInternals, op: number, x: TensorInfo, alpha = 0): TensorInfo | null => {
    const xv = f32(backend, x);
    if (xv === null) return null;
    const out = new Float32Array(xv.length);
    native.unary(op, xv, out, alpha);
    return backend.makeTensorInfo(x.shape, 'float32', out);
  };

  const binaryImpl = (op: number): Impl => ({ inputs, backend }) =>
    inputs['a'] && inputs['b'] ? binary(backend, op, inputs['a'], inputs['b']) : null;
  const unaryImpl = (op: number): Impl => ({ inputs, backend }) => (inputs['x'] ? unary(backend, op, inputs['x']) : null);

  /**
   * Sum, or Mean (the stock Mean divides each element by the count, then sums), over a run of
   * consecutive axes in increasing order: then [outer, reduce, inner] sums in exactly the stock kernel's
   * order. Anything else (e.g. axes [2, 0]) goes to the stock kernel.
   */
  const reduceImpl = (mean: boolean): Impl => ({ inputs, backend, attrs }) => {
    const x = inputs['x'];
    if (!x) return null;
    const xv = f32(backend, x);
    if (xv === null) return null;
    const shape = x.shape;
    const axes = tf.util.parseAxisParam((attrs['axis'] ?? null) as number | number[], shape);
    if (axes.length === 0) return null;
    const first = axes[0]!, last = axes[axes.length - 1]!;
    for (let i = 1; i < axes.length; i++) if (axes[i] !== first + i) return null;
    const outer = sizeOf(shape.slice(0, first)), reduce = sizeOf(shape.slice(first, last + 1)), inner = sizeOf(shape.slice(last + 1));
    // A count float32 cannot hold exactly would make the stock division differ.
    if (mean && (reduce === 0 || reduce > 2 ** 24)) return null;
    const outShape = attrs['keepDims'] === true
      ? shape.map((d, i) => (i >= first && i <= last ? 1 : d))
      : shape.filter((_, i) => i < first || i > last);
    const out = new Float32Array(outer * inner);
    if (mean) native.mean(xv, out, outer, reduce, inner, reduce);
    else native.sum(xv, out, outer, reduce, inner);
    return backend.makeTensorInfo(outShape, 'float32', out);
  };

  /** The bias and activations the fused kernels handle here (others go to the stock kernel). */
  const fusable = (bias: TensorInfo | undefined, attrs: NamedAttrMap): boolean => {
    const activation = attrs['activation'] as string | undefined;
    if (activation && activation !== 'linear' && activation !== 'relu' && activation !== 'sigmoid') return false;
    return !bias || (bias.dtype === 'float32' && sizeOf(bias.shape) > 0);
  };

  /** product + bias, then the activation, as the stock fused kernels do (intermediates freed). */
  const epilogue = (backend: CpuBackendInternals, product: TensorInfo, bias: TensorInfo | undefined, attrs: NamedAttrMap): TensorInfo | null => {
    const activation = attrs['activation'] as string | undefined;
    let current = product;
    if (bias) {
      const biased = binary(backend, OP_ADD, current, bias);
      backend.disposeIntermediateTensorInfo(current);
      if (biased === null) return null;
      current = biased;
    }
    if (activation === 'relu' || activation === 'sigmoid') {
      const activated = unary(backend, activation === 'relu' ? OP_RELU : OP_SIGMOID, current);
      backend.disposeIntermediateTensorInfo(current);
      if (activated === null) return null;
      current = activated;
    }
    return current;
  };

  return {
    BatchMatMul: ({ inputs, backend, attrs }) => {
      const { a, b } = inputs;
      if (!a || !b) return null;
      return matMul(backend, a, b, attrs['transposeA'] === true, attrs['transposeB'] === true);
    },
    _FusedMatMul: ({ inputs, backend, attrs }) => {
      const { a, b, bias } = inputs;
      if (!a || !b || !fusable(bias, attrs)) return null;
      const product = matMul(backend, a, b, attrs['transposeA'] === true, attrs['transposeB'] === true);
      return product === null ? null : epilogue(backend, product, bias, attrs);
    },
    // Only tf.fused.conv2d (and tfjs-layers) dispatch it: the stock kernel calls the stock conv2D
    // function directly, not the registered Conv2D, so without this it would run in JavaScript.
    FusedConv2D: (args) => {
      const { x, filter, bias } = args.inputs;
      if (!x || !filter || !fusable(bias, args.attrs)) return null;
      const product = conv2D({ ...args, inputs: { x, filter } });
      return product === null ? null : epilogue(args.backend, product, bias, args.attrs);
    },
    Add: binaryImpl(OP_ADD),
    Sub: binaryImpl(OP_SUB),
    Multiply: binaryImpl(OP_MUL),
    RealDiv: binaryImpl(OP_DIV),
    SquaredDifference: binaryImpl(OP_SQDIFF),
    Relu: unaryImpl(OP_RELU),
    Step: ({ inputs, backend, attrs }) => {
      const alpha = attrs['alpha'];
      return inputs['x'] && typeof alpha === 'number' ? unary(backend, OP_STEP, inputs['x'], alpha) : null;
    },
    Sigmoid: unaryImpl(OP_SIGMOID),
    Tanh: unaryImpl(OP_TANH),
    Square: unaryImpl(OP_SQUARE),
    Sqrt: unaryImpl(OP_SQRT),
    Sum: reduceImpl(false),
    Mean: reduceImpl(true),
    Transpose: ({ inputs, backend, attrs }) => {
      const x = inputs['x'];
      const perm = attrs['perm'] as number[] | undefined;
      const values = x ? f32(backend, x) : null;
      if (!x || values === null || !Array.isArray(perm) || perm.length !== x.shape.length) return null;
      return backend.makeTensorInfo(perm.map((p) => x.shape[p]!), 'float32', transposeF32(values, x.shape, perm));
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Registration.

const replacedCpu = new Map<string, KernelConfig>();
let replacedWasmMatMul: KernelConfig | undefined;
let registrationIssue: string | undefined;

function versionIssue(tf: Tf): string | undefined {
  const cpu = (tf.version as Record<string, string | undefined>)['tfjs-backend-cpu'];
  if (tf.version_core !== NATIVE_KERNELS_TFJS_VERSION || (cpu !== undefined && cpu !== NATIVE_KERNELS_TFJS_VERSION)) {
    return `native kernels are tested against tfjs ${NATIVE_KERNELS_TFJS_VERSION} internals, found tfjs-core ${tf.version_core}` +
      (cpu !== undefined ? ` / tfjs-backend-cpu ${cpu}` : '') + '; re-run test/engine/native-kernels.test.ts and update NATIVE_KERNELS_TFJS_VERSION';
  }
  return undefined;
}

/**
 * Replaces the cpu backend's kernels with the native ones and returns their names. Idempotent: a second
 * call returns the kernels already replaced (call `restoreStockKernels` first to change the set).
 * Returns [] when the addon is not loaded or the tfjs version is not the tested one; then
 * `nativeKernelsIssue()` says why. `options.kernels` limits the replacement to some kernels (benchmarks).
 */
export function registerNativeKernels(tf: Tf, options: { kernels?: readonly string[] } = {}): string[] {
  if (replacedCpu.size > 0) return [...replacedCpu.keys()];
  const load = loadNativeKernels();
  if (!load.loaded || addon === undefined) {
    registrationIssue = load.loaded ? 'addon not loaded' : load.reason;
    return [];
  }
  const issue = versionIssue(tf);
  if (issue !== undefined) {
    registrationIssue = issue;
    return [];
  }
  const conv = makeConvImpls(tf, addon, f32);
  const impls: Record<string, Impl> = { ...makeCpuImpls(tf, addon, conv.Conv2D), ...conv };
  const wanted = options.kernels ?? NATIVE_CPU_KERNELS;
  for (const name of wanted) {
    const impl = impls[name];
    if (impl === undefined) throw new Error(`registerNativeKernels: no native kernel named ${name}`);
    const stock = tf.getKernel(name, 'cpu');
    if (stock === undefined) continue;
    const stockFunc = stock.kernelFunc;
    const kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
      const result = impl(args as unknown as Parameters<Impl>[0]);
      count(name, result !== null);
      return result ?? stockFunc(args);
    }) as KernelFunc;
    replacedCpu.set(name, swapKernel(tf, stock, kernelFunc));
  }
  registrationIssue = undefined;
  // Weight draws in C too while the native path is on (the same numbers: common/random.ts).
  if (addon.zigguratFill) setZigguratFill(addon.zigguratFill.bind(addon));
  return [...replacedCpu.keys()];
}

/**
 * Replaces only the wasm backend's BatchMatMul with OpenBLAS reading and writing the wasm heap in place
 * (the wasm backend's own GEMM is slow for transposed operands, i.e. for every backward product).
 * Needs `@tensorflow/tfjs-backend-wasm` imported. Returns whether it is registered.
 */
export function registerNativeWasmMatMul(tf: Tf): boolean {
  if (replacedWasmMatMul !== undefined) return true;
  const load = loadNativeKernels();
  if (!load.loaded || addon === undefined) {
    registrationIssue = load.loaded ? 'addon not loaded' : load.reason;
    return false;
  }
  const issue = versionIssue(tf);
  if (issue !== undefined) {
    registrationIssue = issue;
    return false;
  }
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  if (stock === undefined) {
    registrationIssue = 'the wasm backend is not loaded (import @tensorflow/tfjs-backend-wasm first)';
    return false;
  }
  const native = addon;
  const stockFunc = stock.kernelFunc;
  let heap: Float32Array | undefined;
  const kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const transposeA = args.attrs?.['transposeA'] === true, transposeB = args.attrs?.['transposeB'] === true;
    const backend = args.backend as unknown as WasmBackendInternals;
    const plan = a.dtype === 'float32' && b.dtype === 'float32' ? planMatMul(tf, a, b, transposeA, transposeB) : null;
    const aMem = backend.dataIdMap.get(a.dataId), bMem = backend.dataIdMap.get(b.dataId);
    if (plan === null || aMem === undefined || bMem === undefined) {
      count('wasm:BatchMatMul', false);
      return stockFunc(args);
    }
    const out = backend.makeOutput([plan.batch, plan.m, plan.n], 'float32');
    const outMem = backend.dataIdMap.get(out.dataId)!;
    // Allocating the output may have grown the wasm memory, which replaces its buffer.
    const buffer = backend.wasm.HEAPU8.buffer;
    if (heap === undefined || heap.buffer !== buffer) heap = new Float32Array(buffer);
    native.sgemm(
      heap, aMem.memoryOffset >>> 2, heap, bMem.memoryOffset >>> 2, heap, outMem.memoryOffset >>> 2,
      plan.batch, plan.batchA, plan.batchB, plan.m, plan.n, plan.k, transposeA, transposeB,
    );
    count('wasm:BatchMatMul', true);
    return { dataId: out.dataId, shape: plan.outShape, dtype: 'float32' } as TensorInfo;
  }) as KernelFunc;
  replacedWasmMatMul = swapKernel(tf, stock, kernelFunc);
  return true;
}

/** Puts the stock kernels back (tests and benchmarks compare both in one process). */
export function restoreStockKernels(tf: Tf): void {
  for (const [name, stock] of replacedCpu) {
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel(stock);
  }
  replacedCpu.clear();
  setZigguratFill(null);
  if (replacedWasmMatMul !== undefined) {
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel(replacedWasmMatMul);
    replacedWasmMatMul = undefined;
  }
}

/**
 * The addon's reductions while native kernels are registered (they are part of the native path, so a
 * wasm or cpu run without it measures what pure npm gives), else null. An addon built before they
 * existed has none: the statistics then stay in JavaScript.
 */
export function nativeReductions(): NativeReductions | null {
  if (addon === undefined || (replacedCpu.size === 0 && replacedWasmMatMul === undefined)) return null;
  const a = addon;
  if (!a.moments || !a.centered || !a.derivativeStats || !a.rowSumSq) return null;
  return a as NativeReductions;
}

/** Why the last registration attempt registered nothing, if it did. */
export function nativeKernelsIssue(): string | undefined {
  return registrationIssue;
}
