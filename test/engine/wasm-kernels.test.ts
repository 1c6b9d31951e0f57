// The pure-npm wasm BatchMatMul wrapper (explicit transpose + XNNPACK plain product) against the stock wasm kernel.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/common/random.js';
import { registerWasmTransposedMatMul, restoreWasmMatMul, wasmMatMulStats } from '../../src/engine/backends/wasm-kernels.js';

const rng = new Rng(21);
const randomTensor = (shape: number[]): tf.Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
};

describe('wasm BatchMatMul with explicit transposes', () => {
  beforeAll(async () => {
    expect(await tf.setBackend('wasm')).toBe(true);
  });
  afterAll(async () => {
    restoreWasmMatMul(tf);
    await tf.setBackend('cpu');
  });

  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[128, 256], [256, 256], false, true],
    [[128, 256], [128, 256], true, false],
    [[7, 5], [9, 7], true, true],
    [[3, 9, 5], [3, 4, 9], true, true],
    [[1, 9, 5], [4, 9, 6], true, false],
    [[4, 5, 9], [6, 9], false, true],
    [[33, 17], [17, 12], false, false],
  ];
  for (let t = 0; t < 12; t++) {
    const m = 1 + rng.int(40), n = 1 + rng.int(40), k = 1 + rng.int(60);
    const ta = t % 2 === 1, tb = (t >> 1) % 2 === 1;
    cases.push([ta ? [k, m] : [m, k], tb ? [n, k] : [k, n], ta, tb]);
  }

  it('matches the stock kernel within float32 GEMM rounding, and leaks no tensors or wasm buffers', () => {
    for (const [aShape, bShape, ta, tb] of cases) {
      const a = randomTensor(aShape), b = randomTensor(bShape);
      const k = ta ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
      restoreWasmMatMul(tf);
      const stock = tf.matMul(a, b, ta, tb);
      const mag = tf.matMul(tf.abs(a), tf.abs(b), ta, tb);
      const want = stock.dataSync(), bound = mag.dataSync();
      expect(registerWasmTransposedMatMul(tf)).toBe(true);
      const before = tf.memory();
      const got = tf.matMul(a, b, ta, tb);
      expect(got.shape).toEqual(stock.shape);
      const values = got.dataSync();
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(values[i]! - want[i]!), `${JSON.stringify(aShape)}x${JSON.stringify(bShape)} ${ta} ${tb} [${i}]`).toBeLessThanOrEqual((k + 2) * 2 ** -23 * bound[i]! + 1e-30);
      }
      got.dispose();
      const after = tf.memory() as tf.MemoryInfo & { numDataBuffers?: number };
      expect(after.numTensors).toBe(before.numTensors);
      expect(after.numDataBuffers).toBe((before as { numDataBuffers?: number }).numDataBuffers);
      tf.dispose([a, b, stock, mag]);
    }
    expect(wasmMatMulStats().transposed).toBeGreaterThan(0);
  });

  it('gives the stock gradients of a small dense network', () => {
    const w = randomTensor([12, 8]), x = randomTensor([5, 12]);
    const f = (): tf.Tensor[] => tf.grads((wv: tf.Tensor, xv: tf.Tensor) => tf.sum(tf.relu(tf.matMul(xv, wv))))([w, x]);
    restoreWasmMatMul(tf);
    const stock = f().map((t) => t.dataSync());
    registerWasmTransposedMatMul(tf);
    const fast = f().map((t) => t.dataSync());
    stock.forEach((s, i) => s.forEach((v, j) => expect(fast[i]![j]).toBeCloseTo(v, 4)));
    tf.dispose([w, x]);
  });
});
