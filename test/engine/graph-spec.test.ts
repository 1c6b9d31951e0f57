// Layer-graph specs before anything runs: presets against He et al. 2016's counts (6n + 2 weight layers,
// ResNet-20's parameters from the architecture by hand), the FLOP estimate of a convolution against its closed
// form, and a normalised spec that crossed a JSON boundary (a job's) measuring exactly as the original.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestBackend } from '../backends.js';
import { normalizeSpecShape } from '../../src/engine/spec/normalize.js';
import { estimateCost } from '../../src/engine/spec/cost.js';
import { analyzeNormalized } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

beforeAll(async () => {
  await useTestBackend();
});

describe('layer graph specs', () => {
  it.each([[3, 20], [9, 56]])('resnet with %i blocks per stage has %i weight layers plus 2 projections; plain_cnn the same without them', (n, depth) => {
    const resnet = normalizeSpecShape({ network: { preset: 'resnet', blocksPerStage: n }, data: { source: 'mnist', batchSize: 1 } });
    const plain = normalizeSpecShape({ network: { preset: 'plain_cnn', blocksPerStage: n }, data: { source: 'mnist', batchSize: 1 } });
    expect(resnet.network.graph!.rows.filter((r) => !r.shortcut)).toHaveLength(depth);
    expect(resnet.network.graph!.rows.filter((r) => r.shortcut)).toHaveLength(2);
    expect(plain.network.graph!.rows).toHaveLength(depth);
    expect(plain.network.graph!.rows.map((r) => r.node.path)).toEqual(resnet.network.graph!.rows.filter((r) => !r.shortcut).map((r) => r.node.path));
  });

  it('counts ResNet-20\'s parameters as the architecture does (MNIST: 1 input channel, 10 classes)', () => {
    const spec = normalizeSpecShape({ network: { preset: 'resnet', blocksPerStage: 3 }, data: { source: 'mnist', batchSize: 1 } });
    const conv = (cin: number, cout: number, k = 3): number => k * k * cin * cout;
    const bn = (c: number): number => 2 * c;
    let expected = conv(1, 16) + bn(16);
    let cin = 16;
    for (const [s, c] of [16, 32, 64].entries()) {
      for (let b = 0; b < 3; b++) {
        expected += conv(cin, c) + bn(c) + conv(c, c) + bn(c);
        if (s > 0 && b === 0) expected += conv(cin, c, 1);
        cin = c;
      }
    }
    expected += 64 * 10 + 10;
    expect(estimateCost(spec).parameters).toBe(expected);
    // He et al. report 0.27M for the CIFAR (3-channel) ResNet-20; MNIST's 1 channel saves 2·9·16 weights.
    expect(expected + 2 * 9 * 16).toBeGreaterThan(0.265e6);
    expect(expected + 2 * 9 * 16).toBeLessThan(0.275e6);
  });

  it('estimates a convolution at 3 × 2·kh·kw·c_in·c_out·h_out·w_out FLOPs plus 20 per output entry, per example', () => {
    const spec = normalizeSpecShape({
      network: { input: [10, 10, 3], layers: [{ kind: 'conv2d', filters: 5, kernel: 3, stride: 2, padding: 'valid', useBias: false }, { kind: 'flatten' }, { kind: 'dense', useBias: false }] },
      data: { source: 'blobs', features: 300, classes: 4, batchSize: 7 },
    });
    const out = 4 * 4 * 5; // floor((10 − 3)/2) + 1 = 4
    const perExample = 3 * (2 * 9 * 3 * 5 * 16 + 2 * out * 4) + 20 * (out + out + 4);
    expect(estimateCost(spec).flopsPerStep).toBe(7 * perExample);
  });

  it('measures a normalised spec that went through JSON (a stored job\'s) exactly as the original', async () => {
    const input: AnalysisSpecInput = {
      network: { input: [6, 6, 2], layers: [
        { kind: 'conv2d', filters: 3, kernel: 3, activation: 'relu' },
        { kind: 'residual', shortcut: 'projection', layers: [{ kind: 'conv2d', filters: 4, kernel: 3, stride: 2 }, { kind: 'batch_norm', activation: 'tanh' }] },
        { kind: 'flatten' }, { kind: 'dense' },
      ] },
      data: { source: 'blobs', features: 72, batchSize: 4 },
    };
    const spec = normalizeSpecShape(input);
    const a = await analyzeNormalized(spec);
    const b = await analyzeNormalized(JSON.parse(JSON.stringify(spec)));
    expect(b.result.layers).toEqual(a.result.layers);
    expect(a.result.layers.map((l) => l.activation)).toEqual(['relu', 'tanh', 'linear', 'softmax']);
  });

  it('theory: a He ReLU chain of same convolutions is the fully connected recursion with fan_in = k²·c (χ₁ = 1); pooling gets no prediction', async () => {
    const layers = [
      ...Array.from({ length: 4 }, () => ({ kind: 'conv2d' as const, filters: 4, kernel: 3, activation: 'relu' as const, useBias: false })),
      { kind: 'flatten' as const }, { kind: 'dense' as const, useBias: false },
    ];
    const chain = await analyzeNormalized(normalizeSpecShape({
      network: { input: [6, 6, 2], layers, init: { weights: 'he_normal' } }, data: { source: 'blobs', features: 72, batchSize: 4 },
    }));
    const t = chain.result.theory;
    expect(t.applicable).toBe(true);
    // σ_w² = fan_in·Var(W) = (9·c_in)·2/(9·c_in) = 2 for every conv (c_in = 2 for the first), and 2 for the head.
    for (const l of t.layers) expect(Number(l.sigmaW2)).toBeCloseTo(2, 12);
    expect(t.hidden).not.toBeNull();
    expect(Number(t.hidden!.chi1)).toBeCloseTo(1, 9);
    expect(t.hidden!.phase).toBe('critical');
    const pooled = await analyzeNormalized(normalizeSpecShape({
      network: { input: [6, 6, 2], layers: [layers[0]!, { kind: 'max_pool', size: 2 }, { kind: 'flatten' }, { kind: 'dense' }] }, data: { source: 'blobs', features: 72, batchSize: 4 },
    }));
    expect(pooled.result.theory.applicable).toBe(false);
    expect(pooled.result.theory.reason).toMatch(/^no prediction, because max pooling .* \(maxpool1\)$/);
  });
});
