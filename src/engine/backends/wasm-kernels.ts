// Pure-npm speed-up for the tfjs wasm backend: transposed matrix products as an explicit Transpose plus the fast plain product.
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
