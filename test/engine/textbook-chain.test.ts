// The textbook vanishing-gradient chain checked against its closed form.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { normalizeSpec } from '../../src/engine/spec.js';
import { runAnalysis } from '../../src/engine/analysis.js';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Closed form for a chain of 1-unit sigmoid layers with weight w, no bias, input x0, loss = output. */
function chainClosedForm(depth: number, w: number, x0: number): { weightGrads: number[]; deltas: number[] } {
  const a = [x0];
  const h: number[] = [];
  for (let l = 0; l < depth; l++) {
    h.push(w * a[l]!);
    a.push(sigmoid(h[l]!));
  }
  const deltas = new Array<number>(depth);
  // δ_L = σ'(h_L); δ_l = σ'(h_l) · w · δ_{l+1}
  deltas[depth - 1] = sigmoid(h[depth - 1]!) * (1 - sigmoid(h[depth - 1]!));
  for (let l = depth - 2; l >= 0; l--) deltas[l] = sigmoid(h[l]!) * (1 - sigmoid(h[l]!)) * w * deltas[l + 1]!;
  return { deltas, weightGrads: deltas.map((d, l) => d * a[l]!) };
}

describe('textbook sigmoid chain (depth 20, width 1, w = 0.17, x = 1, loss = output)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('matches the closed form for the first and the last layer', () => {
    const { spec, dataset } = normalizeSpec({
      network: {
        depth: 20, width: 1, activation: 'sigmoid', outputActivation: 'sigmoid', useBias: false,
        init: { weights: { name: 'constant', value: 0.17 } },
      },
      data: { source: 'inline', x: [[1]] },
      loss: 'output',
    });
    const { result } = runAnalysis(spec, dataset);
    const expected = chainClosedForm(20, Math.fround(0.17), 1);
    expect(result.layers).toHaveLength(20);
    const first = result.layers[0]!;
    const last = result.layers[19]!;
    expect(first.weightGradNorm).toBeGreaterThan(1e-28);
    expect(first.weightGradNorm).toBeLessThan(1e-26);
    expect(first.weightGradNorm / expected.weightGrads[0]!).toBeCloseTo(1, 4);
    expect(last.weightGradNorm / expected.weightGrads[19]!).toBeCloseTo(1, 5);
    expect(first.backpropNorm / expected.deltas[0]!).toBeCloseTo(1, 4);
    // Every layer, not only the ends.
    result.layers.forEach((layer, l) => expect(layer.weightGradNorm / expected.weightGrads[l]!).toBeCloseTo(1, 4));
    expect(result.summary.firstToLastRatio).toBeCloseTo(expected.weightGrads[0]! / expected.weightGrads[19]!, 30);
  });
});
