// Verdicts, onset, flags and zero-by-design on the networks the literature uses as examples.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import { normalizeSpec, specToInput } from '../../src/engine/spec/normalize.js';
import { initParameters, fixupBranchScale } from '../../src/engine/model/network.js';
import { runAnalysis } from '../../src/engine/measure/measure.js';
import { structuralZeros } from '../../src/engine/diagnosis/zero-by-design.js';
import { onsetLayer, layerList, fmt } from '../../src/engine/diagnosis/verdict.js';
import { SpecError } from '../../src/engine/common/errors.js';
import type { AnalysisSpecInput, NetworkInput } from '../../src/schemas/spec.js';
import { sigmoidChain, textbookChainOfDepth as chain } from '../support/textbook-chain.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
const run = async (input: AnalysisSpecInput): Promise<Body> => (await analyze(input)).result;

const blobs = (batchSize = 64) => ({ source: 'blobs' as const, features: 16, batchSize });

beforeAll(async () => {
  await useTestBackend();
});

describe('the textbook sigmoid chain (depth 20, width 1, weights 0.17, x = 1)', () => {
  it('is vanishing, names the onset layer and the size of the effect', async () => {
    const r = (await run(chain(20)));
    const closed = sigmoidChain(20, Math.fround(0.17), 1);
    const ratio = closed.deltas[0]! / closed.deltas[19]!;
    expect(r.summary.verdict).toBe('vanishing');
    // δ shrinks ×σ'(h)·w ≈ 0.042 per layer: already below half at the last hidden layer.
    expect(r.summary.onsetLayer).toBe(18);
    expect(r.layers[18].flags).toEqual(['onset_vanishing']);
    expect(r.layers.filter((l: Body) => l.flags.length > 0)).toHaveLength(1);
    const text = r.summary.reasons.join(' ');
    expect(r.summary.reasons[0]).toContain(`receives ${fmt(ratio)} of the output layer's backprop signal`);
    expect(r.summary.reasons[0]).toMatch(/26\.\d orders of magnitude lost/);
    expect(text).toContain('Onset at layer 18');
    expect(text).toMatch(/shrinks ×0\.042\d? on average/);
    // Constant weights: theory says why it does not predict, instead of predicting nonsense.
    expect(r.theory.applicable).toBe(false);
    expect(r.theory.reason).toMatch(/^no prediction: .*0\.17/);
    expect(r.summary.zeroByDesign).toBeNull();
    expect(r.nonFinite.count).toBe(0);
  });

  it('at depth 40 the gradient underflows to exactly 0: still vanishing, never zero_by_design', async () => {
    const r = (await run(chain(40)));
    expect(r.layers[0].backpropNorm).toBe(0);
    expect(r.summary.verdict).toBe('vanishing');
    expect(r.summary.reasons[0]).toContain('exactly 0 backprop signal although nothing in the spec forces it');
    expect(r.summary.onsetLayer).toBe(38);
  });
});

describe('mean-field phases', () => {
  it('ReLU + He (plain normal), deep and wide: healthy and critical', async () => {
    const r = (await run({ network: { depth: 24, width: 192, activation: 'relu', init: { weights: 'he_normal' } }, data: blobs() }));
    expect(r.summary.verdict).toBe('healthy');
    expect(r.summary.backpropFirstToLastRatio).toBeGreaterThan(0.5);
    expect(r.summary.backpropFirstToLastRatio).toBeLessThan(2);
    expect(r.layers.every((l: Body) => l.flags.length === 0)).toBe(true);
    expect(r.theory.hidden.phase).toBe('critical');
    expect(r.theory.hidden.chi1).toBeCloseTo(1, 6);
    expect(r.theory.hidden.depthScale).toBeNull();
    expect(r.theory.weightVariance).toMatch(/plain normal/);
  });

  it('tanh with σ_w² = 2 (variance_scaling scale 2, fan_in, normal), 60 layers: exploding, chaotic, χ₁ = 1.106', async () => {
    const r = (await run({
      network: { depth: 60, width: 128, activation: 'tanh', init: { weights: { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'normal' } } },
      data: blobs(),
    }));
    expect(r.summary.verdict).toBe('exploding');
    expect(r.summary.backpropFirstToLastRatio).toBeGreaterThan(10);
    expect(r.theory.hidden.phase).toBe('chaotic');
    expect(r.theory.hidden.chi1).toBeCloseTo(1.106, 3);
    expect(r.theory.hidden.qStar).toBeCloseTo(0.618, 3);
    expect(r.theory.slopes.withinTolerance).toBe(true);
    const onset = r.summary.onsetLayer;
    expect(r.layers[onset].flags).toContain('onset_exploding');
  });

  it('tanh with σ_w² = 2 at 20 layers stays inside the band, and the reasons say where it would leave it', async () => {
    const r = (await run({
      network: { depth: 20, width: 128, activation: 'tanh', init: { weights: { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'normal' } } },
      data: blobs(),
    }));
    expect(r.summary.verdict).toBe('healthy');
    expect(r.summary.reasons.join(' ')).toMatch(/chaotic phase the signal would cross ×10 at a depth of about \d+ layers/);
  });

  it('SELU + LeCun, 32 layers: its mild growth (χ₁ = 1.072, ×1.035 per layer) is healthy', async () => {
    const r = (await run({ network: { depth: 32, width: 128, activation: 'selu', init: { weights: 'lecun_normal' } }, data: blobs() }));
    expect(r.summary.verdict).toBe('healthy');
    expect(r.theory.hidden.chi1).toBeCloseTo(1.0716, 3);
    expect(r.summary.backpropLogSlope.slope).toBeGreaterThan(0);
  });

  it('ReLU + Glorot at 12 layers is vanishing with the theory sentence; thresholds can make a shallow one vanishing too', async () => {
    const deep = (await run({ network: { depth: 12, width: 128, activation: 'relu', init: { weights: 'glorot_normal' } }, data: blobs() }));
    expect(deep.summary.verdict).toBe('vanishing');
    expect(deep.summary.reasons.join(' ')).toMatch(/χ₁ = 0\.5, ordered phase/);
    const shallow: AnalysisSpecInput = { network: { depth: 6, width: 64, activation: 'relu', init: { weights: 'glorot_normal' } }, data: blobs(32) };
    expect((await run(shallow)).summary.verdict).toBe('healthy');
    const strict = (await run({ ...shallow, thresholds: { vanishingRatio: 0.5 } }));
    expect(strict.summary.verdict).toBe('vanishing');
    expect(strict.summary.thresholds.vanishingRatio).toBe(0.5);
    expect(strict.summary.thresholds.explodingRatio).toBe(10);
  });
});

describe('flags', () => {
  it('dead ReLU layers (bias −5) are flagged dead and the exact zeros are vanishing, not zero_by_design', async () => {
    const r = (await run({ network: { depth: 6, width: 16, activation: 'relu', init: { weights: 'he_normal', bias: { name: 'constant', value: -5 } } }, data: blobs(32) }));
    expect(r.summary.verdict).toBe('vanishing');
    for (let l = 0; l < 5; l++) expect(r.layers[l].flags).toContain('dead');
    expect(r.summary.reasons.join(' ')).toContain('Dead: in layers 0–4');
  });

  it('saturated tanh layers (stddev 3 weights) are flagged saturated; the threshold is overridable', async () => {
    const input: AnalysisSpecInput = { network: { depth: 6, width: 32, activation: 'tanh', init: { weights: { name: 'random_normal', stddev: 3 } } }, data: blobs(32) };
    const r = (await run(input));
    expect(r.layers[1].flags).toContain('saturated');
    expect(r.layers[5].flags).not.toContain('saturated');
    const lenient = (await run({ ...input, thresholds: { saturatedFraction: 0.99 } }));
    expect(lenient.layers[1].flags).not.toContain('saturated');
  });
});

describe('zero by design', () => {
  const rezero = (variant: 'rezero' | 'skipinit', scale?: number): AnalysisSpecInput => ({
    network: { depth: 10, width: 32, activation: 'relu', init: { weights: 'he_normal' }, residual: { every: 2, variant, ...(scale !== undefined ? { scale } : {}) } },
    data: blobs(32),
  });

  it('ReZero at step 0: zero_by_design for the branch layers, the gates get gradient, the rest flows', async () => {
    const r = (await run(rezero('rezero')));
    expect(r.summary.verdict).toBe('zero_by_design');
    expect(r.summary.zeroByDesign.layers).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.summary.zeroByDesign.causes[0]).toContain('rezero gate = 0');
    for (const l of [1, 2, 3, 4, 5, 6, 7, 8]) {
      expect(r.layers[l].weightGradNorm).toBe(0);
      expect(r.layers[l].flags).toContain('zero_by_design');
    }
    const gates = r.layers.flatMap((l: Body) => l.auxParameters ?? []).filter((a: Body) => a.name === 'gate');
    expect(gates).toHaveLength(4);
    gates.forEach((g: Body) => { expect(g.initial).toBe(0); expect(g.gradNorm).toBeGreaterThan(0); });
    expect(r.summary.flowVerdict).toBe('healthy');
    expect(r.summary.reasons.join(' ')).toContain('branches open after the first update');
  });

  it('SkipInit at 0 is the same computation; a non-zero initial gate is not zero_by_design', async () => {
    const a = (await run(rezero('rezero')));
    const b = (await run(rezero('skipinit')));
    expect(b.summary.verdict).toBe('zero_by_design');
    expect(b.layers.map((l: Body) => l.weightGradNorm)).toEqual(a.layers.map((l: Body) => l.weightGradNorm));
    const open = (await run(rezero('rezero', 0.1)));
    expect(open.summary.verdict).not.toBe('zero_by_design');
    expect(open.layers[1].weightGradNorm).toBeGreaterThan(0);
  });

  it('a plain residual scale of 0 is zero_by_design too', async () => {
    const r = (await run({ network: { depth: 6, width: 8, activation: 'relu', init: { weights: 'he_normal' }, residual: { every: 2, scale: 0 } }, data: blobs(16) }));
    expect(r.summary.verdict).toBe('zero_by_design');
    expect(r.summary.zeroByDesign.layers).toEqual([1, 2, 3, 4]);
  });

  it('Fixup: scaled branch layers, zero last branch and output layers, zero_by_design below the output', async () => {
    const input: AnalysisSpecInput = {
      network: { depth: 10, width: 32, activation: 'relu', init: { weights: 'he_normal' }, residual: { every: 2, variant: 'fixup' } },
      data: blobs(32),
    };
    const { spec } = normalizeSpec(input);
    const params = initParameters(spec.network, spec.seed);
    const plain = initParameters(normalizeSpec({ ...input, network: { ...input.network, residual: { every: 2 } } }).spec.network, spec.seed);
    // 4 blocks of m = 2 layers: branch scale 4^(−1/2) = ½.
    expect(fixupBranchScale(4, 2)).toBeCloseTo(0.5, 12);
    expect(params.weights[1]![5]).toBeCloseTo(plain.weights[1]![5]! * 0.5, 6);
    expect(params.weights[2]!.every((v) => v === 0)).toBe(true);
    expect(params.weights[9]!.every((v) => v === 0)).toBe(true);
    expect(params.weights[0]).toEqual(plain.weights[0]);
    expect(params.aux!.filter((a) => a.name === 'fixup_scale').map((a) => a.values[0])).toEqual([1, 1, 1, 1]);

    const r = (await run(input));
    expect(r.summary.verdict).toBe('zero_by_design');
    expect(r.summary.zeroByDesign.layers).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.summary.zeroByDesign.causes).toEqual(['the output layer is zero-initialised (Fixup)']);
    expect(r.layers[9].weightGradNorm).toBeGreaterThan(0);
    expect(r.layers[9].flags).toEqual([]);
    // Zeroed layers are off by construction, not "dead".
    expect(r.layers[2].flags).toEqual(['zero_by_design']);
    expect(r.theory.applicable).toBe(false);
    expect(r.summary.reasons.join(' ')).toContain('at least 2 training steps');
  });

  it('Fixup branches end without an activation, so the zeroed last layers learn once the output layer has moved', async () => {
    const input: AnalysisSpecInput = {
      network: { depth: 6, width: 16, activation: 'relu', init: { weights: 'he_normal' }, residual: { every: 2, variant: 'fixup' } },
      data: blobs(16),
    };
    const { spec, dataset } = normalizeSpec(input);
    const params = initParameters(spec.network, spec.seed);
    expect(params.layers.map((l) => l.activation.name)).toEqual(['relu', 'relu', 'linear', 'relu', 'linear', 'softmax']);
    // As after one update: the output layer is no longer zero, every branch's last layer still is.
    params.weights[5] = params.weights[5]!.map((_, i) => Math.sin(i + 1) * 0.1);
    const { result } = (await runAnalysis(spec, dataset, {}, params));
    expect(result.layers[2]!.weightGradNorm).toBeGreaterThan(0);
    expect(result.layers[4]!.weightGradNorm).toBeGreaterThan(0);
    // Inner branch layers wait for the second update: their path runs through the zeroed last layer.
    expect(result.layers[1]!.weightGradNorm).toBe(0);
    expect(result.layers[3]!.weightGradNorm).toBe(0);
    expect(result.layers[0]!.weightGradNorm).toBeGreaterThan(0);
  });

  it('structure alone decides: the last branch layer of a Fixup block is zero at step 0 even without the output layer', async () => {
    const { spec } = normalizeSpec({
      network: { depth: 6, width: 8, activation: 'tanh', residual: { every: 2, variant: 'fixup' } }, data: blobs(8),
    });
    const z = structuralZeros(spec);
    expect(z.layers.map((l) => l.weightGradZero)).toEqual([true, true, true, true, true, false]);
    expect(z.layers[2]!.preActivationZero).toBe(true);
    expect(z.layers[1]!.preActivationZero).toBe(false);
  });

  it('all-zero weights: zero_by_design, with the symmetry warning', async () => {
    const r = (await run({ network: { depth: 5, width: 8, activation: 'tanh', init: { weights: 'zeros' } }, data: blobs(16) }));
    expect(r.summary.verdict).toBe('zero_by_design');
    expect(r.summary.reasons.join(' ')).toContain('cannot break that symmetry');
  });
});

describe('normalisation and per-example statistics', () => {
  for (const kind of ['batch', 'layer'] as const) {
    it(`${kind} normalisation standardises what the activation sees and reports gamma/beta gradients`, async () => {
      const r = (await run({ network: { depth: 5, width: 16, activation: 'tanh', normalization: kind }, data: blobs(32) }));
      for (let l = 0; l < 4; l++) {
        expect(r.layers[l].preActivationRms).toBeCloseTo(1, 2);
        const aux = r.layers[l].auxParameters;
        expect(aux.map((a: Body) => [a.name, a.size, a.initial])).toEqual([['gamma', 16, 1], ['beta', 16, 0]]);
        aux.forEach((a: Body) => expect(a.gradNorm).toBeGreaterThan(0));
      }
      expect(r.layers[4].auxParameters).toBeUndefined();
      expect(r.theory.applicable).toBe(false);
    });
  }

  it('per-example gradient norms of the first and last layer equal those of one-example batches', async () => {
    const rows = [[1, 2], [3, -1], [0.5, 0.5]];
    const ys = [[0.5], [1.5], [-1]];
    const net: NetworkInput = { depth: 3, width: 4, activation: 'tanh', init: { weights: 'he_normal', bias: { name: 'random_normal', stddev: 0.1 } } };
    const all = await run({ network: net, data: { source: 'inline', x: rows, y: ys }, loss: 'mse' });
    const singles: Body[] = [];
    for (const [i, x] of rows.entries()) singles.push(await run({ network: net, data: { source: 'inline', x: [x], y: [ys[i]!] }, loss: 'mse' }));
    for (const l of [0, 2]) {
      const norms = singles.map((s) => s.layers[l].weightGradNorm);
      const pe = all.layers[l].perExample;
      expect(pe.min).toBeCloseTo(Math.min(...norms), 5);
      expect(pe.max).toBeCloseTo(Math.max(...norms), 5);
      expect(pe.mean).toBeCloseTo(norms.reduce((a, b) => a + b, 0) / 3, 5);
      expect(pe.coherence).toBeGreaterThan(0);
      expect(pe.coherence).toBeLessThanOrEqual(1);
      // The batch gradient is the mean of the per-example ones.
      expect(all.layers[l].weightGradNorm).toBeLessThanOrEqual(pe.mean + 1e-9);
    }
    expect(all.layers[1].perExample).toBeUndefined();
  });
});

describe('tensor memory', () => {
  it('normalisation, gates, Fixup scalars and what-if runs leave no tensors behind', async () => {
    const specs: AnalysisSpecInput[] = [
      { network: { depth: 5, width: 8, activation: 'tanh', normalization: 'batch' }, data: blobs(8) },
      { network: { depth: 6, width: 8, residual: { every: 2, variant: 'rezero' }, normalization: 'layer' }, data: blobs(8) },
      { network: { depth: 6, width: 8, residual: { every: 2, variant: 'fixup' } }, data: { ...blobs(8), batches: 2 } },
      { network: { depth: 5, width: 8, activation: 'sigmoid' }, data: blobs(8), whatIf: true },
    ];
    for (const s of specs) await run(s);
    const before = tf.memory().numTensors;
    for (const s of specs) await run(s);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('spec round trip and validation', () => {
  it('echoes normalisation, residual variant, thresholds and whatIf, and accepts its own echo', async () => {
    const { spec } = normalizeSpec({
      network: { depth: 6, width: 8, residual: { every: 2, variant: 'rezero' }, normalization: 'layer' },
      data: blobs(8), thresholds: { onsetFactor: 3 },
    });
    const echo = specToInput(spec);
    expect(echo.network.residual).toEqual({ every: 2, scale: 0, variant: 'rezero' });
    expect(echo.network.normalization).toBe('layer');
    expect(echo.thresholds!.onsetFactor).toBe(3);
    expect(echo.thresholds!.vanishingRatio).toBe(0.1);
    expect(echo.whatIf).toBe(false);
    expect(specToInput(normalizeSpec(echo).spec)).toEqual(echo);
  });

  it('defaults keep plain networks as they were: variant plain, scale 1, no normalisation, no aux parameters', async () => {
    const { spec } = normalizeSpec({ network: { depth: 4, width: 8, residual: { every: 1 } }, data: blobs(8) });
    expect(spec.network.residual).toEqual({ every: 1, scale: 1, variant: 'plain' });
    expect(spec.network.normalization).toBe('none');
    expect(initParameters(spec.network, spec.seed).aux).toBeUndefined();
  });

  it('rejects a residual variant without blocks and thresholds out of range, naming the field', async () => {
    const bad = (input: AnalysisSpecInput): SpecError => {
      try {
        normalizeSpec(input);
      } catch (err) {
        return err as SpecError;
      }
      throw new Error('expected a SpecError');
    };
    expect(bad({ network: { depth: 4, residual: { every: 0, variant: 'rezero' } }, data: blobs(8) }).field).toBe('network.residual.variant');
    expect(bad({ network: { depth: 4 }, data: blobs(8), thresholds: { vanishingRatio: 2 } }).field).toBe('thresholds.vanishingRatio');
  });
});

describe('non-finite results', () => {
  // Constant weights 1, ReLU, no bias: the signal grows ×16 per layer and overflows float32 past ~20 layers.
  const overflowing = (depth: number): AnalysisSpecInput => ({
    network: { depth, width: 16, activation: 'relu', useBias: false, init: { weights: { name: 'constant', value: 1 } } },
    data: { source: 'blobs', batchSize: 8, normalize: 'minmax' },
    loss: 'mse',
  });
  const valueAt = (r: Body, path: string): unknown => path.split(/\.|\[|\]/).filter(Boolean).reduce((o: Body, k: string) => o[k], r);

  it('lists every path up to 100 and says when the list is cut', async () => {
    // 18 layers: 83 paths on cpu (float64 host statistics), 89 on webgpu (float32 device statistics overflow sooner).
    const few = (await run(overflowing(18)));
    expect(few.nonFinite.count).toBeGreaterThan(0);
    expect(few.nonFinite.count).toBeLessThanOrEqual(100);
    expect(few.nonFinite.paths).toHaveLength(few.nonFinite.count);
    expect(few.nonFinite.truncated).toBe(false);
    const many = (await run(overflowing(50)));
    expect(many.nonFinite.count).toBeGreaterThan(100);
    expect(many.nonFinite.paths).toHaveLength(100);
    expect(many.nonFinite.truncated).toBe(true);
    for (const r of [few, many]) {
      for (const path of r.nonFinite.paths) expect(['NaN', 'Infinity', '-Infinity'], path).toContain(valueAt(r, path));
    }
    const none = (await run(overflowing(12)));
    expect(none.nonFinite).toEqual({ count: 0, paths: [], truncated: false });
  });

  it('the reasons say in words which gradient is not finite, never "NaN of the output layer\'s"', async () => {
    for (const depth of [30, 50]) {
      const r = (await run(overflowing(depth)));
      expect(r.summary.verdict).toBe('exploding');
      const text = r.summary.reasons.join(' ');
      expect(text, text).not.toMatch(/(NaN|Infinity) of\b/);
      expect(text).not.toMatch(/there (NaN|-?Infinity)/);
      expect(r.summary.reasons[0]).toMatch(/non-finite gradients \(NaN or Infinity\)/);
      const onset = r.summary.reasons.find((s: string) => s.startsWith('Onset'));
      expect(onset).toMatch(/^Onset at layer \d+( \(the output layer\))?: walking from the output toward the input, the first layer whose gradients are not finite: the (backprop signal|weight gradient) is (infinite \(-?Infinity\)|not a number \(NaN\))/);
    }
    // At depth 30 the backprop signal is finite, its weight-gradient ratio is not: the slope sentence says so in words.
    const r = (await run(overflowing(30)));
    expect(r.summary.reasons.join(' ')).toMatch(/the ratio of the first measured layer's weight gradient to the output layer's is (not a number \(NaN\)|infinite \(Infinity\)), as one of them is not finite/);
  });
});

describe('helpers', () => {
  it('onset: the first layer from the output below the running maximum by the factor', async () => {
    expect(onsetLayer([0.1, 0.4, 0.9, 1, 1], [0, 1, 2, 3, 4], 'vanishing', 2)).toBe(1);
    expect(onsetLayer([1, 1, 1], [0, 1, 2], 'vanishing', 2)).toBeNull();
    expect(onsetLayer([9, 3, 1], [0, 1, 2], 'exploding', 2)).toBe(1);
    expect(layerList([1, 2, 3, 5, 7, 8])).toBe('1–3, 5, 7–8');
    expect(fmt(3.14159e-27)).toBe('3.1e-27');
  });
});
