// result.throughTime against closed forms. A linear RNN h_t = h_{t−1}·ρQ + x_t·W (Q orthogonal) with input at
// t = 0 only and the loss on the last step: ∂L/∂h_{t−1} = ∂L/∂h_t·(ρQ)ᵀ, so ‖∂L/∂h_t‖ = ρ^(T−1−t)·‖∂L/∂h_{T−1}‖
// exactly for every example, ρ < 1, = 1 and > 1; ρQ's spectral radius and σ₁ are ρ. Gates with zero kernels
// are σ(bias): an lstm's forget gate σ(forgetBias), a gru's update gate σ(0) = 1/2, at every step.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { LayerInput } from '../../src/schemas/layers.js';
import { Rng } from '../../src/engine/common/random.js';

beforeAll(async () => {
  await useTestBackend();
});

const T = 20;
const F = 3;

/** Sequences whose only input is at t = 0; targets random. */
function impulses(B: number): { x: number[][][]; y: number[][] } {
  const rng = new Rng(5);
  const x = Array.from({ length: B }, () => Array.from({ length: T }, (_, t) => Array.from({ length: F }, () => (t === 0 ? rng.normal() : 0))));
  return { x, y: x.map(() => [rng.normal()]) };
}

interface Entry {
  norms: number[]; relative: number[]; memoryHorizon: number | null; verdict: string; reasons: string[]; cures: { id: string }[];
  fit: { factorPerStep: number; r2: number } | null;
  recurrentMatrix: { spectralRadius: number; largestSingularValue: number; vanishingSufficient: boolean; explodingNecessary: boolean };
  gates: { name: string; mean: number[]; saturated: number[] } | null;
}

async function throughTime(layer: LayerInput): Promise<Entry & { summaryVerdict: string }> {
  const spec: AnalysisSpecInput = { seed: 2, network: { input: [T, F], layers: [layer, { kind: 'dense', units: 1 }] }, data: { source: 'inline', ...impulses(6) }, loss: 'mse' };
  const before = tf.memory().numTensors;
  const out = await analyze(spec);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  const entries = (out.result as unknown as { throughTime: Entry[] }).throughTime;
  expect(entries).toHaveLength(1);
  return { ...entries[0]!, summaryVerdict: (out.result as unknown as { summary: { verdict: string } }).summary.verdict };
}

const linearRnn = (rho: number): LayerInput => ({ kind: 'simple_rnn', units: 8, activation: 'linear', init: { recurrent: { name: 'orthogonal', gain: rho } } });

describe('through time: a linear RNN with recurrent weights ρ·Q', () => {
  for (const rho of [0.8, 1, 1.2]) {
    it(`‖∂L/∂h_t‖ = ρ^(T−1−t)·‖∂L/∂h_{T−1}‖ at ρ = ${rho}, and ρQ's spectral radius and σ₁ are ρ`, async () => {
      const e = await throughTime(linearRnn(rho));
      expect(e.norms).toHaveLength(T);
      e.norms.forEach((v, t) => {
        const expected = rho ** (T - 1 - t) * e.norms[T - 1]!;
        expect(Math.abs(v - expected) / expected, `step ${t}: ${v} vs ${expected}`).toBeLessThan(2e-5);
      });
      expect(e.fit!.factorPerStep).toBeCloseTo(rho, 5);
      // At ρ = 1 the norms are flat: r² measures rounding noise there, not a fit.
      if (rho !== 1) expect(e.fit!.r2).toBeCloseTo(1, 6);
      expect(Math.abs(e.recurrentMatrix.spectralRadius - rho) / rho).toBeLessThan(1e-4);
      expect(Math.abs(e.recurrentMatrix.largestSingularValue - rho) / rho).toBeLessThan(1e-6);
    });
  }

  it('verdicts: vanishing after the closed-form horizon at ρ = 0.8, healthy at 1, exploding at 1.2, with Pascanu et al.\'s conditions', async () => {
    const low = await throughTime(linearRnn(0.8));
    // 0.8^k < 0.1 first at k = ⌈ln 0.1 / ln 0.8⌉ = 11.
    expect(low.memoryHorizon).toBe(Math.ceil(Math.log(0.1) / Math.log(0.8)));
    expect(low.verdict).toBe('vanishing');
    expect(low.reasons[0]).toContain('vanishing after ~11 steps');
    expect(low.recurrentMatrix.vanishingSufficient).toBe(true);
    expect(low.cures.map((c) => c.id)).toEqual(['lstm', 'gru', 'orthogonal_recurrent']);
    // Two rows depth-wise (the rnn, the dense head) are healthy: the headline verdict is the through-time one.
    expect(low.summaryVerdict).toBe('vanishing');
    const flat = await throughTime(linearRnn(1));
    expect(flat.verdict).toBe('healthy');
    expect(flat.memoryHorizon).toBeNull();
    expect(flat.recurrentMatrix.vanishingSufficient || flat.recurrentMatrix.explodingNecessary).toBe(false);
    expect(flat.cures).toEqual([]);
    expect(flat.summaryVerdict).toBe('healthy');
    const high = await throughTime(linearRnn(1.2));
    expect(high.verdict).toBe('exploding');
    expect(high.recurrentMatrix.explodingNecessary).toBe(true);
    expect(high.cures.map((c) => c.id)).toContain('gradient_clipping');
    expect(high.summaryVerdict).toBe('exploding');
  });
});

describe('through time: gates', () => {
  const zero = { weights: 'zeros', recurrent: 'zeros', bias: 'zeros' } as const;
  it('an lstm\'s forget gate is σ(forgetBias) at every step when its kernels are zero', async () => {
    const e = await throughTime({ kind: 'lstm', units: 4, forgetBias: 1, init: zero });
    expect(e.gates!.name).toBe('forget');
    e.gates!.mean.forEach((m) => expect(m).toBeCloseTo(1 / (1 + Math.exp(-1)), 6));
    e.gates!.saturated.forEach((s) => expect(s).toBe(0));
  });

  it('a gru\'s update gate is σ(0) = 1/2, and saturated everywhere when its bias is −12', async () => {
    const e = await throughTime({ kind: 'gru', units: 4, init: zero });
    expect(e.gates!.name).toBe('update');
    e.gates!.mean.forEach((m) => expect(m).toBeCloseTo(0.5, 6));
    const s = await throughTime({ kind: 'gru', units: 4, init: { ...zero, bias: { name: 'constant', value: -12 } } });
    // σ(−12)·(1 − σ(−12)) ≈ 6e-6 < 0.01 × 1/4: every entry is saturated.
    s.gates!.saturated.forEach((v) => expect(v).toBe(1));
  });
});
