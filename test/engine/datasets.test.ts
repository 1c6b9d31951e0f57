// Tests for the dataset loaders, generators, inline validation, normalisation and minibatching.
import { describe, it, expect } from 'vitest';
import {
  DATA_SOURCES,
  DataSpecError,
  datasetArrays,
  loadDataset,
  sampleBatches,
  type DataSourceName,
  type DataSpec,
  type Dataset,
} from '../../src/engine/data/datasets.js';

function spec(source: DataSourceName, extra: Partial<DataSpec> = {}): DataSpec {
  return { source, batchSize: 32, batches: 1, ...extra };
}

function columnStats(ds: Dataset): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  for (let j = 0; j < ds.inputSize; j++) {
    let s = 0;
    for (let i = 0; i < ds.n; i++) s += ds.x[i * ds.inputSize + j]!;
    const m = s / ds.n;
    let v = 0;
    for (let i = 0; i < ds.n; i++) v += (ds.x[i * ds.inputSize + j]! - m) ** 2;
    mean.push(m);
    std.push(Math.sqrt(v / ds.n));
  }
  return { mean, std };
}

function expectStandardised(ds: Dataset): void {
  const { mean, std } = columnStats(ds);
  for (let j = 0; j < ds.inputSize; j++) {
    expect(Math.abs(mean[j]!)).toBeLessThan(1e-4);
    // Standardised columns have std 1; constant columns must have been zeroed (std exactly 0).
    if (std[j]! > 0) expect(std[j]!).toBeCloseTo(1, 3);
  }
}

function expectOneHotMatchesLabels(ds: Dataset): void {
  const k = ds.outputSize;
  expect(ds.labels).not.toBeNull();
  // Collect mismatches and assert once: per-element expect() is slow over MNIST's 100k cells.
  const bad: number[] = [];
  for (let i = 0; i < ds.n; i++) {
    for (let c = 0; c < k; c++) {
      if (ds.y[i * k + c] !== (c === ds.labels![i] ? 1 : 0)) bad.push(i);
    }
  }
  expect(bad).toEqual([]);
}

function classCounts(labels: Int32Array, k: number): number[] {
  const counts = new Array<number>(k).fill(0);
  for (const l of labels) counts[l]!++;
  return counts;
}

function expectSpecError(s: DataSpec, field: string, message: string | RegExp): void {
  let err: unknown;
  try {
    loadDataset(s, 1);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DataSpecError);
  expect((err as DataSpecError).field).toBe(field);
  if (typeof message === 'string') expect((err as DataSpecError).message).toBe(message);
  else expect((err as DataSpecError).message).toMatch(message);
}

describe('DATA_SOURCES', () => {
  it('lists every source once', () => {
    expect([...DATA_SOURCES].sort()).toEqual(
      ['blobs', 'circles', 'gaussian_images', 'inline', 'iris', 'mnist', 'moons', 'shapes', 'sine', 'spirals', 'tokens', 'xor'],
    );
  });
});

describe('mnist', () => {
  // Loaded once for the whole block: parsing the digit JSON is the slow part of this file.
  const ds = loadDataset(spec('mnist'), 1);

  it('has all 10 000 bundled digits as 784-pixel inputs over 10 classes', () => {
    expect(ds.n).toBe(10000);
    expect(ds.inputSize).toBe(784);
    expect(ds.outputSize).toBe(10);
    expect(ds.numClasses).toBe(10);
    expect(ds.task).toBe('classification');
    expect(ds.x.length).toBe(10000 * 784);
    expect(ds.y.length).toBe(10000 * 10);
    const counts = classCounts(ds.labels!, 10);
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  });

  it('is standardised per pixel, with constant (always-blank) pixels set to 0', () => {
    expect(ds.normalization).toBe('standardize');
    expectStandardised(ds);
    // The top-left corner pixel is blank in every MNIST image.
    expect(Array.from({ length: ds.n }, (_, i) => ds.x[i * 784]).every((v) => v === 0)).toBe(true);
    expectOneHotMatchesLabels(ds);
  });

  it('keeps raw pixels in [0, 1] with normalize none, and serves from the cache', () => {
    const raw = loadDataset(spec('mnist', { normalize: 'none' }), 2);
    let min = Infinity;
    let max = -Infinity;
    for (const v of raw.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBeCloseTo(1, 5);
    // Mutating one dataset must not leak into the next load through the module cache.
    raw.x.fill(7);
    raw.labels!.fill(0);
    const again = loadDataset(spec('mnist', { normalize: 'none' }), 2);
    expect(again.x[784 * 5000 + 400]).not.toBe(7);
    expect(classCounts(again.labels!, 10)[9]).toBe(978);
  });
});

describe('the cache of normalised bundled sets', () => {
  it('shares one normalised copy between loads and copies only what a caller reads', () => {
    const a = loadDataset(spec('mnist'), 1);
    const b = loadDataset(spec('mnist'), 2);
    // Reading for batches goes to the shared arrays: no 31 MB copy per load. (Identity is asserted as a
    // boolean: a failing toBe on two 7.8M-entry arrays would spend minutes printing the diff.)
    expect(datasetArrays(a).x === datasetArrays(b).x).toBe(true);
    // Reading the field itself gives a private copy with the same values.
    const own = a.x;
    expect(own === datasetArrays(b).x).toBe(false);
    expect(own[784 * 123 + 400]).toBe(datasetArrays(b).x[784 * 123 + 400]);
    expect(a.x === own).toBe(true);
  });

  it('batches of a dataset whose copy the caller changed come from the changed copy', () => {
    const ds = loadDataset(spec('iris', { normalize: 'none' }), 1);
    ds.x.fill(3);
    ds.labels = new Int32Array(ds.n).fill(2);
    for (const batch of sampleBatches(ds, 10, 2, 1)) {
      expect(Array.from(batch.x).every((v) => v === 3)).toBe(true);
      expect(Array.from(batch.labels!).every((v) => v === 2)).toBe(true);
    }
    const fresh = loadDataset(spec('iris', { normalize: 'none' }), 1);
    expect(Array.from(fresh.x.slice(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
  });

  it('keeps each normalisation apart', () => {
    const none = datasetArrays(loadDataset(spec('iris', { normalize: 'none' }), 1)).x;
    const minmax = datasetArrays(loadDataset(spec('iris', { normalize: 'minmax' }), 1)).x;
    const standard = datasetArrays(loadDataset(spec('iris'), 1)).x;
    expect(new Set([none, minmax, standard]).size).toBe(3);
    expect(Math.max(...minmax)).toBe(1);
  });
});

describe('iris', () => {
  it('is 150 x 4 with 50 examples of each of 3 classes', () => {
    const ds = loadDataset(spec('iris'), 1);
    expect([ds.n, ds.inputSize, ds.outputSize, ds.numClasses, ds.task]).toEqual([150, 4, 3, 3, 'classification']);
    expect(classCounts(ds.labels!, 3)).toEqual([50, 50, 50]);
    expectStandardised(ds);
    expectOneHotMatchesLabels(ds);
  });

  it('keeps the raw measurements with normalize none and maps them to [0, 1] with minmax', () => {
    const raw = loadDataset(spec('iris', { normalize: 'none' }), 1);
    // First Iris record: 5.1, 3.5, 1.4, 0.2 (setosa).
    expect(Array.from(raw.x.slice(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
    expect(raw.labels![0]).toBe(0);
    const mm = loadDataset(spec('iris', { normalize: 'minmax' }), 1);
    for (let j = 0; j < 4; j++) {
      const col = Array.from({ length: 150 }, (_, i) => mm.x[i * 4 + j]!);
      expect(Math.min(...col)).toBe(0);
      expect(Math.max(...col)).toBeCloseTo(1, 6);
    }
  });
});

describe('generated sets', () => {
  const shapes: [DataSourceName, number, number, string, number | null][] = [
    ['xor', 2, 1, 'binary', 2],
    ['spirals', 2, 2, 'classification', 2],
    ['moons', 2, 1, 'binary', 2],
    ['circles', 2, 1, 'binary', 2],
    ['blobs', 2, 3, 'classification', 3],
    ['sine', 1, 1, 'regression', null],
  ];

  for (const [source, inputSize, outputSize, task, numClasses] of shapes) {
    it(`${source}: shape, standardisation and determinism by seed`, () => {
      const a = loadDataset(spec(source), 42);
      expect([a.n, a.inputSize, a.outputSize, a.task, a.numClasses]).toEqual([
        1000,
        inputSize,
        outputSize,
        task,
        numClasses,
      ]);
      expect(a.x.length).toBe(1000 * inputSize);
      expect(a.y.length).toBe(1000 * outputSize);
      expect(a.normalization).toBe('standardize');
      expectStandardised(a);
      if (task === 'regression') expect(a.labels).toBeNull();
      if (task === 'classification') expectOneHotMatchesLabels(a);
      if (task === 'binary') {
        for (let i = 0; i < a.n; i++) expect(a.y[i]).toBe(a.labels![i]);
        // Balanced generators, and xor is uniform: both classes should be well represented.
        const counts = classCounts(a.labels!, 2);
        expect(Math.min(...counts)).toBeGreaterThan(400);
      }

      const same = loadDataset(spec(source), 42);
      expect(same.x).toEqual(a.x);
      expect(same.y).toEqual(a.y);
      expect(same.labels).toEqual(a.labels);

      const other = loadDataset(spec(source), 43);
      expect(other.x).not.toEqual(a.x);
    });
  }

  it('honours samples, classes and features', () => {
    const spirals = loadDataset(spec('spirals', { samples: 301, classes: 3 }), 1);
    expect([spirals.n, spirals.outputSize, spirals.numClasses]).toEqual([301, 3, 3]);
    expect(classCounts(spirals.labels!, 3)).toEqual([101, 100, 100]);
    const blobs = loadDataset(spec('blobs', { samples: 50, classes: 5, features: 7 }), 1);
    expect([blobs.n, blobs.inputSize, blobs.outputSize]).toEqual([50, 7, 5]);
    expect(classCounts(blobs.labels!, 5)).toEqual([10, 10, 10, 10, 10]);
    expect(loadDataset(spec('moons', { samples: 10 }), 1).n).toBe(10);
  });

  it('xor labels follow the sign rule on the raw points', () => {
    const ds = loadDataset(spec('xor', { normalize: 'none' }), 7);
    for (let i = 0; i < ds.n; i++) {
      const a = ds.x[i * 2]!;
      const b = ds.x[i * 2 + 1]!;
      expect(Math.abs(a)).toBeLessThanOrEqual(1);
      expect(Math.abs(b)).toBeLessThanOrEqual(1);
      expect(ds.labels![i]).toBe(a * b < 0 ? 1 : 0);
    }
  });

  it('sine targets are sin(x) within the noise', () => {
    const ds = loadDataset(spec('sine', { normalize: 'none' }), 5);
    let sq = 0;
    for (let i = 0; i < ds.n; i++) {
      const x = ds.x[i]!;
      expect(Math.abs(x)).toBeLessThanOrEqual(Math.PI + 1e-6);
      const r = ds.y[i]! - Math.sin(x);
      expect(Math.abs(r)).toBeLessThan(0.5); // 5 sigma at the default noise 0.1
      sq += r * r;
    }
    expect(Math.sqrt(sq / ds.n)).toBeGreaterThan(0.08);
    expect(Math.sqrt(sq / ds.n)).toBeLessThan(0.12);

    const clean = loadDataset(spec('sine', { normalize: 'none', noise: 0 }), 5);
    for (let i = 0; i < clean.n; i++) expect(clean.y[i]).toBeCloseTo(Math.sin(clean.x[i]!), 6);
  });

  it('circles put class 1 on the inner circle and moons on the lower-right arc', () => {
    const c = loadDataset(spec('circles', { normalize: 'none', noise: 0 }), 1);
    for (let i = 0; i < c.n; i++) {
      const r = Math.hypot(c.x[i * 2]!, c.x[i * 2 + 1]!);
      expect(r).toBeCloseTo(c.labels![i] === 1 ? 0.5 : 1, 5);
    }
    const m = loadDataset(spec('moons', { normalize: 'none', noise: 0 }), 1);
    for (let i = 0; i < m.n; i++) {
      const x = m.x[i * 2]!;
      const y = m.x[i * 2 + 1]!;
      const r = m.labels![i] === 0 ? Math.hypot(x, y) : Math.hypot(x - 1, y - 0.5);
      expect(r).toBeCloseTo(1, 5);
    }
  });

  it('blob centres stay put when only the sample count changes', () => {
    const centroid = (ds: Dataset, c: number): number[] => {
      const s = [0, 0];
      let k = 0;
      for (let i = 0; i < ds.n; i++) {
        if (ds.labels![i] !== c) continue;
        s[0]! += ds.x[i * 2]!;
        s[1]! += ds.x[i * 2 + 1]!;
        k++;
      }
      return s.map((v) => v / k);
    };
    const a = loadDataset(spec('blobs', { normalize: 'none', samples: 3000 }), 9);
    const b = loadDataset(spec('blobs', { normalize: 'none', samples: 600 }), 9);
    for (let c = 0; c < 3; c++) {
      const [ax, ay] = centroid(a, c);
      const [bx, by] = centroid(b, c);
      expect(Math.abs(ax! - bx!)).toBeLessThan(0.3);
      expect(Math.abs(ay! - by!)).toBeLessThan(0.3);
    }
  });

  it('rejects out-of-range generator parameters with the field named', () => {
    expectSpecError(spec('moons', { samples: 0 }), 'data.samples', /data\.samples must be an integer/);
    expectSpecError(spec('moons', { samples: 2.5 }), 'data.samples', /data\.samples must be an integer/);
    expectSpecError(spec('sine', { noise: -1 }), 'data.noise', 'data.noise must be a finite number >= 0');
    expectSpecError(spec('sine', { noise: NaN }), 'data.noise', 'data.noise must be a finite number >= 0');
    expectSpecError(spec('spirals', { classes: 1 }), 'data.classes', /data\.classes must be an integer/);
    expectSpecError(spec('blobs', { features: 0 }), 'data.features', /data\.features must be an integer/);
    expectSpecError(
      { source: 'nope' as DataSourceName, batchSize: 1, batches: 1 },
      'data.source',
      /data\.source must be one of/,
    );
  });
});

describe('normalisation', () => {
  it('standardize zeroes constant columns and z-scores the rest; minmax maps to [0, 1]; targets untouched', () => {
    const x = [
      [1, 5, 10],
      [2, 5, 20],
      [3, 5, 60],
    ];
    const y = [[100], [200], [300]];
    const z = loadDataset(spec('inline', { x, y, normalize: 'standardize' }), 1);
    const sd0 = Math.sqrt(2 / 3); // column [1, 2, 3]
    const sd2 = Math.sqrt((20 ** 2 + 10 ** 2 + 30 ** 2) / 3); // column [10, 20, 60], mean 30
    const expected = [-1 / sd0, 0, -20 / sd2, 0, 0, -10 / sd2, 1 / sd0, 0, 30 / sd2];
    z.x.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    expect(Array.from(z.y)).toEqual([100, 200, 300]);

    const mm = loadDataset(spec('inline', { x, y, normalize: 'minmax' }), 1);
    expect(Array.from(mm.x)).toEqual([0, 0, 0, 0.5, 0, 0.2, 1, 0, 1].map(Math.fround));

    const none = loadDataset(spec('inline', { x, y }), 1);
    expect(none.normalization).toBe('none');
    expect(Array.from(none.x)).toEqual(x.flat());
  });

  it('rejects an unknown normalisation', () => {
    expectSpecError(spec('iris', { normalize: 'l2' as 'none' }), 'data.normalize', /data\.normalize must be one of/);
  });
});

describe('inline', () => {
  const x = [
    [0, 1],
    [1, 0],
    [1, 1],
    [0, 0],
  ];

  it('builds regression data from target rows', () => {
    const ds = loadDataset(spec('inline', { x, y: [[1, 2], [3, 4], [5, 6], [7, 8]] }), 1);
    expect([ds.n, ds.inputSize, ds.outputSize, ds.task, ds.numClasses, ds.labels]).toEqual([
      4,
      2,
      2,
      'regression',
      null,
      null,
    ]);
    expect(Array.from(ds.y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(ds.x)).toEqual(x.flat());
  });

  it('builds classification data from class indices, numClasses = max + 1 (two classes stay classification)', () => {
    const ds = loadDataset(spec('inline', { x, y: [1, 1, 0, 0] }), 1);
    expect([ds.task, ds.numClasses, ds.outputSize]).toEqual(['classification', 2, 2]);
    expect(Array.from(ds.y)).toEqual([0, 1, 0, 1, 1, 0, 1, 0]);
    const sparse = loadDataset(spec('inline', { x, y: [0, 4, 2, 0] }), 1);
    expect(sparse.numClasses).toBe(5);
    expectOneHotMatchesLabels(sparse);
  });

  it('names the offending field in every validation error', () => {
    expectSpecError(spec('inline', { y: [0] }), 'data.x', 'data.x is required when data.source is inline');
    expectSpecError(spec('inline', { x: [], y: [] }), 'data.x', 'data.x must be a non-empty array of rows');
    expectSpecError(
      spec('inline', { x: [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]], y: [0, 1, 0] }),
      'data.x[2]',
      'data.x[2] has 3 values but data.x[0] has 4',
    );
    expectSpecError(spec('inline', { x: [[1], []], y: [0, 1] }), 'data.x[1]', 'data.x[1] is empty');
    expectSpecError(spec('inline', { x: [[1], 5 as unknown as number[]], y: [0, 1] }), 'data.x[1]', /must be an array/);
    expectSpecError(
      spec('inline', { x: [[1, 2], [NaN, 2]], y: [0, 1] }),
      'data.x[1][0]',
      'data.x[1][0] is not a finite number',
    );
    expectSpecError(
      spec('inline', { x: [[1, Infinity], [0, 2]], y: [0, 1] }),
      'data.x[0][1]',
      'data.x[0][1] is not a finite number',
    );
    expectSpecError(
      spec('inline', { x: [[1, '2' as unknown as number]], y: [0] }),
      'data.x[0][1]',
      'data.x[0][1] is not a finite number',
    );
    expectSpecError(spec('inline', { x: [[1e39]], y: [0] }), 'data.x[0][0]', /too large/);
    expectSpecError(spec('inline', { x }), 'data.y', 'data.y is required when data.source is inline');
    expectSpecError(
      spec('inline', { x: [...x, [2, 2], [3, 3]], y: [0, 1, 0, 1, 0] }),
      'data.y',
      'data.y has 5 entries but data.x has 6 rows',
    );
    expectSpecError(
      spec('inline', { x, y: [0, 1, 2, 1.5] }),
      'data.y[3]',
      'data.y[3] must be a non-negative integer class index',
    );
    expectSpecError(
      spec('inline', { x, y: [0, -1, 2, 1] }),
      'data.y[1]',
      'data.y[1] must be a non-negative integer class index',
    );
    expectSpecError(
      spec('inline', { x, y: [0, 1, [2] as unknown as number, 1] }),
      'data.y[2]',
      'data.y[2] must be a non-negative integer class index',
    );
    expectSpecError(spec('inline', { x, y: [0, 1, 2, 1e6] }), 'data.y[3]', /must be below/);
    expectSpecError(spec('inline', { x, y: [0, 0, 0, 0] }), 'data.y', /at least two classes/);
    expectSpecError(
      spec('inline', { x, y: [[1], [2, 3], [4], [5]] }),
      'data.y[1]',
      'data.y[1] has 2 values but data.y[0] has 1',
    );
    expectSpecError(
      spec('inline', { x, y: [[1], [2], [NaN], [5]] }),
      'data.y[2][0]',
      'data.y[2][0] is not a finite number',
    );
    expectSpecError(spec('inline', { x, y: [[1], 2, [4], [5]] as unknown as number[][] }), 'data.y[1]', /must be an array/);
  });
});

describe('sampleBatches', () => {
  // Each row is [i, -i] with class i % 4, so a batch row identifies its example exactly.
  const ds = loadDataset(
    spec('inline', {
      x: Array.from({ length: 100 }, (_, i) => [i, -i]),
      y: Array.from({ length: 100 }, (_, i) => i % 4),
    }),
    3,
  );

  function rowIndex(batchX: Float32Array, b: number): number {
    const i = batchX[b * 2]!;
    return batchX[b * 2 + 1] === -i ? i : -1;
  }

  it('draws distinct, correctly paired examples per batch and covers each epoch', () => {
    const batches = sampleBatches(ds, 30, 10, 11);
    expect(batches).toHaveLength(10);
    const seen = new Map<number, number>();
    for (const batch of batches) {
      expect(batch.size).toBe(30);
      expect(batch.x.length).toBe(60);
      expect(batch.y.length).toBe(120);
      const idx = Array.from({ length: 30 }, (_, b) => rowIndex(batch.x, b));
      expect(idx.every((i) => i >= 0)).toBe(true);
      expect(new Set(idx).size).toBe(30);
      idx.forEach((i, b) => {
        expect(batch.labels![b]).toBe(ds.labels![i]);
        expect(Array.from(batch.y.slice(b * 4, b * 4 + 4))).toEqual(Array.from(ds.y.slice(i * 4, i * 4 + 4)));
        seen.set(i, (seen.get(i) ?? 0) + 1);
      });
    }
    // 300 draws over 100 examples, walked epoch by epoch: every example appears 2 to 4 times.
    expect(seen.size).toBe(100);
    for (const count of seen.values()) {
      expect(count).toBeGreaterThanOrEqual(2);
      expect(count).toBeLessThanOrEqual(4);
    }
  });

  it('first epoch is a permutation when batchSize divides n', () => {
    const idx = sampleBatches(ds, 25, 4, 2).flatMap((b) => Array.from({ length: 25 }, (_, k) => rowIndex(b.x, k)));
    expect(new Set(idx).size).toBe(100);
  });

  it('keeps batches distinct even when batchSize equals n', () => {
    for (const batch of sampleBatches(ds, 100, 3, 4)) {
      expect(new Set(Array.from({ length: 100 }, (_, b) => rowIndex(batch.x, b))).size).toBe(100);
    }
  });

  it('is deterministic by seed', () => {
    const a = sampleBatches(ds, 16, 5, 1);
    const b = sampleBatches(ds, 16, 5, 1);
    const c = sampleBatches(ds, 16, 5, 2);
    expect(a.map((x) => x.x)).toEqual(b.map((x) => x.x));
    expect(a.map((x) => x.labels)).toEqual(b.map((x) => x.labels));
    expect(a.map((x) => x.x)).not.toEqual(c.map((x) => x.x));
  });

  it('samples with replacement when batchSize exceeds n', () => {
    const small = loadDataset(spec('inline', { x: [[1], [2], [3]], y: [[10], [20], [30]] }), 1);
    const [batch] = sampleBatches(small, 12, 1, 1);
    expect(batch!.size).toBe(12);
    expect(batch!.labels).toBeNull();
    for (let b = 0; b < 12; b++) expect(batch!.y[b]).toBe(batch!.x[b]! * 10);
    expect(new Set(batch!.x).size).toBeLessThanOrEqual(3);
  });

  it('returns fresh copies', () => {
    const [batch] = sampleBatches(ds, 10, 1, 1);
    const before = ds.x.slice();
    batch!.x.fill(123);
    batch!.y.fill(123);
    expect(ds.x).toEqual(before);
    expect(batch!.x.buffer).not.toBe(ds.x.buffer);
  });
});
