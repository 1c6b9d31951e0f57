// Native (conv.c: im2col + OpenBLAS) replacements for tfjs's cpu Conv2D, its two gradients, and NHWC max/avg pooling with theirs.
//
// Each kernel computes the geometry with the same backend_util call and arguments as the stock kernel it
// replaces (tfjs-backend-cpu 4.22), hands plain integers to C, and returns null, so that the caller runs
// the stock kernel, for anything it does not cover: NCHW, other dtypes, empty tensors, shapes that
// disagree with the geometry. Native-kernels.ts wraps these with the fallback and the counters.
import type { DataType, NamedAttrMap, TensorInfo, backend_util as BackendUtil } from '@tensorflow/tfjs';

type Tf = typeof import('@tensorflow/tfjs');

/** What the conv kernels need of the addon (native/src/gradlens_native.c, convKernel). */
export interface ConvAddon {
  convKernel(op: number, a: Float32Array, b: Float32Array, out: Float32Array, geometry: Int32Array): void;
}

/** The cpu backend as the kernels see it (shared with native-kernels.ts). */
export interface CpuBackendInternals {
  data: { get(dataId: object): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: DataType, values: Float32Array): TensorInfo;
  disposeIntermediateTensorInfo(info: TensorInfo): void;
}

export type Impl = (args: { inputs: Record<string, TensorInfo | undefined>; backend: CpuBackendInternals; attrs: NamedAttrMap }) => TensorInfo | null;

/** Reads a float32 tensor's own value array (or null where the kernel must fall back). */
export type F32Reader = (backend: CpuBackendInternals, t: TensorInfo) => Float32Array | null;

/** The kernels this file provides, in the order of NATIVE_CPU_KERNELS. */
export const NATIVE_CONV_KERNELS = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad'] as const;

// Op codes shared with native/src/gradlens_native.c (js_conv_kernel).
const CONV_FWD = 0, CONV_BP_INPUT = 1, CONV_BP_FILTER = 2, POOL_MAX = 3, POOL_AVG = 4, POOL_MAX_GRAD = 5, POOL_AVG_GRAD = 6;

const EMPTY = new Float32Array(0);

/** [n, h, w, c, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl], the C side's conv_geom. */
function geometry(info: BackendUtil.Conv2DInfo, pooling: boolean): Int32Array | null {
  const g = [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    pooling ? info.inChannels : info.outChannels, info.filterHeight, info.filterWidth, info.strideHeight,
    info.strideWidth, info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left,
  ];
  // Empty tensors and odd paddings stay with the stock kernel (the C side refuses them).
  for (let i = 0; i < 13; i++) if (!(g[i]! >= 1)) return null;
  if (!(g[13]! >= 0 && g[14]! >= 0)) return null;
  return Int32Array.from(g);
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export function makeConvImpls(tf: Tf, native: ConvAddon, f32: F32Reader): Record<(typeof NATIVE_CONV_KERNELS)[number], Impl> {
  const bu = tf.backend_util;

  /** computeConv2DInfo as the stock kernel calls it, or null for NCHW or arguments it would reject. */
  const convInfo = (
    xShape: number[], filterShape: number[], attrs: NamedAttrMap, dilations: number | [number, number],
  ): BackendUtil.Conv2DInfo | null => {
    if (xShape.length !== 4 || filterShape.length !== 4) return null;
    try {
      const format = bu.convertConv2DDataFormat((attrs['dataFormat'] as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
      if (format !== 'channelsLast') return null;
      return bu.computeConv2DInfo(
        xShape as [number, number, number, number], filterShape as [number, number, number, number],
        attrs['strides'] as number | [number, number], dilations, attrs['pad'] as 'same' | 'valid' | number,
        attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined, false, format,
      );
    } catch {
      return null; // the stock kernel throws its own error
    }
  };

  /** computePool2DInfo as the stock pooling kernels call it (dilation 1, NHWC). */
  const poolInfo = (xShape: number[], attrs: NamedAttrMap, withRounding: boolean): BackendUtil.Conv2DInfo | null => {
    if (xShape.length !== 4) return null;
    try {
      return bu.computePool2DInfo(
        xShape as [number, number, number, number], attrs['filterSize'] as number | [number, number],
        attrs['strides'] as number | [number, number], 1, attrs['pad'] as 'same' | 'valid' | number,
        withRounding ? (attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined) : undefined,
      );
    } catch {
      return null;
    }
  };

  /** Runs one C kernel into a fresh (zeroed) output of `shape`. */
  const run = (
    backend: CpuBackendInternals, op: number, a: Float32Array, b: Float32Array, shape: number[], geom: Int32Array,
  ): TensorInfo => {
    const out = new Float32Array(shape.reduce((p, d) => p * d, 1));
    native.convKernel(op, a, b, out, geom);
    return backend.makeTensorInfo(shape, 'float32', out);
  };

  const pool = (op: number): Impl => ({ inputs, backend, attrs }) => {
    const x = inputs['x'];
    const xv = x ? f32(backend, x) : null;
    const info = x && xv ? poolInfo(x.shape, attrs, true) : null;
    if (!x || !xv || !info) return null;
    // The stock kernels return the input itself for a 1x1 window that keeps the shape.
    if (info.filterHeight === 1 && info.filterWidth === 1 && sameShape(info.inShape, info.outShape)) return null;
    const geom = geometry(info, true);
    return geom ? run(backend, op, xv, EMPTY, info.outShape, geom) : null;
  };

  return {
    Conv2D: ({ inputs, backend, attrs }) => {
      const { x, filter } = inputs;
      const xv = x ? f32(backend, x) : null, wv = filter ? f32(backend, filter) : null;
      if (!x || !filter || !xv || !wv) return null;
      const info = convInfo(x.shape, filter.shape, attrs, (attrs['dilations'] as number | [number, number] | undefined) ?? 1);
      const geom = info ? geometry(info, false) : null;
      return info && geom ? run(backend, CONV_FWD, xv, wv, info.outShape, geom) : null;
    },
    Conv2DBackpropInput: ({ inputs, backend, attrs }) => {
      const { dy, filter } = inputs;
      const dyv = dy ? f32(backend, dy) : null, wv = filter ? f32(backend, filter) : null;
      if (!dy || !filter || !dyv || !wv) return null;
      const info = convInfo(attrs['inputShape'] as number[], filter.shape, attrs, 1);
      const geom = info && sameShape(dy.shape, info.outShape) ? geometry(info, false) : null;
      return info && geom ? run(backend, CONV_BP_INPUT, dyv, wv, info.inShape, geom) : null;
    },
    Conv2DBackpropFilter: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs;
      const xv = x ? f32(backend, x) : null, dyv = dy ? f32(backend, dy) : null;
      if (!x || !dy || !xv || !dyv) return null;
      const info = convInfo(x.shape, attrs['filterShape'] as number[], attrs, 1);
      const geom = info && sameShape(dy.shape, info.outShape) ? geometry(info, false) : null;
      return info && geom ? run(backend, CONV_BP_FILTER, xv, dyv, info.filterShape, geom) : null;
    },
    MaxPool: pool(POOL_MAX),
    AvgPool: pool(POOL_AVG),
    MaxPoolGrad: ({ inputs, backend, attrs }) => {
      const { dy, input } = inputs;
      const xv = input ? f32(backend, input) : null, dyv = dy ? f32(backend, dy) : null;
      if (!dy || !input || !xv || !dyv) return null;
      const info = poolInfo(input.shape, attrs, true);
      const geom = info && sameShape(dy.shape, info.outShape) ? geometry(info, true) : null;
      return info && geom ? run(backend, POOL_MAX_GRAD, xv, dyv, input.shape, geom) : null;
    },
    AvgPoolGrad: ({ inputs, backend, attrs }) => {
      const { dy, input } = inputs;
      const dyv = dy ? f32(backend, dy) : null;
      if (!dy || !input || !dyv || input.dtype !== 'float32') return null;
      // The stock AvgPoolGrad ignores dimRoundingMode.
      const info = poolInfo(input.shape, attrs, false);
      const geom = info && sameShape(dy.shape, info.outShape) ? geometry(info, true) : null;
      return info && geom ? run(backend, POOL_AVG_GRAD, dyv, EMPTY, input.shape, geom) : null;
    },
  };
}
