// Mean-field (infinite-width) predictions of signal and gradient propagation: q map, fixed point q*, χ₁, depth scale.
import { activation, type ActivationSpec } from './activations.js';

/*
 * Gaussian expectations E_z[g(√q z)] by two-point Gauss-Legendre on each of CELLS equal cells of
 * [−Z, Z]. z = 0 is a cell boundary, so the kink of ReLU-like activations (and SELU's jump in φ')
 * never falls inside a cell and costs no accuracy: smooth pieces converge as h⁴ (≈1e-10 here).
 * Other kinks (relu6, hard_sigmoid at ±c/√q) cost O(h²) in one cell, below 1e-5 relative.
 * Gauss-Hermite would be more accurate for smooth φ and much worse for kinked ones.
 */
const Z_MAX = 12;
const CELLS = 3000;
const NODES = 2 * CELLS;
const Z: Float64Array = new Float64Array(NODES);
const W: Float64Array = new Float64Array(NODES);
{
  const h = (2 * Z_MAX) / CELLS;
  const offset = h / (2 * Math.sqrt(3));
  let total = 0;
  for (let c = 0; c < CELLS; c++) {
    const mid = -Z_MAX + (c + 0.5) * h;
    for (const [k, z] of [[2 * c, mid - offset], [2 * c + 1, mid + offset]] as const) {
      Z[k] = z;
      W[k] = (Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)) * (h / 2);
      total += W[k]!;
    }
  }
  // Renormalise so that E[1] = 1 exactly (the truncated tails weigh < 1e-32).
  for (let i = 0; i < NODES; i++) W[i]! /= total;
}

/** E_z[g(√q z)] for z ~ N(0, 1); q ≥ 0. */
export function gaussianExpectation(g: (x: number) => number, q: number): number {
  if (!(q > 0)) return g(0);
  const s = Math.sqrt(q);
  let sum = 0;
  for (let i = 0; i < NODES; i++) sum += W[i]! * g(s * Z[i]!);
  return sum;
}

/** The scalar pieces of an activation that the recursions need. */
export interface ScalarActivation {
  spec: ActivationSpec;
  f: (x: number) => number;
  df: (x: number) => number;
  /** φ(cx) = c·φ(x) for c > 0: with σ_b² = 0 every q is then a fixed point or none is. */
  homogeneous: boolean;
}

export function scalarActivation(spec: ActivationSpec): ScalarActivation | null {
  const act = activation(spec);
  if (!act.f || !act.df) return null;
  return { spec, f: act.f, df: act.df, homogeneous: ['linear', 'relu', 'leaky_relu'].includes(spec.name) };
}

/** E[φ(√q z)²]: the second moment a layer hands on. */
export function meanSquare(act: ScalarActivation, q: number): number {
  return gaussianExpectation((x) => act.f(x) ** 2, q);
}

/** E[φ(√q z)]: the mean a layer hands on (non-zero for ReLU, sigmoid, …). */
export function meanOf(act: ScalarActivation, q: number): number {
  return gaussianExpectation(act.f, q);
}

/** E[φ'(√q z)²]: the per-unit backward gain before the weights. */
export function derivativeMeanSquare(act: ScalarActivation, q: number): number {
  return gaussianExpectation((x) => act.df(x) ** 2, q);
}

/** q → σ_w² E[φ(√q z)²] + σ_b²: the forward length map. */
export function lengthMap(act: ScalarActivation, sigmaW2: number, sigmaB2: number, q: number): number {
  return sigmaW2 * meanSquare(act, q) + sigmaB2;
}

/** Smallest and largest q the fixed-point search distinguishes from 0 and ∞. */
export const Q_ZERO = 1e-12;
export const Q_INFINITE = 1e10;

export interface FixedPoint {
  /** q*: 0 when q^l decays to 0, Infinity when it grows without bound, null when every q is fixed (scale-free). */
  qStar: number | null;
  /** 'converges' (a finite positive q*), 'decays_to_zero', 'grows_without_bound', or 'scale_free'. */
  kind: 'converges' | 'decays_to_zero' | 'grows_without_bound' | 'scale_free';
  note: string;
}

/**
 * The fixed point the iteration q^{l+1} = map(q^l) reaches from q0. The map is increasing in q for
 * every activation in the catalogue (E[φ(√q z)²] grows with q), so iterates move monotonically toward
 * the nearest root of map(q) − q in the direction of its sign at q0: walk there geometrically, then bisect.
 */
export function fixedPoint(act: ScalarActivation, sigmaW2: number, sigmaB2: number, q0: number): FixedPoint {
  if (act.homogeneous && sigmaB2 === 0) {
    const c = sigmaW2 * meanSquare(act, 1);
    return {
      qStar: null,
      kind: 'scale_free',
      note: `${act.spec.name} is positively homogeneous and σ_b² = 0, so q^l = ${fmt(c)}^l · q^0: ${
        Math.abs(c - 1) < 1e-9 ? 'every q is a fixed point' : c < 1 ? 'q decays geometrically to 0' : 'q grows geometrically'
      }; χ₁ does not depend on q`,
    };
  }
  const F = (q: number): number => lengthMap(act, sigmaW2, sigmaB2, q) - q;
  let start = Math.min(Math.max(q0, Q_ZERO), Q_INFINITE);
  const f0 = F(start);
  if (f0 === 0) return { qStar: start, kind: 'converges', note: 'q^0 is already a fixed point' };
  const dir = f0 > 0 ? 1 : -1;
  const step = 2;
  for (let i = 0; i < 400; i++) {
    const next = dir > 0 ? start * step : start / step;
    if (next > Q_INFINITE) {
      return { qStar: Infinity, kind: 'grows_without_bound', note: `q^l grows without bound (beyond ${Q_INFINITE.toExponential(0)})` };
    }
    if (next < Q_ZERO) {
      const slope0 = sigmaW2 * act.df(0) ** 2;
      return {
        qStar: 0,
        kind: 'decays_to_zero',
        note: Math.abs(slope0 - 1) < 1e-9
          ? 'q^l decays to 0 slowly, as a power law (σ_w²·φ\'(0)² = 1: marginal), so χ₁^(l) creeps toward its limit'
          : 'q^l decays to 0',
      };
    }
    if (Math.sign(F(next)) !== dir) {
      let lo = Math.min(start, next);
      let hi = Math.max(start, next);
      for (let k = 0; k < 80 && hi / lo > 1 + 1e-11; k++) {
        const mid = Math.sqrt(lo * hi);
        if (Math.sign(F(mid)) === Math.sign(F(lo))) lo = mid;
        else hi = mid;
      }
      return { qStar: Math.sqrt(lo * hi), kind: 'converges', note: 'q^l converges to q*' };
    }
    start = next;
  }
  return { qStar: start, kind: 'converges', note: 'q^l converges to q*' };
}

/** χ₁ = σ_w² E[φ'(√q z)²], with q = 0 and q = ∞ taken as limits. */
export function chi1(act: ScalarActivation, sigmaW2: number, q: number | null): number {
  const at = q === null ? 1 : Math.min(Math.max(q, Q_ZERO), Q_INFINITE);
  return sigmaW2 * derivativeMeanSquare(act, at);
}

export type Phase = 'ordered' | 'critical' | 'chaotic';

/** Within this relative distance of χ₁ = 1 a network is called critical. */
export const CRITICAL_TOLERANCE = 0.01;

export function phaseOf(chi: number): Phase {
  if (Math.abs(chi - 1) <= CRITICAL_TOLERANCE) return 'critical';
  return chi < 1 ? 'ordered' : 'chaotic';
}

/** ξ = 1/|ln χ₁|: layers per e-fold of gradient variance (Infinity at χ₁ = 1). */
export function depthScale(chi: number): number {
  const l = Math.abs(Math.log(chi));
  // Quadrature leaves χ₁ = 1 cases (ReLU + He, linear) a few ulps off: no scale within 1e-9.
  return l < 1e-9 ? Infinity : 1 / l;
}

export interface UniformTheory {
  activation: ActivationSpec;
  sigmaW2: number;
  sigmaB2: number;
  q0: number;
  fixedPoint: FixedPoint;
  /** χ₁ at q*: the asymptotic per-layer multiplier of ‖δ‖² toward the input. */
  chi1: number;
  phase: Phase;
  /** ξ_∇ = 1/|ln χ₁|: layers per e-fold of ‖δ‖² (vanishing in the ordered phase, growth in the chaotic one). */
  depthScale: number;
  /** ½ ln χ₁: predicted d ln‖δ‖ per layer toward the input (the convention of fitLogSlope). */
  predictedSlope: number;
  /** Per layer l = 1..depth: q^l and the layer-local χ₁^(l) = σ_w² E[φ'(√q^l z)²]. */
  layers: { layer: number; q: number; chi1: number }[];
  /** ‖δ^l‖ / ‖δ^depth‖ predicted from the layer-local χ₁, input side first (last entry 1). */
  predictedBackpropRelative: number[];
}

/**
 * The textbook recursion for `depth` identical layers: q^1 = σ_w² q0 + σ_b² (q0 = mean square of
 * the input), q^{l+1} = σ_w² E[φ(√q^l z)²] + σ_b², and ‖δ^l‖² = χ₁^(l) ‖δ^{l+1}‖².
 */
export function uniformTheory(spec: ActivationSpec, sigmaW2: number, sigmaB2: number, depth: number, q0 = 1): UniformTheory {
  const act = scalarActivation(spec);
  if (!act) throw new Error(`${spec.name} is not elementwise: no mean-field recursion`);
  const layers: { layer: number; q: number; chi1: number }[] = [];
  let q = sigmaW2 * q0 + sigmaB2;
  for (let l = 1; l <= depth; l++) {
    layers.push({ layer: l, q, chi1: chi1(act, sigmaW2, q) });
    q = lengthMap(act, sigmaW2, sigmaB2, q);
  }
  const fp = fixedPoint(act, sigmaW2, sigmaB2, sigmaW2 * q0 + sigmaB2);
  const c = chi1(act, sigmaW2, fp.qStar);
  const rel = new Array<number>(depth).fill(1);
  for (let l = depth - 2; l >= 0; l--) rel[l] = rel[l + 1]! * Math.sqrt(layers[l]!.chi1);
  return {
    activation: spec,
    sigmaW2,
    sigmaB2,
    q0,
    fixedPoint: fp,
    chi1: c,
    phase: phaseOf(c),
    depthScale: depthScale(c),
    predictedSlope: 0.5 * Math.log(c),
    layers,
    predictedBackpropRelative: rel,
  };
}

/**
 * The σ_w² that puts an activation at χ₁ = 1 at its own fixed point (given σ_b² and the input's
 * mean square): the variance-preserving ("critical") initialisation. Closed forms where they exist
 * (ReLU 2, leaky ReLU 2/(1+a²), linear 1); a bisection on ln σ_w² otherwise. Null when no σ_w² in
 * [1e-3, 1e4] reaches χ₁ = 1.
 */
export function criticalSigmaW2(spec: ActivationSpec, sigmaB2 = 0, q0 = 1): number | null {
  const key = `${spec.name}:${spec.alpha ?? ''}:${sigmaB2}:${q0}`;
  const cached = criticalCache.get(key);
  if (cached !== undefined) return cached;
  const value = solveCritical(spec, sigmaB2, q0);
  if (criticalCache.size > 256) criticalCache.clear();
  criticalCache.set(key, value);
  return value;
}

const criticalCache = new Map<string, number | null>();

function solveCritical(spec: ActivationSpec, sigmaB2: number, q0: number): number | null {
  const act = scalarActivation(spec);
  if (!act) return null;
  if (act.homogeneous && sigmaB2 === 0) return 1 / derivativeMeanSquare(act, 1);
  const chiAt = (s: number): number => chi1(act, s, fixedPoint(act, s, sigmaB2, s * q0 + sigmaB2).qStar);
  let lo = Math.log(1e-3);
  let hi = Math.log(1e4);
  const fLo = chiAt(Math.exp(lo)) - 1;
  const fHi = chiAt(Math.exp(hi)) - 1;
  if (Math.sign(fLo) === Math.sign(fHi)) return null;
  // 26 halvings of a width-16 interval in ln σ_w²: 2.4e-7 relative, far below what an initialiser needs.
  for (let k = 0; k < 26; k++) {
    const mid = (lo + hi) / 2;
    if (Math.sign(chiAt(Math.exp(mid)) - 1) === Math.sign(fLo)) lo = mid;
    else hi = mid;
  }
  return Math.exp((lo + hi) / 2);
}

function fmt(x: number): string {
  return Number(x.toPrecision(4)).toString();
}
