// Mean-field theory against known closed forms and the reference table (gradient-flow-science.md §3, §7).
import { describe, it, expect } from 'vitest';
import {
  chi1, criticalSigmaW2, depthScale, derivativeMeanSquare, fixedPoint, gaussianExpectation, meanOf, meanSquare, phaseOf,
  scalarActivation, uniformTheory,
} from '../../src/engine/theory/mean-field.js';
import { theoryReport } from '../../src/engine/theory/report.js';
import { ACTIVATION_NAMES, type ActivationName, type ActivationSpec } from '../../src/engine/model/activations.js';
import { TRUNCATION_STD } from '../../src/engine/model/initializers.js';

const act = (name: ActivationName, alpha?: number): ReturnType<typeof scalarActivation> & object =>
  scalarActivation(alpha === undefined ? { name } : { name, alpha })!;

describe('Gaussian expectations', () => {
  it('integrate moments of z exactly and the ReLU kink without bias', () => {
    expect(gaussianExpectation(() => 1, 3)).toBeCloseTo(1, 12);
    expect(gaussianExpectation((x) => x * x, 2.5)).toBeCloseTo(2.5, 9);
    expect(gaussianExpectation((x) => x ** 4, 1)).toBeCloseTo(3, 8);
    expect(gaussianExpectation((x) => (x > 0 ? 1 : 0), 1)).toBeCloseTo(0.5, 12);
    expect(gaussianExpectation((x) => Math.abs(x), 1)).toBeCloseTo(Math.sqrt(2 / Math.PI), 10);
  });

  it('has a finite recursion for every elementwise activation of the catalogue', () => {
    for (const name of ACTIVATION_NAMES.filter((n) => n !== 'softmax')) {
      const t = uniformTheory({ name } as ActivationSpec, 1, 0, 10);
      expect(Number.isFinite(t.chi1), name).toBe(true);
      expect(t.layers.every((l) => Number.isFinite(l.q) && Number.isFinite(l.chi1)), name).toBe(true);
    }
    expect(scalarActivation({ name: 'softmax' })).toBeNull();
  });
});

describe('χ₁ closed forms', () => {
  it('ReLU: χ₁ = σ_w²/2 at every q (1 for He, ½ for Glorot/LeCun)', () => {
    for (const q of [1e-6, 0.3, 1, 50]) {
      expect(chi1(act('relu'), 2, q)).toBeCloseTo(1, 10);
      expect(chi1(act('relu'), 1, q)).toBeCloseTo(0.5, 10);
      expect(chi1(act('relu'), 1 / 3, q)).toBeCloseTo(1 / 6, 10);
    }
    expect(uniformTheory({ name: 'relu' }, 2, 0, 30).phase).toBe('critical');
    expect(uniformTheory({ name: 'relu' }, 1, 0, 30).depthScale).toBeCloseTo(1 / Math.log(2), 8);
  });

  it('linear: χ₁ = σ_w²; leaky ReLU: σ_w²(1 + a²)/2', () => {
    for (const s of [0.5, 1, 1.7]) expect(chi1(act('linear'), s, 0.8)).toBeCloseTo(s, 10);
    expect(chi1(act('leaky_relu', 0.2), 2, 1)).toBeCloseTo((2 * (1 + 0.04)) / 2, 10);
  });

  it('tanh near the origin: χ₁ → σ_w² (φ\'(0) = 1)', () => {
    for (const s of [0.5, 1, 2]) expect(chi1(act('tanh'), s, 1e-8)).toBeCloseTo(s, 6);
    // And it falls below σ_w² as q grows (saturation).
    expect(chi1(act('tanh'), 1, 1)).toBeLessThan(1);
  });
});

describe('reference table (§3)', () => {
  const cases: { name: ActivationName; sW: number; sB: number; qStar: number | null; chi: number; tolQ?: number }[] = [
    { name: 'tanh', sW: 1, sB: 0.0025, qStar: 0.0371, chi: 0.934 },
    { name: 'tanh', sW: 1.5, sB: 0, qStar: 0.287, chi: 1.041 },
    { name: 'tanh', sW: 2, sB: 0, qStar: 0.618, chi: 1.106 },
    { name: 'tanh', sW: 0.5, sB: 0, qStar: 0, chi: 0.5 },
    { name: 'sigmoid', sW: 1, sB: 0, qStar: 0.265, chi: 0.0557 },
    { name: 'sigmoid', sW: 16, sB: 0, qStar: 5.86, chi: 0.399 },
    { name: 'selu', sW: 1, sB: 0, qStar: 1, chi: 1.072 },
  ];
  for (const c of cases) {
    it(`${c.name} σ_w² = ${c.sW}, σ_b² = ${c.sB}: q* = ${c.qStar}, χ₁ = ${c.chi}`, () => {
      const t = uniformTheory({ name: c.name }, c.sW, c.sB, 50);
      if (c.qStar === 0) {
        expect(t.fixedPoint.kind).toBe('decays_to_zero');
        expect(t.fixedPoint.qStar).toBe(0);
      } else {
        expect(t.fixedPoint.kind).toBe('converges');
        expect(Math.abs(t.fixedPoint.qStar! - c.qStar!)).toBeLessThanOrEqual(0.002 * c.qStar! + 5e-4);
      }
      // Three significant figures, as the table gives them.
      expect(Math.abs(t.chi1 - c.chi)).toBeLessThanOrEqual(0.0006 * Math.max(1, c.chi) + 0.0005 * c.chi);
    });
  }

  it('SELU: χ₁ = λ²[½ + α²e²Φ(−2)] ≈ 1.072 at q* = 1, and q^l creeps toward 1 (§7)', () => {
    const lambda = 1.0507009873554805;
    const alpha = 1.6732632423543772;
    const phiMinus2 = 0.022750131948179195;
    const closed = lambda ** 2 * (0.5 + alpha ** 2 * Math.exp(2) * phiMinus2);
    expect(chi1(act('selu'), 1, 1)).toBeCloseTo(closed, 6);
    // From q = 2 and from 0.5 (reference: 1.72, 1.53, 1.40 … and 0.58, 0.65, 0.71 …).
    const from2 = uniformTheory({ name: 'selu' }, 1, 0, 4, 2).layers.map((l) => l.q);
    expect(from2.slice(1).map((q) => Number(q.toFixed(2)))).toEqual([1.72, 1.53, 1.40]);
    const fromHalf = uniformTheory({ name: 'selu' }, 1, 0, 4, 0.5).layers.map((l) => l.q);
    expect(fromHalf.slice(1).map((q) => Number(q.toFixed(2)))).toEqual([0.58, 0.65, 0.71]);
  });

  it('tanh σ_w² = 1, σ_b = 0: q decays as a power law and the layer-local χ₁ creeps to 1', () => {
    const t = uniformTheory({ name: 'tanh' }, 1, 0, 101);
    // q^1 = 1 here; the reference's l counts map applications from q = 1 (its l = 10 is our layer 11).
    expect(t.layers[10]!.q).toBeCloseTo(0.052, 3);
    expect(t.layers[50]!.q).toBeCloseTo(0.010, 3);
    expect(t.layers[100]!.q).toBeCloseTo(0.005, 3);
    expect(t.layers[10]!.chi1).toBeCloseTo(0.911, 2);
    expect(t.layers[100]!.chi1).toBeCloseTo(0.990, 3);
    expect(t.fixedPoint.kind).toBe('decays_to_zero');
    expect(t.chi1).toBeCloseTo(1, 6);
  });

  it('tfjs uncorrected truncated normals (realised σ_w² = 0.7737 × nominal)', () => {
    const f = TRUNCATION_STD ** 2;
    expect(f).toBeCloseTo(0.7737, 4);
    expect(uniformTheory({ name: 'relu' }, 2 * f, 0, 10).chi1).toBeCloseTo(0.774, 3);
    const sig = uniformTheory({ name: 'sigmoid' }, f, 0, 10);
    expect(sig.fixedPoint.qStar!).toBeCloseTo(0.202, 3);
    expect(sig.chi1).toBeCloseTo(0.044, 3);
    const selu = uniformTheory({ name: 'selu' }, f, 0, 10);
    expect(selu.fixedPoint.qStar!).toBeCloseTo(0.284, 3);
    // The reference table prints 1.032; adaptive quadrature (scipy.integrate.quad) gives 1.031458 at
    // q* = 0.284376, which is what we match: the table's last digit is rounded up.
    expect(selu.chi1).toBeCloseTo(1.031458, 5);
  });
});

describe('fixed points, phases and the critical initialisation', () => {
  it('ReLU-like activations with σ_b² = 0 are scale-free', () => {
    expect(fixedPoint(act('relu'), 2, 0, 1).kind).toBe('scale_free');
    expect(fixedPoint(act('linear'), 1, 0, 3).kind).toBe('scale_free');
    expect(fixedPoint(act('relu'), 2, 0.1, 1).kind).toBe('grows_without_bound');
  });

  it('phases and depth scales', () => {
    expect(phaseOf(0.5)).toBe('ordered');
    expect(phaseOf(1.005)).toBe('critical');
    expect(phaseOf(1.106)).toBe('chaotic');
    expect(depthScale(1)).toBe(Infinity);
    expect(depthScale(0.0557)).toBeCloseTo(0.346, 3);
  });

  it('the predicted norms follow the layer-local χ₁', () => {
    const t = uniformTheory({ name: 'sigmoid' }, 1, 0, 12);
    expect(t.predictedBackpropRelative[11]).toBe(1);
    expect(t.predictedBackpropRelative[10]! / t.predictedBackpropRelative[11]!).toBeCloseTo(Math.sqrt(t.layers[10]!.chi1), 10);
    expect(t.predictedSlope).toBeCloseTo(0.5 * Math.log(0.0557), 2);
  });

  it('critical σ_w²: 2 for ReLU (He), 2/(1+a²) for leaky ReLU, 1 for tanh and linear; χ₁ = 1 at it', () => {
    expect(criticalSigmaW2({ name: 'relu' })).toBeCloseTo(2, 8);
    expect(criticalSigmaW2({ name: 'leaky_relu', alpha: 0.1 })).toBeCloseTo(2 / 1.01, 6);
    expect(criticalSigmaW2({ name: 'linear' })).toBeCloseTo(1, 8);
    expect(criticalSigmaW2({ name: 'tanh' })).toBeCloseTo(1, 4);
    const s = criticalSigmaW2({ name: 'sigmoid' })!;
    expect(s).toBeGreaterThan(16);
    expect(uniformTheory({ name: 'sigmoid' }, s, 0, 5).chi1).toBeCloseTo(1, 3);
  });
});

// ---------------------------------------------------------------------------------------------------
// Closed forms, derived here independently of src/: with s = √q, z ~ N(0, 1), Φ and ϕ its cdf and pdf,
//   relu:         E[φ²] = q/2,           E[φ'²] = 1/2,            E[φ] = s/√(2π)
//   leaky_relu a: E[φ²] = q(1 + a²)/2,    E[φ'²] = (1 + a²)/2,     E[φ] = s(1 − a)/√(2π)
//   linear:       E[φ²] = q,              E[φ'²] = 1,              E[φ] = 0
//   relu6, c = 6/s (∫₀ᶜ z²ϕ = Φ(c) − ½ − cϕ(c)):
//                 E[φ²] = q(Φ(c) − ½ − cϕ(c)) + 36 Φ(−c),  E[φ'²] = Φ(c) − ½ = ½ erf(c/√2),
//                 E[φ] = s(ϕ(0) − ϕ(c)) + 6 Φ(−c)
//   hard_sigmoid = clip((x + 3)/6, 0, 1), c = 3/s:
//                 E[φ²] = [q(2Φ(c) − 1 − 2cϕ(c)) + 9(2Φ(c) − 1)]/36 + Φ(−c),  E[φ'²] = erf(c/√2)/36,  E[φ] = ½
//   elu α (E[e^{tz}; z < 0] = e^{t²/2} Φ(−t)):
//                 E[φ'²] = ½ + α² e^{2q} Φ(−2s),  E[φ²] = q/2 + α²(e^{2q}Φ(−2s) − 2e^{q/2}Φ(−s) + ½),
//                 E[φ] = s/√(2π) + α(e^{q/2}Φ(−s) − ½)
//   selu = λ·elu(α_selu): λ², λ², λ times the elu values.
// e^{t²/2}Φ(−t) = ½ erfcx(t/√2) is evaluated without overflow by erfc's continued fraction.

/** erf by its all-positive series (no cancellation): erf x = 2/√π e^{−x²} Σ 2ⁿx^{2n+1}/(1·3···(2n+1)), for |x| ≤ 3. */
function erfSeries(x: number): number {
  let term = x, sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/** e^{x²} erfc(x) for x ≥ 0: the continued fraction 1/(√π (x + ½/(x + 1/(x + (3/2)/(x + …))))) for x ≥ 2. */
function erfcx(x: number): number {
  if (x < 2) return Math.exp(x * x) * (1 - erfSeries(x));
  let t = x;
  for (let k = 400; k >= 1; k--) t = x + k / 2 / t;
  return 1 / (Math.sqrt(Math.PI) * t);
}

const erf64 = (x: number): number => (Math.abs(x) <= 3 ? erfSeries(x) : Math.sign(x) * (1 - Math.exp(-x * x) * erfcx(Math.abs(x))));
/** Φ(−t) for t ≥ 0 with full relative accuracy in the tail. */
const upperTail = (t: number): number => 0.5 * Math.exp(-t * t / 2) * erfcx(t / Math.SQRT2);
/** e^{t²/2} Φ(−t), t ≥ 0. */
const scaledTail = (t: number): number => 0.5 * erfcx(t / Math.SQRT2);
const pdf = (t: number): number => Math.exp(-t * t / 2) / Math.sqrt(2 * Math.PI);

interface Moments { f2: number; df2: number; f: number }

const CLOSED_FORMS: Record<string, (q: number) => Moments> = {
  relu: (q) => ({ f2: q / 2, df2: 0.5, f: Math.sqrt(q) * pdf(0) }),
  'leaky_relu(0.2)': (q) => ({ f2: (q * 1.04) / 2, df2: 1.04 / 2, f: Math.sqrt(q) * 0.8 * pdf(0) }),
  linear: (q) => ({ f2: q, df2: 1, f: 0 }),
  relu6: (q) => {
    const s = Math.sqrt(q), c = 6 / s;
    const inner = 0.5 * erf64(c / Math.SQRT2); // Φ(c) − ½
    return { f2: q * (inner - c * pdf(c)) + 36 * upperTail(c), df2: inner, f: s * (pdf(0) - pdf(c)) + 6 * upperTail(c) };
  },
  hard_sigmoid: (q) => {
    const c = 3 / Math.sqrt(q);
    const mass = erf64(c / Math.SQRT2); // 2Φ(c) − 1
    return { f2: (q * (mass - 2 * c * pdf(c)) + 9 * mass) / 36 + upperTail(c), df2: mass / 36, f: 0.5 };
  },
  'elu(1.5)': (q) => eluMoments(q, 1.5, 1),
  selu: (q) => eluMoments(q, 1.6732632423543772, 1.0507009873554805),
};

function eluMoments(q: number, alpha: number, lambda: number): Moments {
  const s = Math.sqrt(q);
  const twice = scaledTail(2 * s); // e^{2q} Φ(−2s)
  const once = scaledTail(s); // e^{q/2} Φ(−s)
  return {
    f2: lambda ** 2 * (q / 2 + alpha ** 2 * (twice - 2 * once + 0.5)),
    df2: lambda ** 2 * (0.5 + alpha ** 2 * twice),
    f: lambda * (s * pdf(0) + alpha * (once - 0.5)),
  };
}

const specOf = (label: string): ActivationSpec => {
  const m = /^(\w+)\(([\d.]+)\)$/.exec(label);
  return m ? { name: m[1] as ActivationName, alpha: Number(m[2]) } : { name: label as ActivationName };
};

describe('quadrature against closed forms (kinks at 0, ±3/√q, 6/√q on cell edges)', () => {
  it('the independent erf agrees with tabulated values', () => {
    // Abramowitz & Stegun 7.1 / DLMF: erf(0.5), erf(1), erf(2), erfc(3), erfc(5).
    expect(erf64(0.5)).toBeCloseTo(0.5204998778130465, 15);
    expect(erf64(1)).toBeCloseTo(0.8427007929497149, 15);
    expect(erf64(2)).toBeCloseTo(0.9953222650189527, 15);
    expect(Math.abs(Math.exp(-9) * erfcx(3) / 2.209049699858544e-5 - 1)).toBeLessThan(1e-13);
    expect(Math.abs(Math.exp(-25) * erfcx(5) / 1.5374597944280349e-12 - 1)).toBeLessThan(1e-13);
    // The two branches of erfcx meet at 2.
    expect(Math.abs(erfcx(2 - 1e-12) / erfcx(2) - 1)).toBeLessThan(1e-12);
  });

  const QS = [1e-4, 1e-2, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 100, 1e3, 1e4, 1e6];
  for (const [label, closed] of Object.entries(CLOSED_FORMS)) {
    it(`${label}: E[φ²], E[φ'²] and E[φ] to 1e-11 relative for q from 1e-4 to 1e6`, () => {
      const a = scalarActivation(specOf(label))!;
      const problems: string[] = [];
      for (const q of QS) {
        const want = closed(q);
        // Relative to the scale of each integrand (E[φ] may be 0; its scale is the RMS √E[φ²]).
        const got = { f2: meanSquare(a, q), df2: derivativeMeanSquare(a, q), f: meanOf(a, q) };
        const scale = { f2: want.f2, df2: want.df2, f: Math.sqrt(want.f2) };
        for (const k of ['f2', 'df2', 'f'] as const) {
          const err = Math.abs(got[k] - want[k]) / scale[k];
          if (!(err < 1e-11)) problems.push(`q = ${q} ${k}: ${got[k]} vs closed form ${want[k]} (relative ${err.toExponential(2)})`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('the cases of the report: hard_sigmoid χ₁ = 20/36·erf(3/√40) at σ_w² = q = 20, relu6 χ₁ = erf(6/√(2q)) at σ_w² = 2', () => {
    expect(Math.abs(chi1(act('hard_sigmoid'), 20, 20) - (20 / 36) * erf64(3 / Math.sqrt(40)))).toBeLessThan(1e-12);
    expect(chi1(act('hard_sigmoid'), 20, 20)).toBeCloseTo(0.27648, 5);
    for (const q of [0.558, 5, 30, 80]) expect(Math.abs(chi1(act('relu6'), 2, q) - erf64(6 / Math.sqrt(2 * q)))).toBeLessThan(1e-12);
  });

  it('every declared breakpoint is a kink or jump of φ\' or φ\'\', and φ\' and φ\'\' are continuous everywhere else on [−10, 10]', () => {
    // Steps well above the noise of gelu's scalar erf (a fit, absolute error 1.2e-7) in second differences.
    const h = 1e-3;
    for (const name of ACTIVATION_NAMES.filter((n) => n !== 'softmax')) {
      const a = scalarActivation({ name } as ActivationSpec)!;
      const d2 = (x: number): number => (a.df(x + 1e-4) - a.df(x - 1e-4)) / 2e-4;
      const jumps = (x: number): boolean => Math.abs(a.df(x + 1e-7) - a.df(x - 1e-7)) > 1e-3 || Math.abs(d2(x + 1e-3) - d2(x - 1e-3)) > 1e-2;
      for (const b of a.breakpoints) expect(jumps(b), `${name} at its breakpoint ${b}`).toBe(true);
      for (let x = -10; x <= 10; x += h / 2) {
        if (a.breakpoints.some((b) => Math.abs(x - b) < 3 * h)) continue;
        const dPrime = Math.abs(a.df(x + h) - a.df(x - h)) / (2 * h);
        const dSecond = Math.abs(d2(x + h) - d2(x - h)) / (2 * h);
        if (dPrime > 10 || dSecond > 50) throw new Error(`${name} is not smooth near x = ${x} (|φ''| ≈ ${dPrime}, |φ'''| ≈ ${dSecond}) but declares no breakpoint there`);
      }
    }
  });
});

describe('fixed points: only resolved signs of map(q) − q count', () => {
  /** map(q) − q for relu6 with σ_w² = 2, σ_b² = 0 from the closed form: −2·E[(qz² − 36); z > 6/√q]. */
  const relu6Excess = (q: number): number => {
    const c = 6 / Math.sqrt(q);
    return -2 * (q * (upperTail(c) + c * pdf(c)) - 36 * upperTail(c));
  };

  it('relu6, σ_w² = 2, σ_b² = 0: map(q) < q for every q > 0 (closed form), so q decays to 0 from any q0, 40 included', () => {
    for (let q = 0.05; q < 1e4; q *= 1.5) expect(relu6Excess(q), `q = ${q}`).toBeLessThan(0);
    const a = act('relu6');
    for (const q0 of [80, 40, 3, 0.7, 0.3, 1e-3]) {
      const fp = fixedPoint(a, 2, 0, q0);
      expect(fp.kind, `q0 = ${q0}: ${fp.note}`).toBe('decays_to_zero');
      expect(fp.qStar).toBe(0);
      expect(fp.note).toMatch(/marginal/);
    }
    // What GET /v1/theory?activation=relu6&sigmaW2=2&sigmaB2=0&q0=40 answers (q¹ = 80).
    const report = theoryReport({ activation: 'relu6', sigmaW2: 2, sigmaB2: 0, q0: 40 });
    expect(report.fixedPointKind).toBe('decays_to_zero');
    expect(report.qStar).toBe(0);
  });

  it('genuine fixed points are still found, from above, from below and from q* itself', () => {
    const cases: { name: ActivationName; sW: number; sB: number; qStar: number }[] = [
      { name: 'tanh', sW: 2, sB: 0, qStar: 0.618 },
      { name: 'sigmoid', sW: 1, sB: 0, qStar: 0.265 },
      { name: 'selu', sW: 1, sB: 0, qStar: 1 },
    ];
    for (const c of cases) {
      const exact = fixedPoint(act(c.name), c.sW, c.sB, 1).qStar!;
      expect(Math.abs(exact - c.qStar), `${c.name}: ${exact}`).toBeLessThanOrEqual(0.002 * c.qStar);
      for (const q0 of [1e-6, 0.1, exact, 3, 1e3]) {
        const fp = fixedPoint(act(c.name), c.sW, c.sB, q0);
        expect(fp.kind, `${c.name} from ${q0}`).toBe('converges');
        expect(Math.abs(fp.qStar! - exact) / exact, `${c.name} from ${q0}`).toBeLessThan(1e-8);
      }
    }
  });

  it('relu6 with σ_w² = 2.5 has a genuine q*: map(q*) = q* by the closed form', () => {
    const fp = fixedPoint(act('relu6'), 2.5, 0, 1);
    expect(fp.kind).toBe('converges');
    const q = fp.qStar!;
    const closedMap = 2.5 * CLOSED_FORMS['relu6']!(q).f2;
    expect(Math.abs(closedMap - q) / q).toBeLessThan(1e-9);
  });
});
