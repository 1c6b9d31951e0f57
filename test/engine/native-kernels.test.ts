// Equivalence tests: gradlens's native (OpenBLAS + N-API) tfjs kernels against the stock kernels they replace.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/common/random.js';
import {
  NATIVE_CPU_KERNELS,
  loadNativeKernels,
  nativeKernelStats,
  nativeKernelsIssue,
  registerNativeKernels,
  registerNativeWasmMatMul,
  restoreStockKernels,
} from '../../src/engine/backends/native-kernels.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';

const native = loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath });
const BUILD_HELP = 'Without npm scripts: cd native && npx node-gyp rebuild --nodedir=/usr (Debian nodejs) or --nodedir=/usr/local (official Node images).';

interface Snapshot {
  shape: number[];
  dtype: string;
  values: Float32Array | Int32Array | Uint8Array;
}

/** Runs `f` with the stock or the native cpu kernels registered and copies its results out. */
function run(useNative: boolean, f: () => tf.Tensor | tf.Tensor[]): Snapshot[] {
  if (useNative) expect(registerNativeKernels(tf).length).toBe(NATIVE_CPU_KERNELS.length);
  else restoreStockKernels(tf);
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const snaps = list.map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.dataSync() as Snapshot['values'] }));
  tf.dispose(list);
  return snaps;
}

/** Stock result, native result, and how many native calls of `kernel` the native run made. */
function both(kernel: string, f: () => tf.Tensor | tf.Tensor[]): { stock: Snapshot[]; nat: Snapshot[]; nativeCalls: number } {
  const stock = run(false, f);
  const before = nativeKernelStats()[kernel]?.native ?? 0;
  const nat = run(true, f);
  const after = nativeKernelStats()[kernel]?.native ?? 0;
  return { stock, nat, nativeCalls: after - before };
}

const same = (x: number, y: number): boolean => Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y));

function expectIdentical(nat: Snapshot[], stock: Snapshot[], label: string): void {
  expect(nat.length).toBe(stock.length);
  nat.forEach((n, i) => {
    const s = stock[i]!;
    expect(n.shape, label).toEqual(s.shape);
    expect(n.dtype, label).toBe(s.dtype);
    expect(n.values.length, label).toBe(s.values.length);
    for (let j = 0; j < n.values.length; j++) {
      if (!same(n.values[j]!, s.values[j]!)) {
        throw new Error(`${label}: element ${j} differs: native ${n.values[j]} vs stock ${s.values[j]}`);
      }
    }
  });
}

/** |native - stock| <= bound[j] elementwise (NaN/Inf must match exactly). */
function expectWithin(n: Snapshot, s: Snapshot, bound: ArrayLike<number>, label: string): void {
  expect(n.shape, label).toEqual(s.shape);
  expect(n.dtype, label).toBe(s.dtype);
  for (let j = 0; j < n.values.length; j++) {
    const a = n.values[j]!, b = s.values[j]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (!same(a, b)) throw new Error(`${label}: element ${j}: native ${a} vs stock ${b}`);
    } else if (Math.abs(a - b) > bound[j]!) {
      throw new Error(`${label}: element ${j}: native ${a} vs stock ${b}, |diff| ${Math.abs(a - b)} > ${bound[j]}`);
    }
  }
}

const rng = new Rng(7);
const randInt = (lo: number, hi: number): number => lo + rng.int(hi - lo + 1);

function randomValues(size: number, specials = false): Float32Array {
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) v[i] = rng.normal() * 2;
  if (specials && size > 0) {
    const pool = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3e38, -3e38, 1, -1];
    for (let i = 0; i < Math.max(1, size >> 3); i++) v[rng.int(size)] = pool[rng.int(pool.length)]!;
  }
  return v;
}

const randomTensor = (shape: number[], specials = false): tf.Tensor => tf.tensor(randomValues(shape.reduce((a, b) => a * b, 1), specials), shape, 'float32');

/**
 * A float32 tensor whose backend values are a subarray of a larger buffer (what a contiguous tf.slice
 * produces on the cpu backend), so that the kernels see a non-zero byteOffset.
 */
function slicedTensor(shape: number[]): tf.Tensor {
  const rows = shape[0] ?? 1;
  const rest = shape.slice(1);
  const big = randomTensor([rows + 3, ...rest]);
  const sliced = tf.slice(big, [2, ...rest.map(() => 0)], [rows, ...rest]);
  big.dispose();
  return shape.length === 0 ? tf.reshape(sliced, []) : sliced;
}

if (!native.loaded) {
  describe('native kernels: addon not built', () => {
    if (process.env['GRADLENS_REQUIRE_NATIVE'] === '1') {
      it('is required (GRADLENS_REQUIRE_NATIVE=1)', () => {
        throw new Error(`GRADLENS_REQUIRE_NATIVE=1 but the native addon is not available: ${native.reason}. ${BUILD_HELP}`);
      });
    }

    it('loadNativeKernels reports the reason instead of throwing', () => {
      expect(native).toEqual({ loaded: false, reason: expect.any(String) });
      expect(native.reason).toMatch(/gradlens_native\.node/);
      expect(native.reason).toMatch(/build:native|libopenblas/);
    });

    it('registerNativeKernels leaves the stock kernels in place', () => {
      const before = tf.getKernel('BatchMatMul', 'cpu');
      expect(registerNativeKernels(tf)).toEqual([]);
      expect(nativeKernelsIssue()).toBe(native.reason);
      expect(tf.getKernel('BatchMatMul', 'cpu')).toBe(before);
    });
  });
} else {
  describe('native kernels', () => {
    beforeAll(async () => {
      await tf.setBackend('cpu');
    });
    afterAll(() => {
      restoreStockKernels(tf);
    });

    describe('loading and registration', () => {
      it('loads the addon and names the BLAS', () => {
        expect(native.kernels).toEqual([...NATIVE_CPU_KERNELS]);
        expect(native.blas).toMatch(/OpenBLAS/);
        expect(native.blas).toMatch(/1 thread\)/);
      });

      it('explains a missing or broken addon path', () => {
        const missing = loadNativeKernels({ path: '/nonexistent/gradlens_native.node' });
        expect(missing.loaded).toBe(false);
        if (!missing.loaded) expect(missing.reason).toMatch(/not built.*build:native/);
        const junk = join(mkdtempSync(join(tmpdir(), 'gradlens-native-')), 'gradlens_native.node');
        writeFileSync(junk, 'not a shared object');
        const broken = loadNativeKernels({ path: junk });
        expect(broken.loaded).toBe(false);
        if (!broken.loaded) expect(broken.reason).toMatch(/could not load/);
      });

      it('works from several worker threads at once (the job pool loads it in every worker)', async () => {
        // Each worker loads the addon itself and runs GEMMs concurrently with the others; all must agree
        // with the same products computed here.
        const code = `
          const { parentPort, workerData } = require('node:worker_threads');
          const addon = require(workerData.path);
          const { a, b, m, n, k, rounds } = workerData;
          let c = new Float32Array(m * n);
          for (let r = 0; r < rounds; r++) {
            c = new Float32Array(m * n);
            addon.sgemm(a, 0, b, 0, c, 0, 1, 1, 1, m, n, k, false, true);
          }
          parentPort.postMessage({ c, threads: addon.info().threads });
        `;
        const m = 128, n = 256, k = 256;
        const a = randomValues(m * k), b = randomValues(n * k);
        const nat = loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath });
        if (!nat.loaded) throw new Error(nat.reason);
        const results = await Promise.all([0, 1, 2].map(() => new Promise<{ c: Float32Array; threads: number }>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { path: nat.path, a, b, m, n, k, rounds: 200 } });
          w.once('message', (msg: { c: Float32Array; threads: number }) => { resolve(msg); void w.terminate(); });
          w.once('error', reject);
        })));
        const at = tf.tensor2d(a, [m, k]), bt = tf.tensor2d(b, [n, k]);
        const [expected] = run(true, () => tf.matMul(at, bt, false, true));
        tf.dispose([at, bt]);
        for (const r of results) {
          expect(r.threads).toBe(1);
          expect(Array.from(r.c)).toEqual(Array.from(expected!.values));
        }
      });

      it('is idempotent and restorable', () => {
        restoreStockKernels(tf);
        const stockAdd = tf.getKernel('Add', 'cpu');
        const first = registerNativeKernels(tf);
        expect(first).toEqual([...NATIVE_CPU_KERNELS]);
        const nativeAdd = tf.getKernel('Add', 'cpu');
        expect(nativeAdd).not.toBe(stockAdd);
        expect(registerNativeKernels(tf)).toEqual(first);
        expect(tf.getKernel('Add', 'cpu')).toBe(nativeAdd);
        restoreStockKernels(tf);
        expect(tf.getKernel('Add', 'cpu')).toBe(stockAdd);
      });
    });

    describe('BatchMatMul', () => {
      // Stock and native both round in float; a product of K terms is off by at most ~K ulps of |A||B|.
      const check = (aShape: number[], bShape: number[], ta: boolean, tb: boolean, sliced = false): void => {
        const label = `matMul ${JSON.stringify(aShape)} x ${JSON.stringify(bShape)} tA=${ta} tB=${tb}${sliced ? ' (sliced)' : ''}`;
        const a = sliced ? slicedTensor(aShape) : randomTensor(aShape);
        const b = sliced ? slicedTensor(bShape) : randomTensor(bShape);
        if (sliced) {
          const backend = tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } };
          expect(backend.data.get(a.dataId).values.byteOffset).toBeGreaterThan(0);
        }
        const k = ta ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
        const { stock, nat, nativeCalls } = both('BatchMatMul', () => [tf.matMul(a, b, ta, tb), tf.matMul(tf.abs(a), tf.abs(b), ta, tb)]);
        expect(nativeCalls, label).toBeGreaterThan(0);
        const mag = stock[1]!.values;
        const bound = Float32Array.from(mag, (m) => (k + 2) * 2 ** -23 * m + 1e-30);
        expectWithin(nat[0]!, stock[0]!, bound, label);
        tf.dispose([a, b]);
      };

      it('matches on random 2-D shapes with every transpose combination', () => {
        for (let trial = 0; trial < 24; trial++) {
          const m = randInt(1, 70), n = randInt(1, 70), k = randInt(1, 90);
          const ta = trial % 2 === 1, tb = (trial >> 1) % 2 === 1;
          check(ta ? [k, m] : [m, k], tb ? [n, k] : [k, n], ta, tb);
        }
      });

      it('matches the W2 shapes, including the backward products', () => {
        check([128, 256], [256, 256], false, false);
        check([128, 256], [256, 256], false, true);
        check([128, 256], [128, 256], true, false);
      });

      it('matches with batch dimensions, batch broadcasting and mixed ranks', () => {
        check([3, 5, 7], [3, 7, 4], false, false);
        check([3, 7, 5], [3, 4, 7], true, true);
        check([1, 5, 7], [4, 7, 6], false, false);
        check([4, 5, 7], [1, 6, 7], false, true);
        check([2, 3, 5, 7], [2, 3, 7, 2], false, false);
        check([4, 5, 7], [7, 6], false, false);
        check([5, 7], [3, 7, 6], false, false);
      });

      it('matches on operands that are views into larger buffers', () => {
        check([9, 13], [13, 11], false, false, true);
        check([13, 9], [11, 13], true, true, true);
      });

      it('falls back to the stock kernel for int32 operands', () => {
        const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
        const b = tf.tensor2d([1, 0, -1, 2, 3, 1], [3, 2], 'int32');
        const { stock, nat } = both('BatchMatMul', () => tf.matMul(a, b));
        expectIdentical(nat, stock, 'int32 matMul');
        expect(nat[0]!.dtype).toBe('int32');
        tf.dispose([a, b]);
      });
    });

    describe('_FusedMatMul', () => {
      it('matches with bias and linear/relu/sigmoid activations, and falls back for the others', () => {
        const activations = ['linear', 'relu', 'sigmoid', 'elu', 'relu6', 'leakyrelu'] as const;
        for (const activation of activations) {
          for (const [ta, tb] of [[false, false], [true, false], [false, true]] as const) {
            const m = randInt(1, 40), n = randInt(1, 40), k = randInt(1, 60);
            const a = randomTensor(ta ? [k, m] : [m, k]);
            const b = randomTensor(tb ? [n, k] : [k, n]);
            const bias = randomTensor([n]);
            const label = `fused ${activation} tA=${ta} tB=${tb}`;
            const { stock, nat } = both('_FusedMatMul', () => [
              tf.fused.matMul({ a, b, bias, transposeA: ta, transposeB: tb, activation }),
              tf.add(tf.matMul(tf.abs(a), tf.abs(b), ta, tb), tf.abs(bias)),
            ]);
            const bound = Float32Array.from(stock[1]!.values, (mag) => (k + 4) * 2 ** -23 * mag + 1e-30);
            expectWithin(nat[0]!, stock[0]!, bound, label);
            tf.dispose([a, b, bias]);
          }
        }
        const stats = nativeKernelStats()['_FusedMatMul']!;
        expect(stats.native).toBeGreaterThan(0);
        expect(stats.fallback).toBeGreaterThan(0);
      });
    });

    describe('element-wise binary kernels', () => {
      const ops: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
        ['Add', tf.add],
        ['Sub', tf.sub],
        ['Multiply', tf.mul],
        ['RealDiv', tf.div],
        ['SquaredDifference', tf.squaredDifference],
      ];

      const shapePairs = (): Array<[number[], number[]]> => {
        const pairs: Array<[number[], number[]]> = [
          [[128, 256], [128, 256]],
          [[128, 256], [256]],
          [[256], [128, 256]],
          [[7, 1], [1, 9]],
          [[], [5, 6]],
          [[5, 6], []],
          [[1, 1], [5, 6]],
          [[4, 1, 6], [3, 1]],
          [[2, 3, 1, 5], [3, 4, 1]],
          [[], []],
          [[1], [1]],
          [[0, 3], [3]],
        ];
        for (let trial = 0; trial < 20; trial++) {
          const rank = randInt(1, 5);
          const out = Array.from({ length: rank }, () => randInt(1, 5));
          const pick = (): number[] => {
            const r = randInt(0, rank);
            return out.slice(rank - r).map((d) => (rng.uniform() < 0.35 ? 1 : d));
          };
          pairs.push([pick(), pick()]);
        }
        return pairs;
      };

      for (const [name, op] of ops) {
        it(`${name} is bit-identical to the stock kernel with broadcasting and special values`, () => {
          let calls = 0;
          for (const [aShape, bShape] of shapePairs()) {
            const a = randomTensor(aShape, true), b = randomTensor(bShape, true);
            const { stock, nat, nativeCalls } = both(name, () => op(a, b));
            calls += nativeCalls;
            expectIdentical(nat, stock, `${name} ${JSON.stringify(aShape)} ${JSON.stringify(bShape)}`);
            tf.dispose([a, b]);
          }
          expect(calls).toBeGreaterThan(0);
        });
      }

      it('are bit-identical on sliced (offset) inputs', () => {
        const a = slicedTensor([6, 10]), b = slicedTensor([10]);
        for (const [name, op] of ops) {
          const { stock, nat, nativeCalls } = both(name, () => op(a, b));
          expect(nativeCalls).toBeGreaterThan(0);
          expectIdentical(nat, stock, `${name} sliced`);
        }
        tf.dispose([a, b]);
      });

      it('fall back to the stock kernels for int32', () => {
        const i = tf.tensor2d([1, -2, 3, 4], [2, 2], 'int32');
        const j = tf.tensor1d([5, 7], 'int32');
        const before = nativeKernelStats()['Add']?.fallback ?? 0;
        const { stock, nat } = both('Add', () => [tf.add(i, j), tf.sub(i, j), tf.mul(i, j), tf.div(i, j), tf.squaredDifference(i, j)]);
        expectIdentical(nat, stock, 'int32 binary');
        expect(nat.every((s) => s.dtype === 'int32')).toBe(true);
        expect(nativeKernelStats()['Add']!.fallback).toBeGreaterThan(before);
        tf.dispose([i, j]);
      });
    });

    describe('element-wise unary kernels', () => {
      const shapes = [[128, 256], [7], [], [3, 4, 5], [0, 4], [2, 1, 3, 1, 2]];
      const exact: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
        ['Relu', tf.relu],
        ['Step', (x) => tf.step(x)],
        ['Step', (x) => tf.step(x, 0.3)],
        ['Square', tf.square],
        ['Sqrt', tf.sqrt],
      ];
      for (const [name, op] of exact) {
        it(`${name} is bit-identical to the stock kernel (NaN, ±0, ±Inf included)`, () => {
          let calls = 0;
          for (const shape of [...shapes, [5, 9]]) {
            const x = (shape.length === 2 && shape[0] === 5) ? slicedTensor(shape) : randomTensor(shape, true);
            const { stock, nat, nativeCalls } = both(name, () => op(x));
            calls += nativeCalls;
            expectIdentical(nat, stock, `${name} ${JSON.stringify(shape)}`);
            x.dispose();
          }
          expect(calls).toBeGreaterThan(0);
        });
      }

      // Computed in double like the stock kernel; glibc's exp/tanh and V8's may differ in the last bit of
      // a double, which can at most move the float result by one ulp.
      for (const [name, op] of [['Sigmoid', tf.sigmoid], ['Tanh', tf.tanh]] as const) {
        it(`${name} matches the stock kernel within one float ulp`, () => {
          let calls = 0;
          for (const shape of shapes) {
            const x = randomTensor(shape, true);
            const { stock, nat, nativeCalls } = both(name, () => op(x));
            calls += nativeCalls;
            const bound = Float32Array.from(stock[0]!.values, (v) => Math.abs(v) * 2 ** -23 + 1e-45);
            expectWithin(nat[0]!, stock[0]!, bound, `${name} ${JSON.stringify(shape)}`);
            x.dispose();
          }
          expect(calls).toBeGreaterThan(0);
        });
      }

      it('fall back to the stock kernels for int32', () => {
        const i = tf.tensor1d([-3, 0, 4], 'int32');
        const { stock, nat } = both('Relu', () => [tf.relu(i), tf.square(i), tf.step(i)]);
        expectIdentical(nat, stock, 'int32 unary');
        expect(nat.map((s) => s.dtype)).toEqual(['int32', 'int32', 'int32']);
        i.dispose();
      });
    });

    describe('Transpose', () => {
      /** A random permutation of 0..rank-1 (Fisher–Yates on the test's seeded generator). */
      const randomPerm = (rank: number): number[] => {
        const p = Array.from({ length: rank }, (_, i) => i);
        for (let i = rank - 1; i > 0; i--) {
          const j = randInt(0, i);
          [p[i], p[j]] = [p[j]!, p[i]!];
        }
        return p;
      };

      it('is bit-identical to the stock kernel for every permutation up to rank 4 and random ones to rank 6, special values, size-1 and empty axes', () => {
        const cases: [number[], number[]][] = [];
        const all = (rank: number): number[][] => (rank === 0 ? [[]] : all(rank - 1).flatMap((p) => Array.from({ length: rank }, (_, k) => [...p.slice(0, k), rank - 1, ...p.slice(k)])));
        for (const shape of [[7], [3, 5], [2, 3, 4], [2, 3, 4, 5], [4, 64, 8, 8], [1, 3, 1, 5]]) for (const perm of all(shape.length)) cases.push([shape, perm]);
        for (let t = 0; t < 20; t++) {
          const rank = randInt(5, 6);
          cases.push([Array.from({ length: rank }, () => randInt(1, 4)), randomPerm(rank)]);
        }
        cases.push([[3, 0, 2], [2, 0, 1]]);
        let calls = 0;
        for (const [shape, perm] of cases) {
          const x = randomTensor(shape, true);
          const { stock, nat, nativeCalls } = both('Transpose', () => tf.transpose(x, perm));
          calls += nativeCalls;
          expectIdentical(nat, stock, `transpose ${JSON.stringify(shape)} perm ${JSON.stringify(perm)}`);
          x.dispose();
        }
        expect(calls).toBeGreaterThan(cases.length / 2);
      });

      it('is bit-identical on a sliced input and inside a gradient; falls back to the stock kernel for int32 and bool', () => {
        const x = slicedTensor([6, 4, 5]);
        const { stock, nat } = both('Transpose', () => [tf.transpose(x, [2, 0, 1]), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.transpose(t, [1, 2, 0]), tf.transpose(t, [1, 2, 0]))))(x)]);
        expectIdentical(nat, stock, 'transpose sliced and its gradient');
        const before = nativeKernelStats()['Transpose']?.fallback ?? 0;
        const i = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
        const bool = tf.tensor2d([true, false, true, true, false, false], [3, 2], 'bool');
        const fallbacks = both('Transpose', () => [tf.transpose(i), tf.transpose(bool)]);
        expectIdentical(fallbacks.nat, fallbacks.stock, 'transpose int32 and bool');
        expect(nativeKernelStats()['Transpose']!.fallback - before).toBe(2);
        tf.dispose([x, i, bool]);
      });
    });

    describe('Sum', () => {
      it('is bit-identical over every run of consecutive axes, with and without keepDims', () => {
        const shapes = [[128, 256], [256, 256], [256], [3, 4, 5], [2, 3, 4, 5], [6, 1, 7], [1], [4, 0, 3]];
        for (let t = 0; t < 6; t++) shapes.push(Array.from({ length: randInt(1, 4) }, () => randInt(1, 7)));
        let calls = 0;
        for (const shape of shapes) {
          const x = randomTensor(shape, true);
          const rank = shape.length;
          const axesList: Array<number | number[] | undefined> = [undefined, -1];
          for (let first = 0; first < rank; first++) for (let last = first; last < rank; last++) {
            axesList.push(Array.from({ length: last - first + 1 }, (_, i) => first + i));
          }
          for (const axis of axesList) {
            for (const keepDims of [false, true]) {
              const { stock, nat, nativeCalls } = both('Sum', () => tf.sum(x, axis, keepDims));
              calls += nativeCalls;
              expectIdentical(nat, stock, `sum ${JSON.stringify(shape)} axis ${JSON.stringify(axis)} keepDims ${keepDims}`);
            }
          }
          x.dispose();
        }
        expect(calls).toBeGreaterThan(0);
      });

      it('matches (through the stock kernel) for non-consecutive or unordered axes, int32 and bool', () => {
        const x = randomTensor([3, 4, 5]);
        const before = nativeKernelStats()['Sum']?.fallback ?? 0;
        const i = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
        const bool = tf.tensor1d([true, false, true], 'bool');
        const { stock, nat } = both('Sum', () => [tf.sum(x, [0, 2]), tf.sum(x, [2, 1]), tf.sum(i, 0), tf.sum(bool)]);
        expectIdentical(nat, stock, 'sum fallbacks');
        expect(nativeKernelStats()['Sum']!.fallback - before).toBe(4);
        tf.dispose([x, i, bool]);
      });

      it('is bit-identical on a sliced input', () => {
        const x = slicedTensor([9, 12]);
        const { stock, nat } = both('Sum', () => [tf.sum(x), tf.sum(x, 0), tf.sum(x, 1, true)]);
        expectIdentical(nat, stock, 'sum sliced');
        x.dispose();
      });
    });

    describe('a W2-like network', () => {
      const LAYERS = 6, WIDTH = 64, BATCH = 32;
      const netRng = new Rng(99);
      const he = (n: number, fanIn: number): Float32Array => Float32Array.from({ length: n }, () => netRng.normal() * Math.sqrt(2 / fanIn));
      let weights: tf.Variable[] = [];
      let biases: tf.Variable[] = [];
      let x: tf.Tensor2D, y: tf.Tensor2D;

      beforeAll(() => {
        weights = Array.from({ length: LAYERS }, (_, l) => tf.variable(tf.tensor2d(he(WIDTH * WIDTH, WIDTH), [WIDTH, WIDTH]), true, `nk_w${l}`));
        biases = Array.from({ length: LAYERS }, (_, l) => tf.variable(tf.tensor1d(he(WIDTH, WIDTH).map((v) => v * 0.1)), true, `nk_b${l}`));
        x = tf.tensor2d(he(BATCH * WIDTH, 2), [BATCH, WIDTH]);
        y = tf.tensor2d(he(BATCH * WIDTH, 2), [BATCH, WIDTH]);
      });
      afterAll(() => {
        tf.dispose([...weights, ...biases, x, y]);
      });

      const activations: Record<string, (h: tf.Tensor2D) => tf.Tensor2D> = { relu: tf.relu, tanh: tf.tanh, sigmoid: tf.sigmoid };

      const step = (act: (h: tf.Tensor2D) => tf.Tensor2D) => (): tf.Tensor[] => {
        const { value, grads } = tf.variableGrads(() => {
          let h: tf.Tensor2D = x;
          for (let l = 0; l < LAYERS; l++) {
            h = tf.add(tf.matMul(h, weights[l]!), biases[l]!);
            if (l < LAYERS - 1) h = act(h);
          }
          return tf.losses.meanSquaredError(y, h) as tf.Scalar;
        });
        const gs = Object.keys(grads).sort().map((k) => grads[k]!);
        return [value, ...gs, tf.stack(gs.map((g) => tf.sqrt(tf.sum(tf.square(g)))))];
      };

      for (const [name, act] of Object.entries(activations)) {
        it(`gives the stock gradients within 1e-5 relative (${name})`, () => {
          const stock = run(false, step(act));
          const nat = run(true, step(act));
          expect(nat.length).toBe(stock.length);
          nat.forEach((n, i) => {
            const s = stock[i]!;
            expect(n.shape).toEqual(s.shape);
            let diff = 0, ref = 0;
            for (let j = 0; j < n.values.length; j++) {
              diff += (n.values[j]! - s.values[j]!) ** 2;
              ref += s.values[j]! ** 2;
            }
            expect(Math.sqrt(diff), `output ${i} of ${name}`).toBeLessThanOrEqual(1e-5 * Math.sqrt(ref));
          });
        });
      }

      it('leaks no tensors or backend buffers', () => {
        registerNativeKernels(tf);
        const once = (): void => {
          for (const act of Object.values(activations)) tf.dispose(tf.tidy(step(act)));
          const a = randomTensor([9, 5]), b = randomTensor([5, 7]), bias = randomTensor([7]);
          tf.dispose([tf.fused.matMul({ a, b, bias, activation: 'relu' }), tf.sum(a, 0, true), a, b, bias]);
        };
        once();
        const before = tf.memory();
        for (let i = 0; i < 3; i++) once();
        const after = tf.memory();
        expect(after.numTensors).toBe(before.numTensors);
        expect((after as { numDataBuffers: number }).numDataBuffers).toBe((before as { numDataBuffers: number }).numDataBuffers);
      });
    });

    describe('wasm backend with the native BatchMatMul', () => {
      beforeAll(async () => {
        await import('@tensorflow/tfjs-backend-wasm');
        expect(await tf.setBackend('wasm')).toBe(true);
      });
      afterAll(async () => {
        restoreStockKernels(tf);
        await tf.setBackend('cpu');
      });

      it('matches the stock wasm kernel and leaks nothing', () => {
        const cases: Array<[number[], number[], boolean, boolean]> = [
          [[128, 256], [256, 256], false, false],
          [[128, 256], [256, 256], false, true],
          [[128, 256], [128, 256], true, false],
          [[3, 9, 5], [3, 5, 4], false, false],
          [[1, 5, 9], [4, 6, 5], true, true],
        ];
        for (const [aShape, bShape, ta, tb] of cases) {
          const a = randomTensor(aShape), b = randomTensor(bShape);
          const k = ta ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
          const compute = (): tf.Tensor[] => [tf.matMul(a, b, ta, tb), tf.matMul(tf.abs(a), tf.abs(b), ta, tb)];
          restoreStockKernels(tf);
          const stock = tf.tidy(compute).map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.dataSync() as Float32Array, t }));
          expect(registerNativeWasmMatMul(tf)).toBe(true);
          const before = tf.memory().numTensors;
          const natT = tf.matMul(a, b, ta, tb);
          const nat = { shape: natT.shape, dtype: natT.dtype, values: natT.dataSync() as Float32Array };
          natT.dispose();
          expect(tf.memory().numTensors).toBe(before);
          const bound = Float32Array.from(stock[1]!.values, (m) => (k + 2) * 2 ** -23 * m + 1e-30);
          expectWithin(nat, stock[0]!, bound, `wasm matMul ${JSON.stringify(aShape)} x ${JSON.stringify(bShape)} tA=${ta} tB=${tb}`);
          tf.dispose([a, b, ...stock.map((s) => s.t)]);
        }
        expect(nativeKernelStats()['wasm:BatchMatMul']?.native).toBeGreaterThanOrEqual(cases.length);
      });
    });
  });
}
