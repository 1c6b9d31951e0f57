// The activation catalogue: tfjs ops vs scalar forms vs textbook definitions, derivatives vs autodiff and finite differences.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readOut } from '../support/read.js';
import { useTestBackend } from '../backends.js';
import {
  ACTIVATION_NAMES, activation, normalizeActivation, type ActivationSpec,
} from '../../src/engine/model/activations.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { SpecError } from '../../src/engine/common/errors.js';

// Constants from Klambauer et al. (2017), typed in independently of the engine.
const LAMBDA = 1.0507009873554804934193349852946;
const ALPHA = 1.6732632423543772848170429916717;

/** Standard normal CDF by composite Simpson integration of the pdf from 0 (independent of any erf fit). */
function normalCdf(x: number): number {
  const n = 4000;
  const h = x / n;
  const pdf = (t: number): number => Math.exp(-0.5 * t * t) / Math.sqrt(2 * Math.PI);
  let s = pdf(0) + pdf(x);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * pdf(i * h);
  return 0.5 + (s * h) / 3;
}

const logistic = (x: number): number => 1 / (1 + Math.exp(-x));
const lnOnePlusExp = (x: number): number => (x > 0 ? x + Math.log(1 + Math.exp(-x)) : Math.log(1 + Math.exp(x)));

/** Textbook definitions, written without reference to the engine. */
function textbook(spec: ActivationSpec): (x: number) => number {
  const a = spec.alpha;
  switch (spec.name) {
    case 'linear': return (x) => x;
    case 'sigmoid': return logistic;
    case 'tanh': return (x) => (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1);
    case 'relu': return (x) => Math.max(0, x);
    case 'leaky_relu': return (x) => (x >= 0 ? x : a! * x);
    case 'elu': return (x) => (x >= 0 ? x : a! * (Math.exp(x) - 1));
    case 'selu': return (x) => LAMBDA * (x >= 0 ? x : ALPHA * (Math.exp(x) - 1));
    case 'gelu': return (x) => x * normalCdf(x);
    case 'swish': case 'silu': return (x) => x * logistic(x);
    case 'softplus': return lnOnePlusExp;
    case 'softsign': return (x) => x / (1 + Math.abs(x));
    case 'hard_sigmoid': return (x) => Math.min(Math.max(x + 3, 0), 6) / 6;
    case 'relu6': return (x) => Math.min(Math.max(x, 0), 6);
    case 'mish': return (x) => x * Math.tanh(lnOnePlusExp(x));
    case 'softmax': throw new Error('softmax is not elementwise');
  }
}

const KINKS = [0, -3, 3, 6];

/** -8..8 in steps of 0.1733 from an offset chosen so no point is within 1e-3 of a kink; float32-exact. */
const GRID = Array.from({ length: 93 }, (_, k) => Math.fround(-7.9817 + 0.1733 * k)).filter((x) => x <= 8);

/** Every elementwise activation, with non-default alphas as well as the defaults. */
const SPECS: ActivationSpec[] = [
  ...ACTIVATION_NAMES.filter((n) => n !== 'softmax').map((n) => normalizeActivation(n, 'act')),
  normalizeActivation({ name: 'leaky_relu', alpha: 0.3 }, 'act'),
  normalizeActivation({ name: 'elu', alpha: 2 }, 'act'),
  normalizeActivation({ name: 'elu', alpha: 0.5 }, 'act'),
];
const label = (s: ActivationSpec): string => (s.alpha === undefined ? s.name : `${s.name}(${s.alpha})`);

/** |actual − expected| ≤ abs + rel·|expected|, elementwise, with a message naming the first bad point. */
function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, abs: number, what: string, xs: number[] = GRID): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    expect(Math.abs(a - e), `${what} at x=${xs[i]}: ${a} vs ${e}`).toBeLessThanOrEqual(abs + rel * Math.abs(e));
  }
}

function applyAt(spec: ActivationSpec, xs: number[]): Promise<Float32Array> {
  return readOut(() => activation(spec).apply(tf.tensor1d(xs)));
}
function derivativeAt(spec: ActivationSpec, xs: number[]): Promise<Float32Array> {
  return readOut(() => activation(spec).derivative!(tf.tensor1d(xs)));
}
function autodiffAt(spec: ActivationSpec, xs: number[]): Promise<Float32Array> {
  const act = activation(spec);
  return readOut(() => tf.grad((x: tf.Tensor) => tf.sum(act.apply(x)))(tf.tensor1d(xs)));
}

function specErrorOf(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return err as SpecError;
  }
  throw new Error('expected a SpecError');
}

describe('activations', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('the grid covers -8..8 and stays clear of every kink', async () => {
    expect(GRID[0]!).toBeLessThan(-7.9);
    expect(GRID[GRID.length - 1]!).toBeGreaterThan(7.9);
    for (const x of GRID) for (const k of KINKS) expect(Math.abs(x - k)).toBeGreaterThan(1e-3);
  });

  describe.each(SPECS.map((s) => [label(s), s] as const))('%s', (_name, spec) => {
    const act = activation(spec);

    it('has scalar forms and a tensor derivative', async () => {
      expect(act.f).toBeTypeOf('function');
      expect(act.df).toBeTypeOf('function');
      expect(act.derivative).toBeTypeOf('function');
    });

    it('scalar f equals the textbook definition', async () => {
      const ref = textbook(spec);
      // gelu's scalar erf is a fit with absolute error below 1.2e-7; everything else is exact up to rounding.
      const abs = spec.name === 'gelu' ? 1e-6 : 1e-13;
      expectAllClose(GRID.map(act.f!), GRID.map(ref), 1e-12, abs, 'f vs textbook');
    });

    it('tfjs apply equals the scalar f', async () => {
      expectAllClose((await applyAt(spec, GRID)), GRID.map(act.f!), 1e-5, 1e-6, 'apply vs f');
    });

    it('tensor derivative equals tf.grad of apply and the scalar df', async () => {
      const d = (await derivativeAt(spec, GRID));
      expectAllClose(d, (await autodiffAt(spec, GRID)), 1e-5, 1e-6, 'derivative vs tf.grad(apply)');
      expectAllClose(d, GRID.map(act.df!), 1e-5, 1e-6, 'derivative vs df');
    });

    it('scalar df equals a float64 central difference of the textbook definition', async () => {
      const ref = textbook(spec);
      const h = 1e-6;
      const fd = GRID.map((x) => (ref(x + h) - ref(x - h)) / (2 * h));
      // gelu's textbook form integrates numerically: its difference quotient carries ~1e-8 of noise.
      expectAllClose(GRID.map(act.df!), fd, 1e-7, spec.name === 'gelu' ? 1e-6 : 1e-8, 'df vs finite difference');
    });

    it('peakDerivative is the largest |df| (within 1e-3 of the maximum over a 1e-4 grid on [-10, 10])', async () => {
      let peak = 0;
      for (let i = -100000; i <= 100000; i++) peak = Math.max(peak, Math.abs(act.df!(i * 1e-4)));
      expect(Math.abs(act.peakDerivative - peak), `peakDerivative ${act.peakDerivative} vs grid max ${peak}`).toBeLessThan(1e-3);
    });

    it('is finite with a finite gradient at ±100 and ±1000 (no exp overflow leaking into NaN)', async () => {
      const xs = [-1000, -100, 100, 1000];
      const values = (await applyAt(spec, xs));
      const grads = (await autodiffAt(spec, xs));
      const derivs = (await derivativeAt(spec, xs));
      for (let i = 0; i < xs.length; i++) {
        expect(Number.isFinite(values[i]!), `apply(${xs[i]}) = ${values[i]}`).toBe(true);
        expect(Number.isFinite(grads[i]!), `grad at ${xs[i]} = ${grads[i]}`).toBe(true);
        expect(Number.isFinite(derivs[i]!), `derivative at ${xs[i]} = ${derivs[i]}`).toBe(true);
        expect(Number.isFinite(act.f!(xs[i]!)) && Number.isFinite(act.df!(xs[i]!))).toBe(true);
        // Far from the origin the tensor forms still agree with the scalar ones.
        expect(Math.abs(values[i]! - act.f!(xs[i]!))).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(act.f!(xs[i]!)));
        expect(Math.abs(grads[i]! - act.df!(xs[i]!))).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(act.df!(xs[i]!)));
      }
    });
  });

  it('known values', async () => {
    const f = (s: string | { name: string; alpha?: number }, x: number): number => activation(normalizeActivation(s, 'a')).f!(x);
    const df = (s: string | { name: string; alpha?: number }, x: number): number => activation(normalizeActivation(s, 'a')).df!(x);
    const t = async (s: string | { name: string; alpha?: number }, x: number): Promise<number> => (await applyAt(normalizeActivation(s, 'a'), [x]))[0]!;
    const g = async (s: string | { name: string; alpha?: number }, x: number): Promise<number> => (await autodiffAt(normalizeActivation(s, 'a'), [x]))[0]!;
    const cases: [string | { name: string; alpha?: number }, number, number][] = [
      ['selu', 1, 1.0507009873554805],
      ['selu', -1, 1.7580993408473766 * (Math.exp(-1) - 1)],
      ['gelu', 1, 0.841344746],
      ['gelu', -1, -0.158655254],
      ['mish', 1, 0.865098388],
      ['swish', 1, 0.7310585786],
      ['silu', -2, -2 * 0.1192029220],
      ['hard_sigmoid', 0, 0.5],
      ['hard_sigmoid', 4, 1],
      ['hard_sigmoid', -4, 0],
      [{ name: 'elu', alpha: 2 }, -1, 2 * (Math.exp(-1) - 1)],
      ['elu', -1, Math.exp(-1) - 1],
      ['leaky_relu', -2, -0.02],
      [{ name: 'leaky_relu', alpha: 0.2 }, -2, -0.4],
      ['softplus', 0, Math.LN2],
      ['softsign', 1, 0.5],
      ['relu6', 7.5, 6],
      ['sigmoid', 0, 0.5],
      ['tanh', 1, 0.7615941559557649],
    ];
    for (const [s, x, expected] of cases) {
      const what = `${JSON.stringify(s)}(${x})`;
      expect(Math.abs(f(s, x) - expected), `scalar ${what}`).toBeLessThan(2e-7);
      expect(Math.abs((await t(s, x)) - expected), `tfjs ${what}`).toBeLessThan(1e-6);
    }
    // Slopes: hard_sigmoid 1/6 in (−3, 3) and 0 outside; selu λ on the right, λα·e^x on the left; gelu Φ(1) + φ(1).
    for (const x of [-2.5, 0, 1, 2.9]) {
      expect(df('hard_sigmoid', x)).toBe(1 / 6);
      expect((await g('hard_sigmoid', x))).toBeCloseTo(1 / 6, 6);
    }
    expect(df('hard_sigmoid', 3.5)).toBe(0);
    expect((await g('hard_sigmoid', -3.5))).toBe(0);
    expect(df('selu', 1)).toBeCloseTo(1.0507009873554805, 12);
    expect(df('selu', -1)).toBeCloseTo(1.7580993408473766 * Math.exp(-1), 12);
    expect((await g('selu', -1))).toBeCloseTo(1.7580993408473766 * Math.exp(-1), 5);
    expect(df('gelu', 1)).toBeCloseTo(0.841344746 + 0.241970725, 6);
    expect(df({ name: 'elu', alpha: 2 }, -1)).toBeCloseTo(2 * Math.exp(-1), 12);
    expect((await g({ name: 'elu', alpha: 2 }, -1))).toBeCloseTo(2 * Math.exp(-1), 5);
    expect(df('swish', 1)).toBeCloseTo(0.7310585786 + 0.7310585786 * (1 - 0.7310585786), 9);
  });

  it('elu and selu at large positive input: the identity branch, with no NaN from exp overflow', async () => {
    for (const spec of [normalizeActivation('elu', 'a'), normalizeActivation({ name: 'elu', alpha: 2 }, 'a'), normalizeActivation('selu', 'a')]) {
      const scale = spec.name === 'selu' ? LAMBDA : 1;
      const alpha = spec.name === 'selu' ? ALPHA : spec.alpha!;
      const [v100, vNeg] = (await applyAt(spec, [100, -100]));
      const [g100, gNeg] = (await autodiffAt(spec, [100, -100]));
      expect(v100).toBeCloseTo(100 * scale, 3);
      expect(g100).toBeCloseTo(scale, 5);
      expect(vNeg).toBeCloseTo(-alpha * scale, 5);
      expect(Math.abs(gNeg!)).toBeLessThan(1e-30);
      // Inside a network-shaped graph too (gradient through a matMul).
      const grad = await readOut(() => {
        const w = tf.tensor2d([[50, -50]]);
        return tf.grad((ww: tf.Tensor) => tf.sum(activation(spec).apply(tf.matMul(tf.tensor2d([[2]]), ww as tf.Tensor2D))))(w);
      });
      expect(grad[0]).toBeCloseTo(2 * scale, 5);
      expect(Number.isFinite(grad[1]!)).toBe(true);
      expect(Math.abs(grad[1]!)).toBeLessThan(1e-30);
    }
  });

  it('softmax: not elementwise, rows are exp(x)/Σexp(x)', async () => {
    const act = activation(normalizeActivation('softmax', 'a'));
    expect(act.f).toBeNull();
    expect(act.df).toBeNull();
    expect(act.derivative).toBeNull();
    const rows = [[1, 2, 3], [-5, 0, 5], [100, 100, 99]];
    const flat = await readOut(() => act.apply(tf.tensor2d(rows)));
    const out = rows.map((r, i) => Array.from(flat.subarray(i * r.length, (i + 1) * r.length)));
    rows.forEach((row, i) => {
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, j) => expect(Math.abs(out[i]![j]! - v / s)).toBeLessThan(1e-6));
    });
  });

  it('fills in default alphas and accepts any case', async () => {
    expect(normalizeActivation('leaky_relu', 'a')).toEqual({ name: 'leaky_relu', alpha: 0.01 });
    expect(normalizeActivation('ELU', 'a')).toEqual({ name: 'elu', alpha: 1 });
    expect(normalizeActivation({ name: 'ReLU' }, 'a')).toEqual({ name: 'relu' });
    expect(activation(normalizeActivation('leaky_relu', 'a')).f!(-3)).toBeCloseTo(-0.03, 15);
  });

  it('unknown names and misplaced parameters give a SpecError naming the field', async () => {
    let err = specErrorOf(() => normalizeActivation('bogus', 'network.activation'));
    expect(err.field).toBe('network.activation');
    expect(err.message).toContain('bogus');
    err = specErrorOf(() => normalizeActivation({ name: 'relu', alpha: 0.1 }, 'network.outputActivation'));
    expect(err.field).toBe('network.outputActivation.alpha');
    err = specErrorOf(() => normalizeActivation({ name: 'elu', alpha: Number.NaN }, 'network.activation'));
    expect(err.field).toBe('network.activation.alpha');

    const spec = (network: Record<string, unknown>): unknown =>
      normalizeSpec({ network: { depth: 3, width: 2, ...network }, data: { source: 'inline', x: [[1], [2]], y: [[0], [1]] } } as never);
    err = specErrorOf(() => spec({ activation: ['relu', 'swishy'] }));
    expect(err.field).toBe('network.activation[1]');
    err = specErrorOf(() => spec({ activation: 'nope' }));
    expect(err.field).toBe('network.activation');
    err = specErrorOf(() => spec({ outputActivation: 'nope' }));
    expect(err.field).toBe('network.outputActivation');
    err = specErrorOf(() => spec({ activation: ['tanh', 'softmax'] }));
    expect(err.field).toBe('network.activation[1]');
  });
});
