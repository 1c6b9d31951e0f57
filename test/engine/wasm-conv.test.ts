// Gradients through conv2d and pooling on the wasm backend (with gradlens's Conv2DBackpropFilter, which tfjs-backend-wasm lacks) against the cpu backend.
//
// The backends are set up as the service sets them up (useBackend -> activateBackend), so these tests
// also prove that the wasm set-up registers the kernel. The cpu side runs the stock tfjs kernels, the
// reference; wasm sums in float32 (XNNPACK), so values agree within the rounding of a float32 sum of that
// many terms (magnitude = the same computation on |inputs|) and within 1e-5 in relative norm.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/common/random.js';
import { registerWasmConvBackpropFilter, removeWasmConvBackpropFilter, wasmConvFilterCalls } from '../../src/engine/backends/wasm-kernels.js';
import { useBackend } from '../backends.js';

const rng = new Rng(8474);
const values = (shape: number[]): Float32Array => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];
interface Case { x: Shape4; w: Shape4; strides: number | [number, number]; pad: Pad }

const CASES: Case[] = [
  { x: [1, 7, 7, 1], w: [3, 3, 1, 3], strides: 1, pad: 'same' },
  { x: [5, 9, 9, 3], w: [3, 3, 3, 16], strides: 2, pad: 'same' },
  { x: [2, 11, 13, 16], w: [5, 5, 16, 3], strides: 1, pad: 'valid' },
  { x: [2, 15, 15, 3], w: [7, 7, 3, 16], strides: 2, pad: 'same' },
  { x: [5, 9, 9, 16], w: [1, 1, 16, 3], strides: 2, pad: 'valid' },
  { x: [1, 6, 6, 3], w: [3, 3, 3, 2], strides: 2, pad: 1 },
  { x: [2, 8, 9, 3], w: [3, 3, 3, 4], strides: 2, pad: 'same' }, // padding top 0, left 1
  // Explicit: tfjs-backend-wasm 4.22's own Conv2D gives wrong forward values for a numeric pad with unequal
  // strides ([1, 2] with pad 1), so unequal strides are checked with the same padding written out.
  { x: [2, 7, 6, 3], w: [3, 3, 3, 2], strides: [1, 2], pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
];

type Net = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/** Runs y = net(x, w) and the gradients of sum(y * r) on the current backend; returns [y, dx, dW]. */
function forwardAndGrads(net: Net, x: Float32Array, xShape: number[], w: Float32Array, wShape: number[], r: Float32Array): Float32Array[] {
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, xShape as [number, number, number, number]), wt = tf.tensor4d(w, wShape as [number, number, number, number]);
    const y = net(xt, wt);
    const rt = tf.tensor(r, y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(net(a as tf.Tensor4D, b as tf.Tensor4D), rt)))([xt, wt]);
    return [y, dx!, dw!].map((t) => t.dataSync() as Float32Array);
  });
}

function expectClose(got: Float32Array, want: Float32Array, magnitude: Float32Array, terms: number, label: string): void {
  expect(got.length, label).toBe(want.length);
  let diff2 = 0, norm2 = 0;
  const factor = (terms + 2) * 2 ** -23;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= factor * magnitude[i]! + 1e-30)) throw new Error(`${label}: element ${i}: wasm ${got[i]} vs cpu ${want[i]} (magnitude ${magnitude[i]})`);
    diff2 += d * d;
    norm2 += want[i]! * want[i]!;
  }
  expect(Math.sqrt(diff2 / Math.max(norm2, 1e-300)), label).toBeLessThanOrEqual(1e-5);
}

const abs = (v: Float32Array): Float32Array => v.map(Math.abs);

describe('conv2d and pooling gradients on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('tf.grads through conv2d needs the added Conv2DBackpropFilter (tfjs #8474), and the wasm set-up registers it', async () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    removeWasmConvBackpropFilter(tf);
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D, w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
    expect(() => tf.grads((a: tf.Tensor) => tf.sum(tf.conv2d(x, a as tf.Tensor4D, 1, 'same')))([w])).toThrow(/Conv2DBackpropFilter/);
    expect(registerWasmConvBackpropFilter(tf)).toBe(true);
    const [dw] = tf.grads((a: tf.Tensor) => tf.sum(tf.conv2d(x, a as tf.Tensor4D, 1, 'same')))([w]);
    // Closed form: each tap sees the 4x4 ones image shifted by one, i.e. a 3x3, 3x4 or 4x4 overlap.
    expect(Array.from(dw!.dataSync())).toEqual([9, 12, 9, 12, 16, 12, 9, 12, 9]);
    tf.dispose([x, w, dw!]);
  });

  for (const c of CASES) {
    const label = `x ${JSON.stringify(c.x)} w ${JSON.stringify(c.w)} s ${JSON.stringify(c.strides)} pad ${JSON.stringify(c.pad)}`;
    it(`conv2d forward and both gradients match the cpu backend: ${label}`, async () => {
      const net: Net = (x, w) => tf.conv2d(x, w, c.strides, c.pad as 'same');
      const x = values(c.x), w = values(c.w);
      const outShape = tf.tidy(() => net(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D).shape);
      const r = values(outShape);
      await useBackend('cpu');
      const want = forwardAndGrads(net, x, c.x, w, c.w, r);
      const magnitude = forwardAndGrads(net, abs(x), c.x, abs(w), c.w, abs(r));
      await useBackend('wasm');
      const calls = wasmConvFilterCalls();
      const got = forwardAndGrads(net, x, c.x, w, c.w, r);
      expect(wasmConvFilterCalls() - calls).toBe(1);
      const [kh, kw, cin] = c.w, [n, oh, ow, cout] = outShape;
      expectClose(got[0]!, want[0]!, magnitude[0]!, kh! * kw! * cin!, `y ${label}`);
      expectClose(got[1]!, want[1]!, magnitude[1]!, kh! * kw! * cout!, `dx ${label}`);
      expectClose(got[2]!, want[2]!, magnitude[2]!, n! * oh! * ow!, `dW ${label}`);
    });
  }

  for (const kind of ['max', 'avg'] as const) {
    it(`${kind} pooling after a convolution: forward and gradients match the cpu backend`, async () => {
      const pool = kind === 'max' ? tf.maxPool : tf.avgPool;
      const net: Net = (x, w) => pool(tf.relu(tf.conv2d(x, w, 1, 'same')), 3, 2, 'valid');
      const xShape: Shape4 = [3, 9, 9, 3], wShape: Shape4 = [3, 3, 3, 8];
      const x = values(xShape), w = values(wShape);
      const outShape = tf.tidy(() => net(tf.zeros(xShape) as tf.Tensor4D, tf.zeros(wShape) as tf.Tensor4D).shape);
      const r = values(outShape);
      await useBackend('cpu');
      const want = forwardAndGrads(net, x, xShape, w, wShape, r);
      // A bound for every output: pooling's window sum (9 x avg) of the conv on |x|, |w|, which routes |r|
      // to every tap, so it bounds max pooling's routed terms and ReLU's masked ones too.
      const magnitude = forwardAndGrads((a, b) => tf.mul(tf.avgPool(tf.conv2d(a, b, 1, 'same'), 3, 2, 'valid'), 9), abs(x), xShape, abs(w), wShape, abs(r));
      await useBackend('wasm');
      const got = forwardAndGrads(net, x, xShape, w, wShape, r);
      expectClose(got[0]!, want[0]!, magnitude[0]!, 27 + 9, `${kind} y`);
      expectClose(got[1]!, want[1]!, magnitude[1]!, 9 * 8 * 9, `${kind} dx`);
      expectClose(got[2]!, want[2]!, magnitude[2]!, 3 * 81 * 9, `${kind} dW`);
    });
  }

  it('a conv + pool gradient step on wasm leaks no tensors or wasm buffers', () => {
    const x = tf.tensor4d(values([4, 12, 12, 3]), [4, 12, 12, 3]), w = tf.tensor4d(values([3, 3, 3, 16]), [3, 3, 3, 16]);
    const step = (): void => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.maxPool(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')), 2, 2, 'valid')))([x, w]);
      tf.dispose(g);
    };
    step();
    const before = tf.memory() as tf.MemoryInfo & { numDataBuffers?: number };
    for (let i = 0; i < 5; i++) step();
    const after = tf.memory() as tf.MemoryInfo & { numDataBuffers?: number };
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    tf.dispose([x, w]);
  });
});
