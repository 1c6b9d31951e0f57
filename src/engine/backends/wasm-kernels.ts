// Pure-npm additions to the tfjs wasm backend: transposed matrix products as an explicit Transpose plus the fast plain
// product, and the Conv2DBackpropFilter kernel it lacks (at the end of this file).
//
// tfjs-backend-wasm 4.22 multiplies with XNNPACK only when neither operand is transposed; with a
// transpose it falls back to a scalar blocked loop, 8-12x slower on 256-wide matrices (notes: one
// 128x256 by 256x256 product is 0.73 ms plain, 6.0 ms transposeB, 8.9 ms transposeA, 1.8 ms as an
// explicit transpose then plain). A dense layer's backward pass is exactly those two transposed
// products, so this wrapper transposes the operand with the backend's own Transpose kernel and runs
// the plain product. It needs no native code: it is what a pure `npm install` gets.
import { swapKernel } from './kernel-swap.js';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';

type Tf = typeof import('@tensorflow/tfjs');

interface WasmBackendLike {
  disposeData(dataId: object): boolean;
}

let replaced: KernelConfig | undefined;
const counts = { transposed: 0, plain: 0 };

/** How many products went through the explicit transpose since registration (tests, benchmarks). */
export function wasmMatMulStats(): { transposed: number; plain: number } {
  return { ...counts };
}

/**
 * Wraps the wasm backend's BatchMatMul (call after `@tensorflow/tfjs-backend-wasm` is imported).
 * Idempotent; returns whether the wrapper is in place.
 */
export function registerWasmTransposedMatMul(tf: Tf): boolean {
  if (replaced !== undefined) return true;
  const stock = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (stock === undefined || transpose === undefined) return false;
  const stockFunc = stock.kernelFunc;
  const transposeFunc = transpose.kernelFunc;
  const swapLast = (t: TensorInfo, backend: unknown): TensorInfo => {
    const r = t.shape.length;
    const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
    return transposeFunc({ inputs: { x: t }, backend: backend as never, attrs: { perm } }) as TensorInfo;
  };
  const kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const transposeA = args.attrs?.['transposeA'] === true, transposeB = args.attrs?.['transposeB'] === true;
    if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
      counts.plain++;
      return stockFunc(args);
    }
    const backend = args.backend as unknown as WasmBackendLike;
    const aPlain = transposeA ? swapLast(a, args.backend) : a;
    const bPlain = transposeB ? swapLast(b, args.backend) : b;
    try {
      counts.transposed++;
      return stockFunc({ ...args, inputs: { a: aPlain, b: bPlain }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      if (aPlain !== a) backend.disposeData(aPlain.dataId);
      if (bPlain !== b) backend.disposeData(bPlain.dataId);
    }
  }) as KernelFunc;
  replaced = swapKernel(tf, stock, kernelFunc);
  return true;
}

/** Puts the stock kernel back (tests compare both). */
export function restoreWasmMatMul(tf: Tf): void {
  if (replaced === undefined) return;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(replaced);
  replaced = undefined;
}

// ---------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter, which tfjs-backend-wasm 4.22 lacks (tfjs #8474: tf.grads through tf.conv2d throws
// "kernel not registered"). Its Conv2D, Conv2DBackpropInput, MaxPoolGrad and AvgPoolGrad exist.
// dW[K = kh * kw * c, cout] = colsT[K, M] x dY[M = n * oh * ow, cout]: the column matrix is written
// transposed straight into the wasm heap, so that the product is the plain one (XNNPACK, or OpenBLAS
// where the native design replaced BatchMatMul) through whichever BatchMatMul is registered.

interface WasmHeapBackend extends WasmBackendLike {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

let addedConvFilter = false;
let convFilterCalls = 0;

/** How often the wasm Conv2DBackpropFilter added here ran (tests). */
export function wasmConvFilterCalls(): number {
  return convFilterCalls;
}

/** colsT[(i * kw + j) * c + ci][r] = x at output pixel r's tap (i, j), channel ci (0 in the padding). */
function im2colTransposed(x: Float32Array, cols: Float32Array, info: import('@tensorflow/tfjs').backend_util.Conv2DInfo): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, padInfo } = info;
  const m = n * oh * ow;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const rowBase = (i * kw + j) * c * m;
      let r = 0;
      for (let b = 0; b < n; b++) {
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - padInfo.top + i;
          for (let ox = 0; ox < ow; ox++, r++) {
            const ix = ox * sw - padInfo.left + j;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
              for (let ci = 0; ci < c; ci++) cols[rowBase + ci * m + r] = 0;
              continue;
            }
            const src = ((b * h + iy) * w + ix) * c;
            for (let ci = 0; ci < c; ci++) cols[rowBase + ci * m + r] = x[src + ci]!;
          }
        }
      }
    }
  }
}

/**
 * Registers Conv2DBackpropFilter for the wasm backend (call after `@tensorflow/tfjs-backend-wasm` is
 * imported). Idempotent; returns whether one is registered (ours, or a later tfjs's own).
 */
export function registerWasmConvBackpropFilter(tf: Tf): boolean {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) return true;
  if (tf.getKernel('BatchMatMul', 'wasm') === undefined) return false;
  const kernelFunc = ((args: Parameters<KernelFunc>[0]) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const backend = args.backend as unknown as WasmHeapBackend;
    const attrs = args.attrs as Record<string, unknown>;
    const format = tf.backend_util.convertConv2DDataFormat((attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
    if (format !== 'channelsLast') throw new Error("wasm backend Conv2DBackpropFilter (gradlens) supports dataFormat 'NHWC' only");
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') throw new Error('wasm backend Conv2DBackpropFilter (gradlens) supports float32 only');
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], attrs['filterShape'] as [number, number, number, number],
      attrs['strides'] as number | [number, number], 1, attrs['pad'] as 'same', attrs['dimRoundingMode'] as 'floor' | undefined, false, format,
    );
    const m = info.batchSize * info.outHeight * info.outWidth, k = info.filterHeight * info.filterWidth * info.inChannels;
    const cols = backend.makeOutput([k, m], 'float32');
    // Views after the allocation: it may have grown (and so replaced) the wasm memory.
    const heap = backend.wasm.HEAPU8.buffer;
    const xv = new Float32Array(heap, backend.dataIdMap.get(x.dataId)!.memoryOffset, x.shape.reduce((p, d) => p * d, 1));
    im2colTransposed(xv, new Float32Array(heap, backend.dataIdMap.get(cols.dataId)!.memoryOffset, k * m), info);
    const dy2 = { dataId: dy.dataId, shape: [m, info.outChannels], dtype: 'float32' } as TensorInfo;
    const matMul = tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc;
    try {
      const product = matMul({ inputs: { a: cols, b: dy2 }, backend: args.backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
      convFilterCalls++;
      return { dataId: product.dataId, shape: info.filterShape, dtype: 'float32' } as TensorInfo;
    } finally {
      backend.disposeData(cols.dataId);
    }
  }) as KernelFunc;
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc });
  addedConvFilter = true;
  return true;
}

/** Removes the kernel added above (tests show that tf.grads through conv2d needs it). */
export function removeWasmConvBackpropFilter(tf: Tf): void {
  if (!addedConvFilter) return;
  tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  addedConvFilter = false;
}
