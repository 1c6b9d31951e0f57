// Pascanu et al. 2013's conditions for a recurrent layer (issue 14): the spectral radius and the largest
// singular value of its recurrent matrix beside 1/γ, γ = sup|φ′| (1 for tanh, 1/4 for sigmoid). With
// h_t = φ(W x_t + U h_{t−1}), ∂h_t/∂h_{t−1} = diag(φ′)·Uᵀ, so ‖∂h_T/∂h_t‖ ≤ (γ·σ₁)^(T−t): σ₁ < 1/γ is
// sufficient for vanishing, and σ₁ > 1/γ necessary for exploding (not sufficient).
import { activation } from '../model/activations.js';
import type { RecurrentNode } from '../spec/recurrent-types.js';
import { GATE_ORDER } from '../spec/recurrent-types.js';

/** Largest units for which the spectral radius is computed (repeated squaring of a units × units matrix). */
export const MAX_SPECTRAL_UNITS = 256;

/** Relative band around 1/γ read as on the boundary (neither condition). */
const BOUNDARY = 1e-4;

export interface RecurrentMatrixTheory {
  /** The gate block of U examined: simple_rnn's whole U, lstm's candidate g, gru's candidate n. */
  block: string;
  /** max |λ| of the block (Gelfand: ‖A^k‖^(1/k), k = 2^40 by repeated squaring), null above MAX_SPECTRAL_UNITS. */
  spectralRadius: number | null;
  /** σ₁ of the block (power iteration on AᵀA in float64). */
  largestSingularValue: number;
  /** sup|φ′| of the recurrence's activation. */
  gamma: number;
  /** 1/γ: the bound both conditions compare σ₁ with. */
  bound: number;
  /** σ₁ < 1/γ: Pascanu et al.'s sufficient condition for vanishing holds (for a simple RNN: the gradient must vanish). */
  vanishingSufficient: boolean;
  /** σ₁ > 1/γ: the necessary condition for exploding holds (the gradient may explode; it need not). */
  explodingNecessary: boolean;
  note: string;
}

/** The [units][units] block `g` of U [units][gates·units] (row-major). */
function blockOf(U: Float32Array, units: number, gates: number, g: number): Float64Array {
  const out = new Float64Array(units * units);
  const width = gates * units;
  for (let i = 0; i < units; i++) for (let j = 0; j < units; j++) out[i * units + j] = U[i * width + g * units + j]!;
  return out;
}

/** σ₁ by power iteration on AᵀA (float64, on the host): a symmetric positive matrix, so it converges. */
export function largestSingularValue(A: Float64Array, n: number, iterations = 500): number {
  let v = new Float64Array(n).map((_, i) => 1 + ((i * 7919) % 13) / 13);
  let sigma = 0;
  for (let it = 0; it < iterations; it++) {
    const u = new Float64Array(n);
    for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < n; j++) s += A[i * n + j]! * v[j]!; u[i] = s; }
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) { const ui = u[i]!; for (let j = 0; j < n; j++) w[j] = w[j]! + A[i * n + j]! * ui; }
    const norm = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
    if (norm === 0) return 0;
    const next = Math.sqrt(norm);
    v = w.map((x) => x / norm);
    if (Math.abs(next - sigma) <= 1e-12 * next) return next;
    sigma = next;
  }
  return sigma;
}

/**
 * max |λ| by Gelfand's formula: A squared 40 times, renormalised each time, ln ρ = Σ_m ln s_m / 2^m where
 * s_m is the norm divided out at squaring m (stopped early at a fixed point). Works for complex eigenvalues (an orthogonal matrix), where
 * power iteration on A does not converge. Plain float64 on the host: no backend read-back (webgpu in Node
 * cannot read synchronously), and n ≤ MAX_SPECTRAL_UNITS keeps the n³ products small.
 */
export function spectralRadius(A: Float64Array, n: number, squarings = 40): number {
  let m: Float64Array = Float64Array.from(A);
  let log = 0;
  let weight = 1;
  let previous = Number.NaN, steady = 0;
  for (let k = 0; k < squarings; k++) {
    let s2 = 0;
    for (let i = 0; i < m.length; i++) s2 += m[i]! * m[i]!;
    const s = Math.sqrt(s2);
    if (s === 0 || !Number.isFinite(s)) return s === 0 ? 0 : Number.NaN;
    // A fixed point of the renormalised squaring (s_m = s for every later m: an orthogonal matrix after one
    // squaring, a dominant real eigenvalue once the others have died out) adds Σ_{m≥k} 2^−m·ln s = 2·weight·ln s:
    // taken in closed form after three equal norms, which saves the remaining n³ squarings (most of an lstm analysis).
    steady = Math.abs(s - previous) <= 1e-13 * s ? steady + 1 : 0;
    previous = s;
    if (steady >= 2) return Math.exp(log + 2 * weight * Math.log(s));
    log += weight * Math.log(s);
    for (let i = 0; i < m.length; i++) m[i]! /= s;
    m = squareOf(m, n);
    weight /= 2;
  }
  // The last matrix's own norm is (ρ/s)^(2^40)·C → contributes ln(C)/2^40: nothing.
  return Math.exp(log);
}

/** M·M for a row-major n × n matrix. */
function squareOf(M: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const a = M[i * n + k]!;
      if (a === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += a * M[k * n + j]!;
    }
  }
  return out;
}

/** The conditions for a recurrent layer's U (row-major [units][gates·units], as the row's recurrent_kernel). */
export function recurrentMatrixTheory(node: RecurrentNode, U: Float32Array): RecurrentMatrixTheory {
  const order = GATE_ORDER[node.kind];
  const g = node.kind === 'lstm' ? order.indexOf('g') : node.kind === 'gru' ? order.indexOf('n') : 0;
  const A = blockOf(U, node.units, node.gates, g);
  const gamma = activation(node.cell).peakDerivative;
  const bound = 1 / gamma;
  const sigma = largestSingularValue(A, node.units);
  return {
    block: node.kind === 'simple_rnn' ? 'U' : `U_${order[g]!}`,
    spectralRadius: node.units <= MAX_SPECTRAL_UNITS ? spectralRadius(A, node.units) : null,
    largestSingularValue: sigma,
    gamma,
    bound,
    // σ₁ = 1/γ (an orthogonal U with tanh) is the boundary: float32 storage moves σ₁ by ~1e-7, not a side.
    vanishingSufficient: sigma < bound * (1 - BOUNDARY),
    explodingNecessary: sigma > bound * (1 + BOUNDARY),
    note: node.kind === 'simple_rnn'
      ? 'Pascanu et al. 2013: ‖∂h_T/∂h_t‖ ≤ (γ·σ₁)^(T−t), so σ₁ < 1/γ makes the gradient vanish; σ₁ > 1/γ is needed for it to explode. The spectral radius decides the linear case (φ = identity).'
      : `The candidate block of a gated layer. Pascanu et al.'s bound is for a simple RNN: an ${node.kind}'s ${node.kind === 'lstm' ? 'cell state c_t = f·c_{t−1} + …' : 'h_t = z·h_{t−1} + …'} passes gradient along an additive path scaled by its ${node.kind === 'lstm' ? 'forget' : 'update'} gate, which the bound does not see (see gates).`,
  };
}
