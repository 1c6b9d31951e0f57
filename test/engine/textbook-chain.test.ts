// The textbook vanishing-gradient chain checked against its closed form.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestBackend } from '../backends.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { runAnalysis } from '../../src/engine/measure/measure.js';
import { sigmoidChain as chainClosedForm, TEXTBOOK_CHAIN } from '../support/textbook-chain.js';

describe('textbook sigmoid chain (depth 20, width 1, w = 0.17, x = 1, loss = output)', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('matches the closed form for the first and the last layer', async () => {
    const { spec, dataset } = normalizeSpec(TEXTBOOK_CHAIN);
    const { result } = await runAnalysis(spec, dataset);
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
