// The native NHWC Conv2D (forward, backprop-input, backprop-filter) and max/avg pooling kernels against the stock tfjs cpu kernels.
//
// Each case runs the same tfjs ops with the stock kernels and with the native ones registered (the swap
// the native backend makes) and compares: pooling forward bit for bit, everything else within the
// rounding of a float32 sum of that many terms, and in relative norm within 1e-5. The counters of
// nativeKernelStats prove the native kernel ran, so removing a registration fails these tests.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect } from 'vitest';
import { Rng } from '../../src/engine/common/random.js';
import { NATIVE_CPU_KERNELS, nativeKernelStats, registerNativeKernels, restoreStockKernels } from '../../src/engine/backends/native-kernels.js';
import { describeNative, itNative, native } from '../support/native.js';

const rng = new Rng(12);
const random = (shape: number[]): tf.Tensor4D => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor4d(Float32Array.from({ length: n }, () => rng.normal()), shape as [number, number, number, number]);
};

/** Runs `f` with the stock or the native kernels and copies the results out. */
function run(useNative: boolean, f: () => tf.Tensor[]): Float32Array[] {
  if (useNative) expect(registerNativeKernels(tf).length).toBe(NATIVE_CPU_KERNELS.length);
  else restoreStockKernels(tf);
  const out = tf.tidy(f);
  const values = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return values;
}

const nativeCalls = (kernel: string): number => nativeKernelStats()[kernel]?.native ?? 0;
const fallbacks = (kernel: string): number => nativeKernelStats()[kernel]?.fallback ?? 0;

/**
 * |native - stock| <= (terms + 2) * 2^-23 * magnitude elementwise (the worst case of a float32 sum of
 * `terms` products; magnitude = the same computation on |inputs|, so uncovered elements must be exact),
 * and ||native - stock|| / ||stock|| <= 1e-5.
 */
function expectClose(nat: Float32Array, stock: Float32Array, magnitude: Float32Array, terms: number, label: string): void {
  expect(nat.length, label).toBe(stock.length);
  let diff2 = 0, norm2 = 0;
  const factor = (terms + 2) * 2 ** -23;
  for (let i = 0; i < nat.length; i++) {
    const d = Math.abs(nat[i]! - stock[i]!);
    if (!(d <= factor * magnitude[i]!)) throw new Error(`${label}: element ${i}: native ${nat[i]} vs stock ${stock[i]} (magnitude ${magnitude[i]})`);
    diff2 += d * d;
    norm2 += stock[i]! * stock[i]!;
  }
  expect(Math.sqrt(diff2 / Math.max(norm2, 1e-300)), label).toBeLessThanOrEqual(1e-5);
}

function expectIdentical(nat: Float32Array, stock: Float32Array, label: string): void {
  expect(nat.length, label).toBe(stock.length);
  for (let i = 0; i < nat.length; i++) {
    if (!Object.is(nat[i], stock[i])) throw new Error(`${label}: element ${i}: native ${nat[i]} vs stock ${stock[i]}`);
  }
}

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface ConvCase { x: number[]; w: number[]; strides: number | [number, number]; pad: Pad; dilations?: number }

const CONV_CASES: ConvCase[] = [
  { x: [1, 7, 7, 1], w: [3, 3, 1, 3], strides: 1, pad: 'same' },
  { x: [5, 9, 9, 3], w: [3, 3, 3, 16], strides: 2, pad: 'same' },
  { x: [2, 11, 13, 16], w: [5, 5, 16, 3], strides: 1, pad: 'valid' },
  { x: [2, 15, 15, 3], w: [7, 7, 3, 16], strides: 2, pad: 'same' },
  { x: [5, 8, 8, 16], w: [1, 1, 16, 16], strides: 1, pad: 'valid' },
  { x: [5, 9, 9, 16], w: [1, 1, 16, 3], strides: 2, pad: 'valid' },
  { x: [2, 10, 9, 3], w: [3, 3, 3, 4], strides: [1, 2], pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { x: [1, 6, 6, 3], w: [3, 3, 3, 2], strides: 1, pad: 1 },
  // Stride 1: the input gradient runs as a forward convolution of dy (padding k - 1 - pad), unless a
  // padding exceeds k - 1 (then col2im, as for strides > 1).
  { x: [2, 7, 8, 5], w: [3, 3, 5, 4], strides: 1, pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
  { x: [2, 6, 7, 3], w: [3, 3, 3, 4], strides: 1, pad: [[0, 0], [3, 1], [0, 4], [0, 0]] },
  { x: [2, 8, 9, 3], w: [3, 3, 3, 4], strides: 2, pad: 'same' }, // padding top 0, left 1
  { x: [5, 12, 12, 3], w: [3, 3, 3, 16], strides: 2, pad: 'valid' },
  { x: [3, 8, 8, 3], w: [3, 3, 3, 5], strides: 1, pad: 'same', dilations: 2 },
  { x: [2, 9, 9, 1], w: [5, 5, 1, 1], strides: 1, pad: 'valid', dilations: 2 },
];

const label = (c: ConvCase): string => `x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} s ${JSON.stringify(c.strides)} pad ${JSON.stringify(c.pad)} d ${c.dilations ?? 1}`;

describeNative('native Conv2D and its gradients', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  afterAll(() => restoreStockKernels(tf));

  const conv = (c: ConvCase, x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D =>
    tf.conv2d(x, w, c.strides, c.pad as 'same', 'NHWC', c.dilations ?? 1);

  for (const c of CONV_CASES) {
    itNative(`forward matches the stock kernel: ${label(c)}`, () => {
      const x = random(c.x), w = random(c.w);
      const stock = run(false, () => [conv(c, x, w)]);
      const magnitude = run(false, () => [conv(c, tf.abs(x), tf.abs(w))]);
      const before = nativeCalls('Conv2D');
      const nat = run(true, () => [conv(c, x, w)]);
      expect(nativeCalls('Conv2D') - before).toBe(1);
      expectClose(nat[0]!, stock[0]!, magnitude[0]!, c.w[0]! * c.w[1]! * c.w[2]!, label(c));
      tf.dispose([x, w]);
    });
    if ((c.dilations ?? 1) !== 1) continue; // tfjs has no conv2d gradient with dilation
    itNative(`gradients (Conv2DBackpropInput, Conv2DBackpropFilter) match the stock kernels: ${label(c)}`, () => {
      const x = random(c.x), w = random(c.w);
      const probe = run(false, () => [conv(c, x, w)]);
      const outShape = tf.tidy(() => conv(c, x, w).shape);
      const r = random(outShape);
      expect(probe[0]!.length).toBe(r.size);
      const grads = (xv: tf.Tensor4D, wv: tf.Tensor4D, rv: tf.Tensor): tf.Tensor[] =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(c, a as tf.Tensor4D, b as tf.Tensor4D), rv)))([xv, wv]);
      const stock = run(false, () => grads(x, w, r));
      const magnitude = run(false, () => grads(tf.abs(x), tf.abs(w), tf.abs(r)));
      const before = [nativeCalls('Conv2DBackpropInput'), nativeCalls('Conv2DBackpropFilter')];
      const nat = run(true, () => grads(x, w, r));
      expect(nativeCalls('Conv2DBackpropInput') - before[0]!).toBe(1);
      expect(nativeCalls('Conv2DBackpropFilter') - before[1]!).toBe(1);
      const [, oh, ow, cout] = outShape;
      // dx sums kh * kw * cout products, dW sums n * oh * ow.
      expectClose(nat[0]!, stock[0]!, magnitude[0]!, c.w[0]! * c.w[1]! * cout!, `dx ${label(c)}`);
      expectClose(nat[1]!, stock[1]!, magnitude[1]!, c.x[0]! * oh! * ow!, `dW ${label(c)}`);
      tf.dispose([x, w, r]);
    });
  }

  itNative('FusedConv2D (tf.fused.conv2d) runs the native conv with bias and linear/relu/sigmoid, the stock kernel otherwise', () => {
    const x = random([3, 9, 8, 3]), w = random([3, 3, 3, 5]), bias = tf.tensor1d([0.5, -1, 2, 0, -0.25]);
    const magnitude = run(false, () => [tf.add(tf.conv2d(tf.abs(x), tf.abs(w), 2, 'same'), tf.abs(bias))])[0]!;
    for (const activation of ['linear', 'relu', 'sigmoid', 'elu'] as const) {
      const f = (): tf.Tensor[] => [tf.fused.conv2d({ x, filter: w, strides: 2, pad: 'same', bias, activation })];
      const stock = run(false, f);
      const before = [nativeCalls('FusedConv2D'), fallbacks('FusedConv2D')];
      const nat = run(true, f);
      const native = activation !== 'elu';
      expect([nativeCalls('FusedConv2D') - before[0]!, fallbacks('FusedConv2D') - before[1]!], activation).toEqual(native ? [1, 0] : [0, 1]);
      // relu, sigmoid and elu shrink differences (Lipschitz 1), so the conv's bound holds for them too.
      expectClose(nat[0]!, stock[0]!, magnitude, 3 * 3 * 3 + 1, `FusedConv2D ${activation}`);
    }
    tf.dispose([x, w, bias]);
  });

  itNative('falls back to the stock kernel for NCHW (and counts it)', () => {
    const x = random([2, 3, 7, 7]), w = random([3, 3, 3, 4]);
    const f = (): tf.Tensor[] => [tf.conv2d(x, w, 1, 'same', 'NCHW')];
    let stock: Float32Array[];
    try {
      stock = run(false, f);
    } catch {
      // The stock cpu kernel may refuse NCHW; then the native path must refuse it the same way.
      expect(() => run(true, f)).toThrow();
      tf.dispose([x, w]);
      return;
    }
    const before = fallbacks('Conv2D');
    const nat = run(true, f);
    expect(fallbacks('Conv2D') - before).toBe(1);
    expectIdentical(nat[0]!, stock[0]!, 'NCHW');
    tf.dispose([x, w]);
  });

  itNative('a small conv net step keeps the tensor count and frees its im2col blocks', () => {
    registerNativeKernels(tf);
    // im2col blocks of ~2 MB (4096 rows x 144 columns is over the 2^19-float chunk) and a tiny output:
    // 300 leaked blocks would be ~600 MB of resident memory.
    const x = random([4, 32, 32, 16]), w = random([3, 3, 16, 1]);
    const step = (): void => {
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]);
      tf.dispose([dx!, dw!]);
    };
    step();
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    const calls = nativeCalls('Conv2DBackpropFilter');
    for (let i = 0; i < 100; i++) step();
    expect(nativeCalls('Conv2DBackpropFilter') - calls).toBe(100);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(process.memoryUsage().rss - rss).toBeLessThan(150 * 2 ** 20);
    tf.dispose([x, w]);
  });
});

interface PoolCase { x: number[]; size: number | [number, number]; strides: number | [number, number]; pad: 'same' | 'valid' | number; ties?: boolean }

const POOL_CASES: PoolCase[] = [
  { x: [2, 9, 9, 3], size: 3, strides: 2, pad: 'same' },
  { x: [5, 8, 8, 16], size: 2, strides: 2, pad: 'valid' },
  { x: [1, 7, 7, 1], size: 3, strides: 1, pad: 'same' },
  { x: [3, 11, 10, 3], size: [3, 2], strides: [2, 1], pad: 1 },
  { x: [2, 6, 6, 16], size: 3, strides: 3, pad: 'valid', ties: true },
  { x: [5, 7, 9, 3], size: 3, strides: 2, pad: 'same', ties: true },
];

const poolLabel = (c: PoolCase): string => `x ${JSON.stringify(c.x)} size ${JSON.stringify(c.size)} s ${JSON.stringify(c.strides)} pad ${JSON.stringify(c.pad)}${c.ties ? ' ties' : ''}`;

describeNative('native MaxPool, AvgPool and their gradients', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  afterAll(() => restoreStockKernels(tf));

  // Ties: ReLU'd integers, so that windows hold several equal maxima (often all zeros) and the first
  // one must get the gradient, as in the stock kernel.
  const input = (c: PoolCase): tf.Tensor4D => {
    const x = random(c.x);
    if (!c.ties) return x;
    const tied = tf.tidy(() => tf.relu(tf.round(x)) as tf.Tensor4D);
    x.dispose();
    return tied;
  };

  for (const c of POOL_CASES) {
    for (const kind of ['max', 'avg'] as const) {
      const kernel = kind === 'max' ? 'MaxPool' : 'AvgPool';
      const pool = (x: tf.Tensor4D): tf.Tensor4D => (kind === 'max' ? tf.maxPool : tf.avgPool)(x, c.size, c.strides, c.pad);
      itNative(`${kernel} and ${kernel}Grad match the stock kernels: ${poolLabel(c)}`, () => {
        const x = input(c);
        const outShape = tf.tidy(() => pool(x).shape);
        const r = random(outShape);
        const f = (xv: tf.Tensor4D, rv: tf.Tensor): tf.Tensor[] => {
          const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(pool(a as tf.Tensor4D), rv)))([xv]);
          return [pool(xv), dx!];
        };
        const stock = run(false, () => f(x, r));
        const magnitude = run(false, () => f(x, tf.abs(r)));
        const before = [nativeCalls(kernel), nativeCalls(`${kernel}Grad`)];
        const nat = run(true, () => f(x, r));
        expect(nativeCalls(kernel) - before[0]!).toBe(2); // the forward of f and the one under tf.grads
        expect(nativeCalls(`${kernel}Grad`) - before[1]!).toBe(1);
        expectIdentical(nat[0]!, stock[0]!, `${kernel} ${poolLabel(c)}`);
        // A gradient element sums at most (window / stride)^2 values of dy: a few roundings at most.
        expectClose(nat[1]!, stock[1]!, magnitude[1]!, 4, `${kernel}Grad ${poolLabel(c)}`);
        tf.dispose([x, r]);
      });
    }
  }

  itNative('max pooling skips NaN and -Infinity as the stock kernel does', () => {
    const values = Float32Array.from({ length: 2 * 4 * 4 * 2 }, () => rng.normal());
    [0, 1, 5, 8, 9, 17, 30].forEach((i) => (values[i] = NaN));
    [2, 3, 10, 11].forEach((i) => (values[i] = -Infinity));
    const x = tf.tensor4d(values, [2, 4, 4, 2]);
    const f = (): tf.Tensor[] => {
      const [dx] = tf.grads((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))([x]);
      return [tf.maxPool(x, 2, 2, 'valid'), dx!];
    };
    const stock = run(false, f);
    const nat = run(true, f);
    expectIdentical(nat[0]!, stock[0]!, 'MaxPool with NaN');
    expectIdentical(nat[1]!, stock[1]!, 'MaxPoolGrad with NaN');
    x.dispose();
  });

  itNative('leaves a 1x1 unstrided pool to the stock kernel (an identity there)', () => {
    const x = random([2, 5, 5, 3]);
    const before = fallbacks('MaxPool');
    const nat = run(true, () => [tf.maxPool(x, 1, 1, 'valid')]);
    expect(fallbacks('MaxPool') - before).toBe(1);
    expectIdentical(nat[0]!, x.dataSync() as Float32Array, '1x1 max pool');
    x.dispose();
  });
});

describeNative('native Mean (batch-norm statistics on 4-D tensors)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  afterAll(() => restoreStockKernels(tf));

  const cases: Array<[number[], number[], boolean]> = [
    [[5, 7, 9, 16], [0, 1, 2], false],
    [[5, 7, 9, 16], [0, 1, 2], true],
    [[3, 6, 6, 3], [1, 2], false],
    [[4, 5, 5, 8], [0], true],
    [[4, 5, 5, 8], [3], false],
    [[64, 28, 28, 1], [0, 1, 2], false],
  ];
  for (const [shape, axes, keepDims] of cases) {
    itNative(`tf.mean and tf.moments are bit-identical to the stock kernels: ${JSON.stringify(shape)} over ${JSON.stringify(axes)}${keepDims ? ' keepDims' : ''}`, () => {
      const x = tf.tidy(() => tf.add(random(shape), 3)); // an offset, so that the variance is not just the mean square
      const f = (): tf.Tensor[] => {
        const m = tf.moments(x, axes, keepDims);
        return [tf.mean(x, axes, keepDims), m.mean, m.variance];
      };
      const stock = run(false, f);
      const before = nativeCalls('Mean');
      const nat = run(true, f);
      expect(nativeCalls('Mean') - before).toBe(3);
      nat.forEach((v, i) => expectIdentical(v, stock[i]!, `output ${i}`));
      x.dispose();
    });
  }

  itNative('the gradient of a batch-norm over [0, 1, 2] matches the stock kernels', () => {
    const x = random([5, 6, 6, 8]), r = random([5, 6, 6, 8]);
    const bn = (v: tf.Tensor): tf.Tensor => {
      const m = tf.moments(v, [0, 1, 2], true);
      return tf.div(tf.sub(v, m.mean), tf.sqrt(tf.add(m.variance, 1e-5)));
    };
    const f = (): tf.Tensor[] => tf.grads((v: tf.Tensor) => tf.sum(tf.mul(bn(v), r)))([x]);
    const stock = run(false, f);
    const nat = run(true, f);
    // The Means are bit-identical; what remains is float32 element-wise work in the same order.
    const magnitude = new Float32Array(stock[0]!.length).fill(stock[0]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
    expectClose(nat[0]!, stock[0]!, magnitude, 16, 'batch-norm dx');
    tf.dispose([x, r]);
  });

  itNative('leaves non-consecutive axes to the stock kernel', () => {
    const x = random([3, 4, 5, 6]);
    const stock = run(false, () => [tf.mean(x, [0, 2])]);
    const before = fallbacks('Mean');
    const nat = run(true, () => [tf.mean(x, [0, 2])]);
    expect(fallbacks('Mean') - before).toBe(1);
    expectIdentical(nat[0]!, stock[0]!, 'mean over [0, 2]');
    x.dispose();
  });
});

describeNative('the BLAS kernels behind the convolutions', () => {
  itNative('are not OpenBLAS\'s Prescott (SSE3) fallback on a CPU with AVX2 and FMA, unless OPENBLAS_CORETYPE chose them', () => {
    if (!native.loaded) throw new Error(native.reason);
    const core = /\(core (\w+)/.exec(native.blas)?.[1];
    expect(core, native.blas).toBeDefined();
    const flags = (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/);
    const vectorCpu = flags.includes('avx2') && flags.includes('fma');
    if (!vectorCpu || process.env['OPENBLAS_CORETYPE'] !== undefined) {
      // Nothing to correct here: OpenBLAS's own choice (or the user's) stands.
      expect(native.blas).not.toMatch(/instead of the Prescott fallback/);
      return;
    }
    expect(core).not.toBe('Prescott');
  });
});

describeNative('convKernel (the addon entry point) refuses geometries that do not fit its arrays', () => {
  itNative('throws a RangeError instead of reading or writing outside them', () => {
    if (!native.loaded) throw new Error(native.reason);
    const addon = createRequire(import.meta.url)(native.path) as {
      convKernel(op: number, a: Float32Array, b: Float32Array, out: Float32Array, geometry: Int32Array): void;
    };
    const buf = new Float32Array(4);
    // [n, h, w, c, oh, ow, cout, kh, kw, sh, sw, dh, dw, pt, pl]: a 1x1 conv of a 2x2 image with one channel.
    const ok = [1, 2, 2, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    const call = (op: number, geometry: number[], w = new Float32Array(1)): void => addon.convKernel(op, buf, w, new Float32Array(4), Int32Array.from(geometry));
    expect(() => call(0, ok)).not.toThrow();
    expect(() => call(0, ok, new Float32Array(2))).toThrow(/lengths do not match/);
    expect(() => call(0, ok.map((v, i) => (i === 7 ? 0 : v)))).toThrow(/must be positive/);
    expect(() => call(0, ok.map((v, i) => (i === 13 ? -1 : v)))).toThrow(/must not be negative/);
    expect(() => call(0, ok.map((v, i) => (i < 4 ? 2 ** 31 - 1 : v)))).toThrow(/too large/);
    expect(() => call(3, ok.map((v, i) => (i === 6 ? 2 : v)))).toThrow(/pooling keeps the channels/);
    expect(() => call(9, ok)).toThrow(/unknown op/);
    expect(() => addon.convKernel(0, buf, buf, buf, Int32Array.from([1, 2, 3]))).toThrow(/15 entries/);
  });
});
