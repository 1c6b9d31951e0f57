// Image data (issue 12): the generated gaussian_images and shapes sets, inline examples of any shape, their limits, and the dense path on them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  DataSpecError, datasetBuilds, describeDataset, loadDataset, MAX_GENERATED_VALUES, type DataSpec, type Dataset,
} from '../../src/engine/data/datasets.js';
import { SHAPE_KINDS } from '../../src/engine/data/images.js';
import { testApp } from '../support/app.js';

const spec = (extra: Partial<DataSpec> & Pick<DataSpec, 'source'>): DataSpec => ({ batchSize: 16, batches: 1, ...extra });

function specError(s: DataSpec): DataSpecError {
  try {
    loadDataset(s, 1);
  } catch (e) {
    if (e instanceof DataSpecError) return e;
    throw e;
  }
  throw new Error('no DataSpecError');
}

const counts = (ds: Dataset): number[] => {
  const c = new Array<number>(ds.numClasses!).fill(0);
  for (const l of ds.labels!) c[l]!++;
  return c;
};

const example = (ds: Dataset, i: number): Float32Array => ds.x.subarray(i * ds.inputSize, (i + 1) * ds.inputSize);

describe('gaussian_images', () => {
  it('is 28 x 28 x 1 in 10 classes by default, and height x width x channels when asked (NHWC, flattened)', () => {
    const ds = loadDataset(spec({ source: 'gaussian_images', samples: 50 }), 1);
    expect([ds.n, ds.inputSize, ds.outputSize, ds.numClasses, ds.task]).toEqual([50, 784, 10, 10, 'classification']);
    expect(ds.inputShape).toEqual([28, 28, 1]);
    const rgb = loadDataset(spec({ source: 'gaussian_images', samples: 30, height: 12, width: 20, channels: 3, classes: 3 }), 1);
    expect(rgb.inputShape).toEqual([12, 20, 3]);
    expect(rgb.inputSize).toBe(720);
    expect(rgb.x.length).toBe(30 * 720);
    expect(rgb.y.length).toBe(30 * 3);
  });

  it('draws each example as its class template plus noise: templates i.i.d. N(0, 1), within-class deviations N(0, noise²)', () => {
    // noise 0: every example of a class is its template exactly.
    const clean = loadDataset(spec({ source: 'gaussian_images', samples: 200, classes: 4, height: 16, width: 16, channels: 2, noise: 0, normalize: 'none' }), 3);
    const templates = new Map<number, Float32Array>();
    let mismatches = 0;
    for (let i = 0; i < clean.n; i++) {
      const t = templates.get(clean.labels![i]!);
      if (!t) templates.set(clean.labels![i]!, example(clean, i));
      else if (example(clean, i).some((v, j) => v !== t[j])) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect(templates.size).toBe(4);
    const all = [...templates.values()].flatMap((t) => [...t]);
    const mean = all.reduce((s, v) => s + v, 0) / all.length;
    const variance = all.reduce((s, v) => s + (v - mean) ** 2, 0) / all.length;
    // 2048 N(0, 1) draws: standard error of the mean 0.022, of the variance 0.031.
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Math.abs(variance - 1)).toBeLessThan(0.15);

    // noise 2, same seed: the same templates (their own stream), deviations of variance 4.
    const noisy = loadDataset(spec({ source: 'gaussian_images', samples: 400, classes: 4, height: 16, width: 16, channels: 2, noise: 2, normalize: 'none' }), 3);
    let sum = 0, sq = 0, count = 0;
    for (let i = 0; i < noisy.n; i++) {
      const t = templates.get(noisy.labels![i]!)!;
      example(noisy, i).forEach((v, j) => { const d = v - t[j]!; sum += d; sq += d * d; count++; });
    }
    expect(Math.abs(sum / count)).toBeLessThan(0.02);
    expect(sq / count).toBeGreaterThan(4 * 0.98);
    expect(sq / count).toBeLessThan(4 * 1.02);
  });

  it('is balanced over its classes and standardised per value by default', () => {
    const ds = loadDataset(spec({ source: 'gaussian_images', samples: 1003, height: 6, width: 6 }), 2);
    expect(counts(ds)).toEqual([101, 101, 101, 100, 100, 100, 100, 100, 100, 100]);
    expect(ds.normalization).toBe('standardize');
    let m = 0;
    for (let i = 0; i < ds.n; i++) m += ds.x[i * ds.inputSize + 7]!;
    expect(Math.abs(m / ds.n)).toBeLessThan(1e-5);
  });
});

/** The pixels of channel `k` of an example that are lit (noise 0: the background is exactly 0). */
function litMask(ds: Dataset, i: number, k: number): { lit: boolean[][]; values: number[] } {
  const [h, w, c] = ds.inputShape as [number, number, number];
  const x = example(ds, i);
  const lit: boolean[][] = [];
  const values: number[] = [];
  for (let y = 0; y < h; y++) {
    lit.push([]);
    for (let xx = 0; xx < w; xx++) {
      const v = x[(y * w + xx) * c + k]!;
      lit[y]!.push(v !== 0);
      if (v !== 0) values.push(v);
    }
  }
  return { lit, values };
}

/** Lit pixels over the area of their bounding box: 1 for a square, π/4 for a disc, 1/2 for a triangle. */
function fillRatio(lit: boolean[][]): number {
  let top = Infinity, bottom = -1, left = Infinity, right = -1, count = 0;
  lit.forEach((row, y) => row.forEach((on, x) => {
    if (!on) return;
    count++;
    top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
  }));
  return count / ((bottom - top + 1) * (right - left + 1));
}

describe('shapes', () => {
  it('draws the class\'s shape: told apart by how much of its bounding box it fills and by its top and bottom rows', () => {
    const ds = loadDataset(spec({ source: 'shapes', samples: 400, noise: 0, normalize: 'none', channels: 2 }), 5);
    expect(ds.inputShape).toEqual([28, 28, 2]);
    expect(ds.numClasses).toBe(SHAPE_KINDS.length);
    // Continuous values: square 1, disc π/4 = 0.785, triangle 1/2, cross (bars 2r/5 thick) 0.36; pixelised at
    // r = 3.5..8.4 the thin shapes fill more. A triangle's top row (its apex) is far narrower than its base;
    // a cross's top and bottom rows are its vertical bar's ends, of one width.
    const bands: Record<string, [number, number]> = { square: [1, 1], circle: [0.68, 0.9], triangle: [0.4, 0.72], cross: [0.2, 0.5] };
    const outside: string[] = [];
    for (let i = 0; i < ds.n; i++) {
      const kind = SHAPE_KINDS[ds.labels![i]!]!;
      const first = litMask(ds, i, 0);
      const second = litMask(ds, i, 1);
      const ratio = fillRatio(first.lit);
      const rows = first.lit.map((r) => r.filter(Boolean).length).filter((w) => w > 0);
      const [top, bottom] = [rows[0]!, rows.at(-1)!];
      const shapeOk = kind === 'triangle' ? bottom >= top + 3 : kind === 'cross' ? Math.abs(bottom - top) <= 1 : true;
      if (ratio < bands[kind]![0] || ratio > bands[kind]![1] || !shapeOk) outside.push(`${i} ${kind} fill ${ratio.toFixed(3)} rows ${top}..${bottom}`);
      // Every channel has the same shape, each filled with one brightness in [0.5, 1].
      expect(second.lit).toEqual(first.lit);
      for (const { values } of [first, second]) {
        expect(values.length).toBeGreaterThan(8);
        expect(new Set(values).size).toBe(1);
        expect(values[0]!).toBeGreaterThanOrEqual(0.5);
        expect(values[0]!).toBeLessThanOrEqual(1);
      }
    }
    expect(outside).toEqual([]);
  });

  it('is deterministic per seed, balanced, and varies position and size', () => {
    const a = loadDataset(spec({ source: 'shapes', samples: 101, classes: 3, height: 20, width: 24 }), 9);
    const b = loadDataset(spec({ source: 'shapes', samples: 101, classes: 3, height: 20, width: 24 }), 9);
    const c = loadDataset(spec({ source: 'shapes', samples: 101, classes: 3, height: 20, width: 24 }), 10);
    expect(b.x).toEqual(a.x);
    expect(b.labels).toEqual(a.labels);
    expect(c.x).not.toEqual(a.x);
    expect(counts(a)).toEqual([34, 34, 33]);
    const clean = loadDataset(spec({ source: 'shapes', samples: 40, classes: 2, noise: 0, normalize: 'none' }), 9);
    const areas = new Set<number>();
    const corners = new Set<string>();
    for (let i = 0; i < clean.n; i++) {
      const { lit } = litMask(clean, i, 0);
      areas.add(lit.flat().filter(Boolean).length);
      corners.add(`${lit.findIndex((r) => r.some(Boolean))},${Math.min(...lit.map((r) => r.indexOf(true)).filter((v) => v >= 0))}`);
    }
    expect(areas.size).toBeGreaterThan(10);
    expect(corners.size).toBeGreaterThan(10);
  });
});

describe('image set limits', () => {
  it.each([
    [{ source: 'gaussian_images', height: 257 }, 'data.height', /from 1 to 256/],
    [{ source: 'gaussian_images', width: 0 }, 'data.width', /from 1 to 256/],
    [{ source: 'gaussian_images', channels: 17 }, 'data.channels', /from 1 to 16/],
    [{ source: 'shapes', height: 7 }, 'data.height', /from 8 to 256/],
    [{ source: 'shapes', classes: 5 }, 'data.classes', /from 2 to 4/],
    [{ source: 'gaussian_images', samples: 1000, height: 256, width: 256 }, 'data.samples', /65536000 values; it must not exceed 50000000/],
  ] as const)('%o is refused naming %s', (extra, field, message) => {
    const err = specError(spec(extra as DataSpec));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it('admits exactly the largest set within the value limit', () => {
    const ok = describeDataset(spec({ source: 'gaussian_images', samples: MAX_GENERATED_VALUES / (100 * 100 * 5), height: 100, width: 100, channels: 5 }), 1);
    expect(ok.n * ok.inputSize).toBe(MAX_GENERATED_VALUES);
    expect(() => describeDataset(spec({ source: 'gaussian_images', samples: ok.n + 1, height: 100, width: 100, channels: 5 }), 1)).toThrow(DataSpecError);
  });

  it('describeDataset gives loadDataset\'s shape and description, drawing nothing', () => {
    for (const data of [
      { source: 'gaussian_images', samples: 40, height: 9, width: 7, channels: 3, classes: 4 },
      { source: 'shapes', samples: 30, height: 12, channels: 2, normalize: 'minmax' },
    ] as const) {
      const s = spec(data);
      const before = datasetBuilds.generated;
      const shape = describeDataset(s, 4);
      expect(datasetBuilds.generated).toBe(before);
      const { x, y, labels, ...loaded } = loadDataset(s, 4);
      expect(shape).toEqual(loaded);
      expect(x.length).toBe(shape.n * shape.inputShape.reduce((a, b) => a * b, 1));
    }
  });
});

/** [n][h][w][c] nested arrays with value 1000·i + (y·w + x)·c + k: their row-major flattening is known. */
const nested = (n: number, h: number, w: number, c: number): number[][][][] =>
  Array.from({ length: n }, (_, i) => Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => Array.from({ length: c }, (_, k) => 1000 * i + (y * w + x) * c + k))));

describe('inline examples of any shape', () => {
  it('takes nested examples, says their shape and flattens them row-major', () => {
    const ds = loadDataset(spec({ source: 'inline', x: nested(3, 2, 4, 3), y: [0, 1, 0] }), 1);
    expect(ds.inputShape).toEqual([2, 4, 3]);
    expect(ds.inputSize).toBe(24);
    expect([...ds.x]).toEqual(Array.from({ length: 3 }, (_, i) => Array.from({ length: 24 }, (_, j) => 1000 * i + j)).flat());
    const plain = loadDataset(spec({ source: 'inline', x: [[1, 2, 3], [4, 5, 6]], y: [0, 1] }), 1);
    expect(plain.inputShape).toEqual([3]);
    const matrices = loadDataset(spec({ source: 'inline', x: [[[1, 2]], [[3, 4]]], y: [[0], [1]] }), 1);
    expect(matrices.inputShape).toEqual([1, 2]);
    expect(matrices.task).toBe('regression');
  });

  it('names the first entry whose shape or value differs', () => {
    const x = nested(5, 3, 3, 1) as unknown[][][][];
    const bad = (edit: (x: unknown[][][][]) => void): DataSpecError => {
      const copy = structuredClone(x);
      edit(copy);
      return specError(spec({ source: 'inline', x: copy as number[][][][], y: [0, 1, 0, 1, 0] }));
    };
    expect(bad((c) => { c[3]![2] = [[1], [2]]; })).toMatchObject({ field: 'data.x[3][2]', message: 'data.x[3][2] has 2 entries but data.x[0][0] has 3' });
    expect(bad((c) => { c[1]!.pop(); })).toMatchObject({ field: 'data.x[1]', message: 'data.x[1] has 2 entries but data.x[0] has 3' });
    expect(bad((c) => { c[2]![1]![0] = 7 as unknown as unknown[]; })).toMatchObject({ field: 'data.x[2][1][0]', message: /must be an array of 1 entries/ });
    expect(bad((c) => { c[4]![0]![2] = [[1]] as unknown as unknown[]; })).toMatchObject({ field: 'data.x[4][0][2][0]', message: 'data.x[4][0][2][0] is not a finite number' });
    expect(bad((c) => { c[0]![1]![1]![0] = 1e39; })).toMatchObject({ field: 'data.x[0][1][1][0]', message: /too large/ });
    expect(bad((c) => { c[0]![2] = []; })).toMatchObject({ field: 'data.x[0][2]', message: /has 0 entries/ });
    expect(bad((c) => { c[0]![0]![0] = []; })).toMatchObject({ field: 'data.x[0][0][0]', message: 'data.x[0][0][0] is empty' });
    expect(specError(spec({ source: 'inline', x: [[[[[[1]]]]]] as unknown as number[][], y: [0] }))).toMatchObject({ field: 'data.x[0]', message: /at most 4/ });
  });
});

describe('image data through the API and the dense path', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp();
  });
  afterAll(async () => {
    await app.close();
  });
  const post = async (body: unknown) => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: body as object });
    return { status: res.statusCode, body: res.json() };
  };

  it.each([
    [{ source: 'gaussian_images', height: 300 }, /data\/height|data\.height/],
    [{ source: 'shapes', channels: 32 }, /data\/channels|data\.channels/],
    [{ source: 'shapes', height: 4 }, /data\.height must be an integer from 8 to 256/],
    [{ source: 'gaussian_images', samples: 1000, height: 256, width: 256 }, /data\.samples .* must not exceed 50000000/],
    [{ source: 'inline', x: [[[1], [2]], [[3]]], y: [0, 1] }, /data\.x\[1\] has 1 entries but data\.x\[0\] has 2/],
  ])('answers 400 for %o, naming the field', async (data, message) => {
    const res = await post({ network: { depth: 2, width: 4 }, data });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  it('runs a dense network on images: the input layer takes height x width x channels inputs', async () => {
    const res = await post({ network: { depth: 3, width: 8 }, data: { source: 'shapes', samples: 64, height: 10, width: 12, channels: 3, batchSize: 16 } });
    expect(res.status).toBe(200);
    expect(res.body.result.layers[0].inputUnits).toBe(360);
    expect(res.body.result.data.inputUnits).toBe(360);
    expect(res.body.result.layers.at(-1).units).toBe(4);
  });

  it('gives a nested inline example exactly the numbers of the same example flattened', async () => {
    const x = nested(6, 3, 2, 2).map((e) => e.map((r) => r.map((p) => p.map((v) => Math.sin(v)))));
    const y = [0, 1, 2, 0, 1, 2];
    const body = (data: unknown) => ({ seed: 4, network: { depth: 3, width: 5, activation: 'tanh' }, data, loss: 'categorical_crossentropy' });
    const a = await post(body({ source: 'inline', x, y }));
    const b = await post(body({ source: 'inline', x: x.map((e) => e.flat(2)), y }));
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.result.layers[0].inputUnits).toBe(12);
    expect(a.body.result.layers).toEqual(b.body.result.layers);
  });
});
