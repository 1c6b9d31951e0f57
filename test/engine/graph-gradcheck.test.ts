// Layer graphs against a float64 PyTorch oracle (test/support/graph_reference.py): every dense/conv2d row's
// weight-gradient, bias-gradient and backprop norms for conv2d (stride, same/valid/n padding, dilation), max,
// average and global pooling, batch and layer norm on 4-D tensors, identity and projection shortcuts, rebuilt
// in PyTorch from the parameters and batch the analysis returns with include (kernels permuted to NCHW).
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { expectRelClose, torchOracle } from '../support/torch-oracle.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { LayerInput } from '../../src/schemas/layers.js';


beforeAll(async () => {
  await useTestBackend();
});

interface OracleRow { weightGradNorm: number; biasGradNorm: number | null; backpropNorm: number }

const oracle = (body: unknown): { loss: number; rows: OracleRow[] } => torchOracle('graph_reference.py', body);

/** float32 forward and backward against float64: 1e-4 relative covers rounding, a wrong factor or layout does not. */
const RTOL = 1e-4;
const close = (actual: number, expected: number, what: string): void => expectRelClose(actual, expected, RTOL, what);

async function check(layers: LayerInput[], input: number[], features: number): Promise<void> {
  const spec: AnalysisSpecInput = {
    seed: 3, network: { input, layers }, data: { source: 'blobs', features, classes: 3, batchSize: 6 }, include: ['parameters', 'batch'],
  };
  const before = tf.memory().numTensors;
  const out = await analyze(spec);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  const result = out.result as unknown as { loss: number; layers: { path: string; weightGradNorm: number; biasGradNorm: number | null; backpropNorm: number }[]; parameters: unknown; batch: unknown[] };
  const ref = oracle({ spec: out.spec, parameters: result.parameters, batch: result.batch[0] });
  close(result.loss, ref.loss, 'loss');
  expect(ref.rows).toHaveLength(result.layers.length);
  result.layers.forEach((row, i) => {
    close(row.weightGradNorm, ref.rows[i]!.weightGradNorm, `${row.path} weightGradNorm`);
    close(row.backpropNorm, ref.rows[i]!.backpropNorm, `${row.path} backpropNorm`);
    if (row.biasGradNorm !== null) close(row.biasGradNorm, ref.rows[i]!.biasGradNorm!, `${row.path} biasGradNorm`);
  });
}

describe('layer graph gradients against PyTorch float64', () => {
  it('conv2d: same (with TensorFlow\'s odd padding at stride 2), valid, explicit padding, dilation', async () => {
    await check([
      { kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu' },
      { kind: 'conv2d', filters: 4, kernel: 3, padding: 2, dilation: 2, activation: 'elu' },
      { kind: 'conv2d', filters: 6, kernel: 3, stride: 2, activation: 'tanh' },
      { kind: 'conv2d', filters: 5, kernel: 3, padding: 'valid', activation: 'tanh' },
      { kind: 'flatten' },
      { kind: 'dense' },
    ], [8, 8, 2], 128);
  });

  it('non-square kernels and windows: [kh, kw] conv2d (same at stride 2, valid, explicit padding, delta-orthogonal), [h, w] max and average pooling', async () => {
    await check([
      { kind: 'conv2d', filters: 4, kernel: [1, 3], activation: 'relu' },
      { kind: 'conv2d', filters: 4, kernel: [3, 2], stride: 2, activation: 'tanh' },
      { kind: 'max_pool', size: [2, 1] },
      { kind: 'conv2d', filters: 5, kernel: [2, 3], padding: 'valid', activation: 'elu', init: { weights: 'delta_orthogonal' } },
      { kind: 'conv2d', filters: 3, kernel: [3, 1], padding: 1, activation: 'tanh' },
      { kind: 'avg_pool', size: [1, 2], stride: 1 },
      { kind: 'flatten' },
      { kind: 'dense' },
    ], [10, 9, 2], 180);
  });

  it('max, average and global average pooling', async () => {
    await check([
      { kind: 'conv2d', filters: 4, kernel: 3, activation: 'tanh' },
      { kind: 'max_pool', size: 2 },
      { kind: 'conv2d', filters: 6, kernel: 3, activation: 'relu' },
      { kind: 'avg_pool', size: 3, stride: 1 },
      { kind: 'global_avg_pool' },
      { kind: 'dense' },
    ], [8, 8, 2], 128);
  });

  it('batch norm and layer norm on 4-D tensors, identity and projection shortcuts', async () => {
    await check([
      { kind: 'conv2d', filters: 4, kernel: 3, useBias: false },
      { kind: 'batch_norm', activation: 'relu' },
      { kind: 'residual', shortcut: 'identity', activation: 'relu', layers: [
        // Biases before a batch norm have exactly 0 gradient (the mean removes them): float32 noise is no test.
        { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm', activation: 'relu' },
        { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm' },
      ] },
      { kind: 'residual', shortcut: 'projection', scale: 0.5, activation: 'tanh', layers: [
        { kind: 'conv2d', filters: 6, kernel: 3, stride: 2 }, { kind: 'layer_norm', activation: 'relu' }, { kind: 'conv2d', filters: 6, kernel: 3 },
      ] },
      { kind: 'flatten' },
      { kind: 'residual', shortcut: 'projection', layers: [{ kind: 'dense', units: 7, activation: 'tanh' }] },
      { kind: 'dense' },
    ], [8, 8, 2], 128);
  });
});
