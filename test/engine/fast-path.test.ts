// Whole analyses on the fast paths (host statistics; native kernels; wasm) equal the stock path (stock cpu kernels, tfjs-op statistics) within float32 tolerance.
import * as tf from '@tensorflow/tfjs';
import { itNative } from '../support/native.js';
import { TEST_BACKEND_OPTIONS } from '../backends.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { runAnalysis, type AnalysisResult } from '../../src/engine/measure/measure.js';
import { loadNativeKernels, registerNativeKernels, registerNativeWasmMatMul, restoreStockKernels } from '../../src/engine/backends/native-kernels.js';
import { setReductionImplementation } from '../../src/engine/measure/batch-stats.js';
import { registerWasmTransposedMatMul, restoreWasmMatMul } from '../../src/engine/backends/wasm-kernels.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';

const SPECS: Record<string, AnalysisSpecInput> = {
  'relu/he on MNIST, 2 batches': {
    seed: 3, network: { depth: 6, width: 48, activation: 'relu', init: { weights: 'he_normal' } },
    data: { source: 'mnist', batchSize: 32, batches: 2 },
  },
  'saturating sigmoid (std 3 weights) on spirals': {
    seed: 4, network: { depth: 8, width: 24, activation: 'sigmoid', init: { weights: { name: 'random_normal', stddev: 3 } } },
    data: { source: 'spirals', batchSize: 40, batches: 2 },
  },
  'vanishing tanh chain (tiny weights)': {
    seed: 5, network: { depth: 12, width: 16, activation: 'tanh', init: { weights: { name: 'random_normal', stddev: 0.05 } } },
    data: { source: 'moons', batchSize: 32 },
  },
  'plain residual tanh on iris': {
    seed: 6, network: { depth: 7, width: 20, activation: 'tanh', residual: { every: 2, scale: 0.5 } },
    data: { source: 'iris', batchSize: 30, batches: 2 },
  },
  'batch norm + gelu on blobs': {
    seed: 7, network: { depth: 6, width: 24, activation: 'gelu', normalization: 'batch' },
    data: { source: 'blobs', batchSize: 32 },
  },
  'layer norm + leaky_relu, mse on sine': {
    seed: 8, network: { depth: 5, width: 16, activation: 'leaky_relu', normalization: 'layer' },
    data: { source: 'sine', batchSize: 50 },
  },
  'fixup residual relu on circles (zero layers by design)': {
    seed: 9, network: { depth: 8, width: 16, activation: 'relu', residual: { every: 2, variant: 'fixup' } },
    data: { source: 'circles', batchSize: 32 },
  },
  'dying relu (negative bias) with softmax output': {
    seed: 10, network: { depth: 6, width: 32, activation: 'relu', init: { bias: { name: 'constant', value: -2 } } },
    data: { source: 'blobs', batchSize: 64, classes: 4 },
  },
  'textbook chain': TEXTBOOK_CHAIN,
};

/** Fractions of entries may differ where a float32 difference moves one across the threshold. */
const FRACTION_KEYS = new Set(['deadFraction', 'saturatedFraction']);
/** Means of zero-centred quantities: relative error is meaningless near 0, compare against 1e-5. */
const CENTRED_KEYS = new Set(['activationMean']);
const RTOL = 1e-4;

function compare(a: unknown, b: unknown, path: string, problems: string[], floor = 0): void {
  if (typeof a === 'number' && typeof b === 'number') {
    const key = path.split('.').pop()!.replace(/\[\d+\]$/, '');
    const tol = FRACTION_KEYS.has(key) ? 0.01
      : CENTRED_KEYS.has(key) ? 1e-5 + RTOL * Math.abs(b)
      : key === 'biasGradNorm' ? floor + RTOL * Math.max(Math.abs(a), Math.abs(b))
      : RTOL * Math.max(Math.abs(a), Math.abs(b));
    const same = Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= tol;
    if (!same) problems.push(`${path}: ${a} vs stock ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) problems.push(`${path}: length ${a.length} vs ${b.length}`);
    a.forEach((v, i) => compare(v, b[i], `${path}[${i}]`, problems, floor));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    // Before a batch norm a bias has no effect, so its exact gradient is 0 and what both paths report is
    // rounding noise: compare it against float32 noise on the layer's weight gradient instead.
    const wg = (b as Record<string, unknown>)['weightGradNorm'];
    const layerFloor = typeof wg === 'number' ? 1e-5 * wg : floor;
    for (const k of keys) compare((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k, problems, layerFloor);
    return;
  }
  if (a !== b) problems.push(`${path}: ${JSON.stringify(a)} vs stock ${JSON.stringify(b)}`);
}

async function analyse(statistics: 'host' | 'device'): Promise<Record<string, AnalysisResult>> {
  const out: Record<string, AnalysisResult> = {};
  for (const [name, input] of Object.entries(SPECS)) {
    const { spec, dataset } = normalizeSpec(input);
    out[name] = (await runAnalysis(spec, dataset, { statistics })).result;
  }
  return out;
}

function expectEqualToStock(fast: Record<string, AnalysisResult>, stock: Record<string, AnalysisResult>): void {
  for (const name of Object.keys(SPECS)) {
    const problems: string[] = [];
    compare(fast[name], stock[name], '', problems);
    expect(problems, name).toEqual([]);
  }
}

describe('whole analyses: fast paths against the stock path', () => {
  let stock: Record<string, AnalysisResult>;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    restoreStockKernels(tf);
    stock = (await analyse('device'));
  });
  afterAll(async () => {
    restoreStockKernels(tf);
    setReductionImplementation('auto');
    await tf.setBackend('cpu');
  });

  it('stock cpu kernels with host statistics in JavaScript', async () => {
    setReductionImplementation('js');
    expectEqualToStock((await analyse('host')), stock);
  });

  itNative('native kernels with host statistics in C (the native path)', async () => {
    setReductionImplementation('auto');
    expect(registerNativeKernels(tf).length).toBeGreaterThan(0);
    expectEqualToStock((await analyse('host')), stock);
    // And the device statistics on native kernels: only the kernels differ.
    expectEqualToStock((await analyse('device')), stock);
    restoreStockKernels(tf);
  });

  it('wasm with host statistics (the pure-npm fallback), with and without the native matmul', async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    expect(await tf.setBackend('wasm')).toBe(true);
    setReductionImplementation('auto');
    expectEqualToStock((await analyse('host')), stock);
    // What GRADLENS_BACKEND=wasm runs: transposed products as transpose + XNNPACK.
    expect(registerWasmTransposedMatMul(tf)).toBe(true);
    expectEqualToStock((await analyse('host')), stock);
    restoreWasmMatMul(tf);
    if (loadNativeKernels({ addonPath: TEST_BACKEND_OPTIONS.nativeAddonPath }).loaded) {
      expect(registerNativeWasmMatMul(tf)).toBe(true);
      expectEqualToStock((await analyse('host')), stock);
      restoreStockKernels(tf);
    }
  });
});
