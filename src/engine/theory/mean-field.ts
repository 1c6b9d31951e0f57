// Mean-field (infinite-width) predictions of signal and gradient propagation: q map, fixed point q*, χ₁, depth scale.
import { activation, type ActivationSpec } from '../model/activations.js';

/*
 * Gaussian expectations E_z[g(√q z)] by 8-point Gauss-Legendre on the pieces of [−Z, Z] between these
 * edges (z-space):
 * - a uniform grid of width 0.2 with z = 0 on it;
 * - every breakpoint b of φ and φ' (the activation declares them, activations.ts) at z = b/√q, so no kink
 *   or jump ever falls inside a piece (there it would cost O(h²): 4e-3 for hard_sigmoid at ±3/√q);
 * - x = ±2^k for k ≥ −4 at z = ±2^k/√q: for large q the activation's features shrink toward z = 0 like
 *   1/√q, and these edges keep a fixed number of nodes per octave of x there.
 * Accuracy, measured against a 12-point rule on pieces 100x smaller with the same edges, for every
 * elementwise activation of the catalogue, E[φ²], E[φ'²] and E[φ] at q from 1e-4 to 1e10: relative error
 * (to E|g|) below 4e-12; and against closed forms (relu, leaky_relu, linear, relu6, hard_sigmoid, elu,
 * selu) below 1e-11 over the same range (test/engine/theory.test.ts). About 1 000–1 400 nodes per call.
 * Gauss-Hermite would be more accurate for smooth φ and much worse for kinked ones.
 */
const Z_MAX = 12;
const GRID_STEP = 0.2;
const GRID_CELLS = Math.round((2 * Z_MAX) / GRID_STEP);
/** The smallest x of the octave ladder: below it every activation of the catalogue is smooth or polynomial. */
const LADDER_START = 1 / 16;

/** Nodes and weights of n-point Gauss-Legendre on [−1, 1] (Newton on the Legendre recurrence). */
function gaussLegendre(n: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(n), w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1, p1 = z;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * z * p1 - (k - 1) * p0) / k];
      dp = (n * (z * p1 - p0)) / (z * z - 1);
      const dz = p1 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-16) break;
    }
    x[i] = z;
    w[i] = 2 / ((1 - z * z) * dp * dp);
  }
  return { x, w };
}
const GL = gaussLegendre(8);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** The piece edges for one q, sorted (duplicates give empty pieces, which add nothing). */
function edgesFor(s: number, breakpoints: readonly number[]): Float64Array {
  const extra: number[] = [];
  for (const b of breakpoints) if (Math.abs(b) < Z_MAX * s) extra.push(b / s);
  for (let x = LADDER_START; x < Z_MAX * s; x *= 2) extra.push(x / s, -x / s);
  const edges = new Float64Array(GRID_CELLS + 1 + extra.length);
  for (let c = 0; c <= GRID_CELLS; c++) edges[c] = (c - GRID_CELLS / 2) * GRID_STEP;
  edges.set(extra, GRID_CELLS + 1);
  return edges.sort();
}

/**
 * E_z[g(√q z)] for z ~ N(0, 1); q ≥ 0. `breakpoints`: the x where g is not smooth (for g built from an
 * activation, its `breakpoints`). Normalised by the rule's own total weight, so E[1] = 1 exactly (the
 * tails beyond |z| = 12 weigh 4e-33).
 */
export function gaussianExpectation(g: (x: number) => number, q: number, breakpoints: readonly number[] = []): number {
  if (!(q > 0)) return g(0);
  const s = Math.sqrt(q);
  const edges = edgesFor(s, breakpoints);
  let sum = 0, total = 0;
  for (let e = 0; e + 1 < edges.length; e++) {
    const a = edges[e]!, b = edges[e + 1]!;
    if (!(b > a)) continue;
    const half = 0.5 * (b - a), mid = 0.5 * (a + b);
    for (let k = 0; k < GL.x.length; k++) {
      const z = mid + half * GL.x[k]!;
      const w = half * GL.w[k]! * INV_SQRT_2PI * Math.exp(-0.5 * z * z);
      sum += w * g(s * z);
      total += w;
    }
  }
  return sum / total;
}

/** The scalar pieces of an activation that the recursions need. */
export interface ScalarActivation {
  spec: ActivationSpec;
  f: (x: number) => number;
  df: (x: number) => number;
  /** φ(cx) = c·φ(x) for c > 0: with σ_b² = 0 every q is then a fixed point or none is. */
  homogeneous: boolean;
  /** Where φ or φ' is not smooth (activations.ts): the quadrature's cell edges. */
  breakpoints: readonly number[];
}

export function scalarActivation(spec: ActivationSpec): ScalarActivation | null {
  const act = activation(spec);
  if (!act.f || !act.df) return null;
  return { spec, f: act.f, df: act.df, homogeneous: ['linear', 'relu', 'leaky_relu'].includes(spec.name), breakpoints: act.breakpoints };
}

/** E[φ(√q z)²]: the second moment a layer hands on. */
export function meanSquare(act: ScalarActivation, q: number): number {
  return gaussianExpectation((x) => act.f(x) ** 2, q, act.breakpoints);
}

/** E[φ(√q z)]: the mean a layer hands on (non-zero for ReLU, sigmoid, …). */
export function meanOf(act: ScalarActivation, q: number): number {
  return gaussianExpectation(act.f, q, act.breakpoints);
}

/** E[φ'(√q z)²]: the per-unit backward gain before the weights. */
export function derivativeMeanSquare(act: ScalarActivation, q: number): number {
  return gaussianExpectation((x) => act.df(x) ** 2, q, act.breakpoints);
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
 * Smallest |map(q) − q| / (map(q) + q) whose sign fixedPoint trusts: 100x the quadrature's accuracy
 * (4e-12, see gaussianExpectation). Below it the map is the identity as far as we can compute, and q^l
 * moves by less than 1e-9 of itself per layer. relu6 with σ_w² = 2, σ_b² = 0 is such a map for all
 * q below ~0.7: map(q) = q − 2·E[(qz² − 36)·1{z > 6/√q}], a difference of 1e-15 at q = 0.56, and the
 * sign of its rounding used to pass for a fixed point there.
 */
export const MAP_RESOLUTION = 1e-9;

interface MapProbe {
  q: number;
  /** map(q) − q */
  f: number;
  /** Whether the sign of f is resolved (|f| > MAP_RESOLUTION · (map(q) + q)). */
  trusted: boolean;
}

/**
 * The fixed point the iteration q^{l+1} = map(q^l) reaches from q0. The map is increasing in q for
 * every activation in the catalogue (E[φ(√q z)²] grows with q), so iterates move monotonically toward
 * the nearest root of map(q) − q in the direction of its sign at q0: walk there geometrically, then bisect.
 * Only resolved signs count (MAP_RESOLUTION): the walk goes on through a stretch where the map is the
 * identity to rounding, and a root is a change between two resolved signs.
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
  const probe = (q: number): MapProbe => {
    const m = lengthMap(act, sigmaW2, sigmaB2, q);
    return { q, f: m - q, trusted: Math.abs(m - q) > MAP_RESOLUTION * (m + q) };
  };
  const start = probe(Math.min(Math.max(q0, Q_ZERO), Q_INFINITE));
  if (start.trusted) return walk(act, sigmaW2, probe, start);
  // q0 sits where the map is the identity to rounding: its resolved neighbours say where iterates go.
  const below = firstResolved(probe, start.q, -1), above = firstResolved(probe, start.q, 1);
  if (below.probe && below.probe.f > 0 && above.probe && above.probe.f < 0) return bisect(probe, below.probe, above.probe);
  if (below.probe && below.probe.f < 0) return walk(act, sigmaW2, probe, below.probe, start.q);
  if (above.probe && above.probe.f > 0) return walk(act, sigmaW2, probe, above.probe);
  if (!below.probe) return decaysToZero(act, sigmaW2, start.q);
  return { qStar: start.q, kind: 'converges', note: `map(q) = q to within ${MAP_RESOLUTION} from q^0 = ${fmt(start.q)} upward: q^l stays there` };
}

/** The first probe with a resolved sign beyond `from`, stepping ×2 (dir 1) or ÷2 (dir −1); none past the limits. */
function firstResolved(probe: (q: number) => MapProbe, from: number, dir: 1 | -1): { probe: MapProbe | null } {
  for (let q = from; ;) {
    q = dir > 0 ? q * 2 : q / 2;
    if (q > Q_INFINITE || q < Q_ZERO) return { probe: null };
    const p = probe(q);
    if (p.trusted) return { probe: p };
  }
}

/** From a resolved probe, step in the direction of its sign until the sign resolves the other way or a limit is passed. */
function walk(act: ScalarActivation, sigmaW2: number, probe: (q: number) => MapProbe, from: MapProbe, unresolvedFrom?: number): FixedPoint {
  const dir = from.f > 0 ? 1 : -1;
  let last = from;
  // Where the map stopped being resolved on the way (the start of a stretch the walk goes on through).
  let unresolved: number | undefined = unresolvedFrom;
  for (let q = from.q; ;) {
    q = dir > 0 ? q * 2 : q / 2;
    if (q > Q_INFINITE) {
      return { qStar: Infinity, kind: 'grows_without_bound', note: `q^l grows without bound (beyond ${Q_INFINITE.toExponential(0)})` };
    }
    if (q < Q_ZERO) return decaysToZero(act, sigmaW2, unresolved);
    const p = probe(q);
    if (!p.trusted) {
      unresolved ??= p.q;
      continue;
    }
    if (Math.sign(p.f) !== dir) return bisect(probe, last, p);
    last = p;
    unresolved = undefined;
  }
}

/** Geometric bisection between two resolved probes of opposite sign. */
function bisect(probe: (q: number) => MapProbe, a: MapProbe, b: MapProbe): FixedPoint {
  let lo = a.q < b.q ? a : b;
  let hi = a.q < b.q ? b : a;
  for (let k = 0; k < 80 && hi.q / lo.q > 1 + 1e-11; k++) {
    const mid = probe(Math.sqrt(lo.q * hi.q));
    if (Math.sign(mid.f) === Math.sign(lo.f)) lo = mid;
    else hi = mid;
  }
  return { qStar: Math.sqrt(lo.q * hi.q), kind: 'converges', note: 'q^l converges to q*' };
}

function decaysToZero(act: ScalarActivation, sigmaW2: number, unresolvedBelow?: number): FixedPoint {
  // Near q = 0 the map is q → σ_w²·E[φ'(√q z)²]·q (+ σ_b²): its slope there decides the rate.
  const slope0 = chi1(act, sigmaW2, Q_ZERO);
  const marginal = Math.abs(slope0 - 1) < 1e-9;
  const slow = unresolvedBelow !== undefined
    ? `; below q ≈ ${fmt(unresolvedBelow)} the map differs from the identity by less than ${MAP_RESOLUTION} of q per layer, so over any practical depth q^l stays near where it enters that range`
    : '';
  return {
    qStar: 0,
    kind: 'decays_to_zero',
    note: (marginal
      ? 'q^l decays to 0 slowly, not geometrically (σ_w²·E[φ\'²] → 1 as q → 0: marginal), so χ₁^(l) creeps toward its limit'
      : 'q^l decays to 0') + slow,
  };
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
