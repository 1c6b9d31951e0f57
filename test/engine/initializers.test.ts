// Initialisers: empirical moments of large seeded draws vs initializerMoments and the textbook formulas, exact shapes, errors.
import { describe, it, expect } from 'vitest';
import {
  INITIALIZER_NAMES, TRUNCATION_STD, initialize, initializerMoments, normalizeInitializer,
  type InitializerInput, type InitializerSpec,
} from '../../src/engine/model/initializers.js';
import { Rng } from '../../src/engine/common/random.js';
import { SpecError } from '../../src/engine/common/errors.js';
import { deltaOrthogonal } from '../../src/engine/model/graph-params.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';

const ROWS = 600; // fan_in
const COLS = 500; // fan_out

/** Simpson's rule on [a, b] with n (even) intervals. */
function simpson(f: (t: number) => number, a: number, b: number, n = 4000): number {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

/** Variance of a standard normal truncated to ±2, by integration: E[z² | |z| ≤ 2]. */
const phi = (t: number): number => Math.exp(-0.5 * t * t);
const TRUNC_VAR = simpson((t) => t * t * phi(t), -2, 2) / simpson(phi, -2, 2);

interface Moments {
  n: number;
  mean: number;
  variance: number;
  m4: number;
  min: number;
  max: number;
}

function momentsOf(w: Float32Array): Moments {
  const n = w.length;
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of w) {
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / n;
  let s2 = 0;
  let s4 = 0;
  for (const v of w) {
    const d = (v - mean) ** 2;
    s2 += d;
    s4 += d * d;
  }
  return { n, mean, variance: s2 / (n - 1), m4: s4 / n, min, max };
}

/**
 * Checks the sample mean and variance against the expected ones within 4 standard errors: SE(mean) = σ/√n,
 * SE(s²) = sqrt((m4 − σ⁴)/n) with the sample's own fourth central moment.
 */
function expectMoments(m: Moments, mean: number, variance: number, what: string): void {
  const seMean = Math.sqrt(variance / m.n);
  const seVar = Math.sqrt((m.m4 - m.variance ** 2) / m.n);
  expect(Math.abs(m.mean - mean), `${what}: mean ${m.mean} vs ${mean} (SE ${seMean})`).toBeLessThanOrEqual(4 * seMean + 1e-12);
  expect(Math.abs(m.variance - variance), `${what}: variance ${m.variance} vs ${variance} (SE ${seVar})`)
    .toBeLessThanOrEqual(4 * seVar + 1e-12);
}

function expectClose(actual: number, expected: number, rel: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(rel * Math.abs(expected));
}

type Family = 'uniform' | 'normal' | 'truncated' | 'truncated_uncorrected';

/** The textbook target variance and sampling family of each scaling scheme, written out by hand. */
const TEXTBOOK: Record<string, { variance: (fanIn: number, fanOut: number) => number; family: Family }> = {
  he_uniform: { variance: (i) => 2 / i, family: 'uniform' },
  he_normal: { variance: (i) => 2 / i, family: 'normal' },
  glorot_uniform: { variance: (i, o) => 2 / (i + o), family: 'uniform' },
  glorot_normal: { variance: (i, o) => 2 / (i + o), family: 'normal' },
  lecun_uniform: { variance: (i) => 1 / i, family: 'uniform' },
  lecun_normal: { variance: (i) => 1 / i, family: 'normal' },
  // U[−1/√fan_in, 1/√fan_in]: variance (2/√n)²/12 = 1/(3n).
  glorot_standard: { variance: (i) => 1 / (3 * i), family: 'uniform' },
  // PyTorch's kaiming_uniform_(a=√5): bound gain·√(3/fan_in) with gain² = 2/(1 + 5), i.e. U[±1/√fan_in].
  pytorch_default: { variance: (i) => 1 / (3 * i), family: 'uniform' },
};

/** Checks a scaling draw: moments, plus the support of its family (uniform ±√(3v), truncated ±2σ). */
function checkScaling(w: Float32Array, spec: InitializerSpec, target: number, family: Family, what: string, fanIn = ROWS, fanOut = COLS): void {
  const m = momentsOf(w);
  const expectedVar = family === 'truncated_uncorrected' ? target * TRUNC_VAR : target;
  const fromEngine = initializerMoments(spec, fanIn, fanOut)!;
  expect(fromEngine.mean).toBe(0);
  expectClose(fromEngine.variance, expectedVar, 1e-9, `${what} initializerMoments vs textbook`);
  expectMoments(m, 0, expectedVar, what);
  switch (family) {
    case 'uniform': {
      // Bounds exactly ±√(3v) (float32-rounded), and 300k draws come within 0.1% of both ends.
      const limit = Math.sqrt(3 * target);
      expect(m.max).toBeLessThanOrEqual(Math.fround(limit));
      expect(m.min).toBeGreaterThanOrEqual(-Math.fround(limit));
      expect(m.max).toBeGreaterThan(limit * 0.999);
      expect(m.min).toBeLessThan(-limit * 0.999);
      // A uniform's kurtosis is 9/5: tells it apart from a (truncated) normal of the same variance.
      expectClose(m.m4 / m.variance ** 2, 1.8, 0.02, `${what} kurtosis`);
      break;
    }
    case 'normal':
      expectClose(m.m4 / m.variance ** 2, 3, 0.05, `${what} kurtosis`);
      // Untruncated: 300k normal draws reach beyond 4σ (P(|z| > 4) ≈ 6.3e-5, ~19 expected).
      expect(Math.max(m.max, -m.min)).toBeGreaterThan(4 * Math.sqrt(target));
      break;
    case 'truncated':
    case 'truncated_uncorrected': {
      // Corrected: σ = √v / 0.8796…, so the variance after truncation is v; uncorrected: σ = √v. Never beyond 2σ.
      const sigma = family === 'truncated' ? Math.sqrt(target) / Math.sqrt(TRUNC_VAR) : Math.sqrt(target);
      expect(m.max).toBeLessThanOrEqual(Math.fround(2 * sigma) * (1 + 1e-7));
      expect(m.min).toBeGreaterThanOrEqual(-Math.fround(2 * sigma) * (1 + 1e-7));
      expect(m.max).toBeGreaterThan(2 * sigma * 0.999);
      expect(m.min).toBeLessThan(-2 * sigma * 0.999);
      break;
    }
  }
}

describe('initialisers', () => {
  it('the truncation constant is the std of a standard normal truncated to ±2', () => {
    expect(TRUNC_VAR).toBeCloseTo(0.7737413, 6);
    expect(TRUNCATION_STD).toBeCloseTo(Math.sqrt(TRUNC_VAR), 12);
  });

  it('covers every initialiser name', () => {
    const tested = new Set([
      ...Object.keys(TEXTBOOK), 'zeros', 'ones', 'constant', 'random_normal', 'random_uniform', 'truncated_normal',
      'orthogonal', 'identity', 'variance_scaling', 'delta_orthogonal',
    ]);
    expect([...tested].sort()).toEqual([...INITIALIZER_NAMES].sort());
  });

  it('pytorch_default biases are U[±1/√fan_in] of the weight\'s fan_in (PyTorch\'s Linear/Conv2d reset_parameters)', () => {
    const spec = normalizeInitializer('pytorch_default', 'network.init.bias');
    // A conv2d 3×3 with 7 input channels: fan_in 63, whatever the 5000 bias entries.
    const b = initialize(spec, 1, 5000, new Rng(7), true, { fanIn: 63, fanOut: 9 * 5000 });
    const bound = 1 / Math.sqrt(63);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...b.map(Math.abs))).toBeGreaterThan(0.99 * bound);
  });

  it('conv fans: he_normal on a 3×3 conv from 8 to 16 channels has variance 2/(3·3·8); glorot_uniform 2/(9·(8 + 16))', () => {
    const he = initialize(normalizeInitializer('he_normal', 'w'), 72, 16, new Rng(3), false, { fanIn: 72, fanOut: 144 });
    const glorot = initialize(normalizeInitializer('glorot_uniform', 'w'), 72, 16, new Rng(3), false, { fanIn: 72, fanOut: 144 });
    const variance = (w: Float32Array): number => w.reduce((s, v) => s + v * v, 0) / w.length;
    // 1152 draws: the sample variance is within ±3·√(2/n) ≈ 12.5% of the truth.
    expectClose(variance(he), 2 / 72, 0.125, 'he_normal conv variance');
    expectClose(variance(glorot), 2 / (72 + 144), 0.125, 'glorot_uniform conv variance');
  });

  it('delta_orthogonal: an orthogonal c_in × c_out matrix at the centre tap, zeros at every other tap (Xiao et al. 2018)', () => {
    for (const [cin, cout] of [[4, 6], [6, 4], [5, 5]] as const) {
      const k = deltaOrthogonal(3, cin, cout, 1, new Rng(11));
      const at = (i: number, j: number, a: number, b: number): number => k[((i * 3 + j) * cin + a) * cout + b]!;
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
        if (i === 1 && j === 1) continue;
        for (let a = 0; a < cin; a++) for (let b = 0; b < cout; b++) expect(at(i, j, a, b)).toBe(0);
      }
      // The shorter side is orthonormal: M Mᵀ = I (c_in ≤ c_out) or Mᵀ M = I.
      const n = Math.min(cin, cout);
      for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) {
        let dot = 0;
        for (let r = 0; r < Math.max(cin, cout); r++) dot += cin <= cout ? at(1, 1, p, r) * at(1, 1, q, r) : at(1, 1, r, p) * at(1, 1, r, q);
        expect(Math.abs(dot - (p === q ? 1 : 0)), `${cin}×${cout}: ⟨${p}, ${q}⟩ = ${dot}`).toBeLessThan(1e-6);
      }
    }
  });

  describe.each(Object.entries(TEXTBOOK))('%s on a 600 x 500 layer', (name, book) => {
    it('matches initializerMoments and the textbook variance, with the right support', () => {
      const spec = normalizeInitializer(name, 'network.init.weights');
      const w = initialize(spec, ROWS, COLS, new Rng(101));
      expect(w).toHaveLength(ROWS * COLS);
      checkScaling(w, spec, book.variance(ROWS, COLS), book.family, name);
    });
  });

  describe('variance_scaling, every mode and distribution (scale 1.7)', () => {
    const modes = { fan_in: ROWS, fan_out: COLS, fan_avg: (ROWS + COLS) / 2 } as const;
    const families = {
      uniform: 'uniform', normal: 'normal', truncated_normal: 'truncated', truncated_normal_uncorrected: 'truncated_uncorrected',
    } as const;
    const combos = Object.entries(modes).flatMap(([mode, fan]) =>
      Object.entries(families).map(([distribution, family]) => [`${mode} ${distribution}`, mode, fan, distribution, family] as const));
    it.each(combos)('%s', (what, mode, fan, distribution, family) => {
      const spec = normalizeInitializer({ name: 'variance_scaling', scale: 1.7, mode: mode as 'fan_in', distribution: distribution as 'normal' }, 'w');
      const w = initialize(spec, ROWS, COLS, new Rng(202));
      checkScaling(w, spec, 1.7 / fan, family, what);
    });

    it('defaults to scale 1, fan_in, Keras\' corrected truncated normal', () => {
      const spec = normalizeInitializer('variance_scaling', 'w');
      expect(spec).toEqual({ name: 'variance_scaling', scale: 1, mode: 'fan_in', distribution: 'truncated_normal' });
      checkScaling(initialize(spec, ROWS, COLS, new Rng(5)), spec, 1 / ROWS, 'truncated', 'default variance_scaling');
    });
  });

  it('a bias vector uses its length as fan_in and fan_out', () => {
    const n = 200000;
    const he = normalizeInitializer('he_normal', 'b');
    expectMoments(momentsOf(initialize(he, 1, n, new Rng(3), true)), 0, 2 / n, 'he_normal bias');
    const glorot = normalizeInitializer('glorot_uniform', 'b');
    const w = initialize(glorot, 1, n, new Rng(4), true);
    expectMoments(momentsOf(w), 0, 2 / (n + n), 'glorot_uniform bias');
    expect(momentsOf(w).max).toBeLessThanOrEqual(Math.fround(Math.sqrt(3 / n)));
  });

  it('random_normal, random_uniform and truncated_normal have the requested mean, spread and support', () => {
    const rn = normalizeInitializer({ name: 'random_normal', mean: 0.3, stddev: 0.2 }, 'w');
    const mrn = momentsOf(initialize(rn, ROWS, COLS, new Rng(11)));
    expect(initializerMoments(rn, ROWS, COLS)).toEqual({ mean: 0.3, variance: 0.2 ** 2 });
    expectMoments(mrn, 0.3, 0.04, 'random_normal');

    const ru = normalizeInitializer({ name: 'random_uniform', min: -0.2, max: 0.6 }, 'w');
    const mru = momentsOf(initialize(ru, ROWS, COLS, new Rng(12)));
    const ruMoments = initializerMoments(ru, ROWS, COLS)!;
    expectClose(ruMoments.mean, 0.2, 1e-12, 'random_uniform mean');
    expectClose(ruMoments.variance, 0.8 ** 2 / 12, 1e-12, 'random_uniform variance');
    expectMoments(mru, 0.2, 0.8 ** 2 / 12, 'random_uniform');
    expect(mru.min).toBeGreaterThanOrEqual(Math.fround(-0.2));
    expect(mru.max).toBeLessThanOrEqual(Math.fround(0.6));
    expect(mru.min).toBeLessThan(-0.2 + 0.001);
    expect(mru.max).toBeGreaterThan(0.6 - 0.001);

    // Keras' TruncatedNormal: stddev is the pre-truncation σ; values beyond mean ± 2σ are redrawn.
    const tn = normalizeInitializer({ name: 'truncated_normal', mean: 0.1, stddev: 0.5 }, 'w');
    const mtn = momentsOf(initialize(tn, ROWS, COLS, new Rng(13)));
    const tnMoments = initializerMoments(tn, ROWS, COLS)!;
    expectClose(tnMoments.variance, 0.25 * TRUNC_VAR, 1e-9, 'truncated_normal variance');
    expect(tnMoments.mean).toBe(0.1);
    expectMoments(mtn, 0.1, 0.25 * TRUNC_VAR, 'truncated_normal');
    expect(mtn.min).toBeGreaterThanOrEqual(Math.fround(0.1 - 1) - 1e-7);
    expect(mtn.max).toBeLessThanOrEqual(Math.fround(0.1 + 1) + 1e-7);
    expect(mtn.max).toBeGreaterThan(1.1 - 0.001);

    // Defaults: Keras' N(0, 0.05) and U[−0.05, 0.05].
    expect(normalizeInitializer('random_normal', 'w')).toEqual({ name: 'random_normal', mean: 0, stddev: 0.05 });
    expect(normalizeInitializer('random_uniform', 'w')).toEqual({ name: 'random_uniform', min: -0.05, max: 0.05 });
  });

  it('zeros, ones and constant are exact', () => {
    const cases: [InitializerInput, number][] = [['zeros', 0], ['ones', 1], [{ name: 'constant', value: -1.25 }, -1.25], ['constant', 0]];
    for (const [input, value] of cases) {
      const spec = normalizeInitializer(input, 'w');
      const w = initialize(spec, 37, 23, new Rng(1));
      expect(w).toHaveLength(37 * 23);
      expect(w.every((v) => v === value), JSON.stringify(input)).toBe(true);
      expect(initializerMoments(spec, 37, 23)).toEqual({ mean: value, variance: 0 });
    }
  });

  describe('orthogonal', () => {
    /** Gram matrix of the columns (tall) or rows (wide) of a row-major rows × cols matrix. */
    function gram(w: Float32Array, rows: number, cols: number, ofColumns: boolean): Float64Array {
      const k = ofColumns ? cols : rows;
      const n = ofColumns ? rows : cols;
      const at = (vec: number, j: number): number => (ofColumns ? w[j * cols + vec]! : w[vec * cols + j]!);
      const g = new Float64Array(k * k);
      const v = new Float64Array(n);
      const u = new Float64Array(n);
      for (let a = 0; a < k; a++) {
        for (let j = 0; j < n; j++) v[j] = at(a, j);
        for (let b = a; b < k; b++) {
          for (let j = 0; j < n; j++) u[j] = at(b, j);
          let s = 0;
          for (let j = 0; j < n; j++) s += v[j]! * u[j]!;
          g[a * k + b] = s;
          g[b * k + a] = s;
        }
      }
      return g;
    }

    const shapes: [string, number, number, boolean][] = [
      ['tall 600 x 500: WᵀW = gain²·I', 600, 500, true],
      ['wide 500 x 600: WWᵀ = gain²·I', 500, 600, false],
      ['square 200 x 200: both', 200, 200, true],
    ];
    it.each(shapes)('%s (gain 1.3)', (_what, rows, cols, ofColumns) => {
      const gain = 1.3;
      const spec = normalizeInitializer({ name: 'orthogonal', gain }, 'w');
      const w = initialize(spec, rows, cols, new Rng(77));
      const k = Math.min(rows, cols);
      const checks = rows === cols ? [true, false] : [ofColumns];
      for (const cols_ of checks) {
        const g = gram(w, rows, cols, cols_);
        let worst = 0;
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) worst = Math.max(worst, Math.abs(g[a * k + b]! - (a === b ? gain * gain : 0)));
        expect(worst, 'max |Gram − gain²·I|').toBeLessThan(1e-4);
      }
      // Σw² = min(r, c)·gain² exactly, so the per-entry second moment is gain²/max(r, c) = initializerMoments.
      const moments = initializerMoments(spec, rows, cols)!;
      expectClose(moments.variance, (gain * gain) / Math.max(rows, cols), 1e-12, 'orthogonal variance formula');
      let sq = 0;
      for (const v of w) sq += v * v;
      expectClose(sq / (rows * cols), moments.variance, 1e-5, 'orthogonal Σw²/n');
      expect(moments.mean).toBe(0);
      expectMoments(momentsOf(w), 0, moments.variance, 'orthogonal');
    });

    it('defaults to gain 1', () => {
      const spec = normalizeInitializer('orthogonal', 'w');
      expect(spec.gain).toBe(1);
      const w = initialize(spec, 30, 20, new Rng(1));
      let sq = 0;
      for (const v of w) sq += v * v;
      expectClose(sq, 20, 1e-5, 'Σw² of a 30 x 20 orthogonal matrix');
    });
  });

  it('identity is eye × gain for square, tall and wide matrices', () => {
    for (const [rows, cols] of [[6, 6], [7, 5], [5, 7]] as const) {
      for (const input of [{ name: 'identity', gain: 2.5 }, 'identity'] as InitializerInput[]) {
        const spec = normalizeInitializer(input, 'w');
        const gain = typeof input === 'string' ? 1 : 2.5;
        const w = initialize(spec, rows, cols, new Rng(1));
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expect(w[i * cols + j]).toBe(i === j ? gain : 0);
      }
    }
    expect(initializerMoments(normalizeInitializer('identity', 'w'), 5, 5)).toBeNull();
  });

  it('the same seed gives identical draws, a different seed different ones', () => {
    for (const name of INITIALIZER_NAMES) {
      const spec = normalizeInitializer(name, 'w');
      const a = initialize(spec, 40, 30, new Rng(9));
      const b = initialize(spec, 40, 30, new Rng(9));
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), name).toBe(true);
      if (!['zeros', 'ones', 'constant', 'identity'].includes(name)) {
        const c = initialize(spec, 40, 30, new Rng(10));
        expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer)), name).toBe(false);
      }
    }
    // A sequence of draws from one generator is reproducible too.
    const seq = (): Float32Array[] => {
      const rng = new Rng(123);
      return INITIALIZER_NAMES.map((n) => initialize(normalizeInitializer(n, 'w'), 8, 6, rng));
    };
    expect(seq()).toEqual(seq());
  });

  it('invalid parameters give a SpecError naming the field', () => {
    const cases: [InitializerInput, string][] = [
      [{ name: 'he_normal', gain: 2 } as InitializerInput, 'network.init.weights.gain'],
      [{ name: 'bogus' }, 'network.init.weights.name'],
      ['bogus', 'network.init.weights.name'],
      [{ name: 'random_normal', stddev: -1 }, 'network.init.weights.stddev'],
      [{ name: 'truncated_normal', mean: Number.NaN }, 'network.init.weights.mean'],
      [{ name: 'random_uniform', min: 1, max: 0 }, 'network.init.weights.max'],
      [{ name: 'constant', value: Number.POSITIVE_INFINITY }, 'network.init.weights.value'],
      [{ name: 'constant', stddev: 1 }, 'network.init.weights.stddev'],
      [{ name: 'orthogonal', gain: Number.NaN }, 'network.init.weights.gain'],
      [{ name: 'variance_scaling', scale: 0 }, 'network.init.weights.scale'],
      [{ name: 'variance_scaling', mode: 'fan_sideways' as 'fan_in' }, 'network.init.weights.mode'],
      [{ name: 'variance_scaling', distribution: 'cauchy' as 'normal' }, 'network.init.weights.distribution'],
      [{ name: 'zeros', value: 0 }, 'network.init.weights.value'],
    ];
    for (const [input, field] of cases) {
      let caught: unknown = null;
      try {
        normalizeInitializer(input, 'network.init.weights');
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(input)).toBeInstanceOf(SpecError);
      expect((caught as SpecError).field, JSON.stringify(input)).toBe(field);
      expect((caught as SpecError).message).toContain(field);
    }
    // Through the whole spec: the bias field is named as such.
    let caught: unknown = null;
    try {
      normalizeSpec({
        network: { depth: 2, width: 3, init: { bias: { name: 'he_uniform', gain: 2 } } },
        data: { source: 'inline', x: [[1], [2]], y: [[0], [1]] },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SpecError);
    expect((caught as SpecError).field).toBe('network.init.bias.gain');
    // Names are case-insensitive.
    expect(normalizeInitializer('He_Normal', 'w')).toEqual({ name: 'he_normal' });
  });
});
