// Sequence data (issue 14): the adding problem, the memory task, next-step sine and sequential MNIST, each
// checked against its definition (targets recomputed from the inputs), and their limits.
import { describe, it, expect } from 'vitest';
import { DataSpecError, describeDataset, loadDataset, type DataSpec, type Dataset } from '../../src/engine/data/datasets.js';

const spec = (extra: Partial<DataSpec> & Pick<DataSpec, 'source'>): DataSpec => ({ batchSize: 16, batches: 1, ...extra });
const example = (ds: Dataset, i: number): Float32Array => ds.x.subarray(i * ds.inputSize, (i + 1) * ds.inputSize);

function specError(s: DataSpec): DataSpecError {
  try {
    loadDataset(s, 1);
  } catch (e) {
    if (e instanceof DataSpecError) return e;
    throw e;
  }
  throw new Error('no DataSpecError');
}

describe('sequence data', () => {
  it('adding: two markers, one in each half, and the target is the sum of the marked values (unnormalised)', () => {
    const T = 40;
    const ds = loadDataset(spec({ source: 'adding', length: T, samples: 200 }), 3);
    expect(ds.inputShape).toEqual([T, 2]);
    expect(ds.normalization).toBe('none');
    for (let i = 0; i < ds.n; i++) {
      const e = example(ds, i);
      const marked = [...Array(T).keys()].filter((t) => e[2 * t + 1] === 1);
      expect(marked).toHaveLength(2);
      expect(marked[0]!).toBeLessThan(T / 2);
      expect(marked[1]!).toBeGreaterThanOrEqual(T / 2);
      expect(ds.y[i]).toBeCloseTo(e[2 * marked[0]!]! + e[2 * marked[1]!]!, 6);
    }
  });

  it('memory: the class is the one-hot symbol of step 0, the recall cue is at the last step, nothing in between', () => {
    const T = 12, k = 5;
    const ds = loadDataset(spec({ source: 'memory', length: T, classes: k, samples: 100 }), 3);
    expect(ds.inputShape).toEqual([T, k + 1]);
    expect(ds.task).toBe('classification');
    for (let i = 0; i < ds.n; i++) {
      const e = example(ds, i);
      expect(e[ds.labels![i]!]).toBe(1);
      expect(e.slice(0, k + 1).reduce((s, v) => s + v, 0)).toBe(1);
      expect(e[(T - 1) * (k + 1) + k]).toBe(1);
      expect(e.slice(k + 1, (T - 1) * (k + 1)).every((v) => v === 0)).toBe(true);
    }
  });

  it('sine_wave: the target continues the sequence (sin(ω(t+1)+φ) = 2cos ω·x_t − x_{t−1})', () => {
    const T = 30;
    const ds = loadDataset(spec({ source: 'sine_wave', length: T, samples: 50 }), 3);
    expect(ds.inputShape).toEqual([T, 1]);
    for (let i = 0; i < ds.n; i++) {
      const e = example(ds, i);
      // 2cos ω from a step where x_t is not near 0.
      const t = [...Array(T - 2).keys()].map((j) => j + 1).reduce((a, b) => (Math.abs(e[b]!) > Math.abs(e[a]!) ? b : a));
      const c2 = (e[t + 1]! + e[t - 1]!) / e[t]!;
      expect(ds.y[i]).toBeCloseTo(c2 * e[T - 1]! - e[T - 2]!, 4);
    }
  });

  it('sequential_mnist: MNIST\'s pixels as [28, 28] rows or [784, 1] pixels; permuted keeps every example\'s pixels in one fixed order', () => {
    const mnist = loadDataset(spec({ source: 'mnist' }), 1);
    const rows = loadDataset(spec({ source: 'sequential_mnist' }), 1);
    expect(rows.inputShape).toEqual([28, 28]);
    expect(example(rows, 7)).toEqual(example(mnist, 7));
    expect(describeDataset(spec({ source: 'sequential_mnist', length: 784 }), 1).inputShape).toEqual([784, 1]);
    const a = loadDataset(spec({ source: 'sequential_mnist', permuted: true }), 1);
    const b = loadDataset(spec({ source: 'sequential_mnist', permuted: true }), 99);
    expect(example(a, 3)).toEqual(example(b, 3));
    expect(example(a, 3)).not.toEqual(example(mnist, 3));
    expect([...example(a, 3)].sort()).toEqual([...example(mnist, 3)].sort());
  });

  it('refuses lengths out of range, naming data.length', () => {
    expect(specError(spec({ source: 'adding', length: 1 }))).toMatchObject({ field: 'data.length', message: /from 2 to 2000/ });
    expect(specError(spec({ source: 'sequential_mnist', length: 50 }))).toMatchObject({ field: 'data.length', message: /28 .* or 784/ });
  });
});
