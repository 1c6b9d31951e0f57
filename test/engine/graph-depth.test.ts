// Depth-wise flow through convolutional chains against theory: delta-orthogonal linear CNNs are isometries
// (Xiao et al. 2018), He-initialised ReLU CNNs follow the fan-correct mean-field recursion (fan_in = k²·c, with
// zero "same" padding's border computed exactly), and Glorot on ReLU loses a factor ½ of ‖δ‖² per layer.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import { fitLogSlope } from '../../src/engine/common/stats.js';
import type { LayerInput } from '../../src/schemas/layers.js';
import type { InitializerInput } from '../../src/engine/model/initializers.js';

beforeAll(async () => {
  await useTestBackend();
});

type Row = { backpropNorm: number; kind: string; outputShape: number[] };

async function chain(opts: { depth: number; channels: number; side: number; activation: string; init: InitializerInput; kernel?: number; batchSize?: number }): Promise<Row[]> {
  const layers: LayerInput[] = [
    ...Array.from({ length: opts.depth }, (): LayerInput => ({ kind: 'conv2d', filters: opts.channels, kernel: opts.kernel ?? 3, activation: opts.activation as 'relu', useBias: false })),
    { kind: 'flatten' },
    { kind: 'dense', units: 3, useBias: false },
  ];
  const before = tf.memory().numTensors;
  const out = await analyze({
    seed: 5,
    network: { input: [opts.side, opts.side, opts.channels], layers, init: { weights: opts.init as 'he_uniform' } },
    data: { source: 'blobs', features: opts.side * opts.side * opts.channels, classes: 3, batchSize: opts.batchSize ?? 8 },
    // The sum of the outputs: ∂L/∂logits is the same whatever the forward scale, so ‖δ‖ ratios are the chain's alone.
    loss: 'output',
  });
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  return out.result.layers as unknown as Row[];
}

/**
 * Mean-field ‖δ‖² of every conv layer of a ReLU chain of k×k "same" convolutions on a side×side grid,
 * relative to the last conv layer's, position by position: E[∂x(p)²] = Var(W)·c·Σ_{valid taps} E[δ(q)²]
 * and δ = φ'(h)·∂x with E[φ'²] = ½, so v_l(p) = ½·(σ_w²/k²)·Σ_{o valid} v_{l+1}(p + o). Zero padding
 * drops the taps outside the grid; far from the border this is χ₁ = ½·σ_w².
 */
function borderRecursion(depth: number, side: number, k: number, sigmaW2: number): number[] {
  let v = new Float64Array(side * side).fill(1);
  const norms = new Array<number>(depth);
  const r = Math.floor(k / 2);
  norms[depth - 1] = v.reduce((a, b) => a + b, 0);
  for (let l = depth - 2; l >= 0; l--) {
    const next = new Float64Array(side * side);
    for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) {
      let s = 0;
      for (let di = -r; di <= r; di++) for (let dj = -r; dj <= r; dj++) {
        const a = i + di, b = j + dj;
        if (a >= 0 && a < side && b >= 0 && b < side) s += v[a * side + b]!;
      }
      next[i * side + j] = 0.5 * (sigmaW2 / (k * k)) * s;
    }
    v = next;
    norms[l] = v.reduce((a, b) => a + b, 0);
  }
  return norms.map((n) => Math.sqrt(n / norms[depth - 1]!));
}

describe('convolutional chains in depth', () => {
  it('a 50-layer linear CNN with delta-orthogonal kernels keeps ‖δ‖ equal in every layer (dynamical isometry)', async () => {
    const rows = await chain({ depth: 50, channels: 4, side: 5, activation: 'linear', init: 'delta_orthogonal', batchSize: 4 });
    const conv = rows.filter((r) => r.kind === 'conv2d').map((r) => r.backpropNorm);
    expect(conv).toHaveLength(50);
    for (const [l, n] of conv.entries()) {
      expect(Math.abs(n / conv[49]! - 1), `layer ${l}: ${n} vs ${conv[49]}`).toBeLessThan(1e-5);
    }
  });

  it('He-initialised ReLU CNN follows the fan-correct recursion (flat up to the border); Glorot loses ½ of ‖δ‖² per layer', async () => {
    const depth = 12, side = 12, channels = 8;
    const he = (await chain({ depth, channels, side, activation: 'relu', init: 'he_uniform' })).map((r) => r.backpropNorm);
    const glorot = (await chain({ depth, channels, side, activation: 'relu', init: 'glorot_uniform' })).map((r) => r.backpropNorm);
    const conv = Array.from({ length: depth }, (_, l) => l);
    const heFit = fitLogSlope(he, conv)!;
    const theory = fitLogSlope(borderRecursion(depth, side, 3, 2), conv)!;
    // The border costs a little per layer; the interior alone would be flat (χ₁ = ½·σ_w² = 1).
    expect(Math.abs(theory.slope)).toBeLessThan(0.06);
    expect(Math.abs(heFit.slope - theory.slope), `He slope ${heFit.slope} vs theory ${theory.slope}`).toBeLessThan(0.03);
    // Same draws scaled by 1/√2 (uniform limits √(6/fan_in) vs √(6/(fan_in + fan_out)) with c_in = c_out):
    // ReLU is positively homogeneous, so each layer toward the input multiplies ‖δ‖ by exactly √½ more.
    const glorotFit = fitLogSlope(glorot, conv)!;
    expect(Math.abs(glorotFit.slope - heFit.slope - 0.5 * Math.log(0.5)), `Glorot − He slope ${glorotFit.slope - heFit.slope}`).toBeLessThan(1e-4);
  });
});
