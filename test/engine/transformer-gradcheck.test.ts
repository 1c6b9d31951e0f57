// Sequence layers against a float64 PyTorch oracle (test/support/transformer_reference.py, which rebuilds
// them with F.embedding, F.multi_head_attention_forward and F.layer_norm): per row (embedding, attention,
// dense) the weight-gradient, bias-gradient and backprop norms, for attention with and without the causal
// mask, dense and layer norm on the last axis of [time, features], and post-LN and pre-LN transformer blocks
// that share their parameters.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { expectRelClose, torchOracle } from '../support/torch-oracle.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { NetworkLayerInput } from '../../src/schemas/layers.js';


beforeAll(async () => {
  await useTestBackend();
});

interface OracleRow { weightGradNorm: number; biasGradNorm: number | null; backpropNorm: number }
interface Row { path: string; kind: string; weightGradNorm: number; biasGradNorm: number | null; backpropNorm: number }

const oracle = (body: unknown): { loss: number; rows: OracleRow[] } => torchOracle('transformer_reference.py', body);

/** float32 against float64: 1e-4 relative covers rounding (softmax and layer norm included); a wrong scale, mask or layout does not. */
const RTOL = 1e-4;
const close = (actual: number, expected: number, what: string): void => expectRelClose(actual, expected, RTOL, what);

async function check(layers: NetworkLayerInput[], input: number[], data: AnalysisSpecInput['data']): Promise<{ rows: Row[]; parameters: unknown }> {
  const spec: AnalysisSpecInput = { seed: 5, network: { input, layers }, data, include: ['parameters', 'batch'] };
  const before = tf.memory().numTensors;
  const out = await analyze(spec);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  const result = out.result as unknown as { loss: number; layers: Row[]; parameters: unknown; batch: unknown[] };
  const ref = oracle({ spec: out.spec, parameters: result.parameters, batch: result.batch[0] });
  close(result.loss, ref.loss, 'loss');
  expect(ref.rows).toHaveLength(result.layers.length);
  result.layers.forEach((row, i) => {
    close(row.weightGradNorm, ref.rows[i]!.weightGradNorm, `${row.path} weightGradNorm`);
    close(row.backpropNorm, ref.rows[i]!.backpropNorm, `${row.path} backpropNorm`);
    if (row.biasGradNorm !== null) close(row.biasGradNorm, ref.rows[i]!.biasGradNorm!, `${row.path} biasGradNorm`);
  });
  return { rows: result.layers, parameters: result.parameters };
}

/** [n][time][features] inputs with two classes (a smooth function of the position, index and class). */
function sequences(n: number, T: number, Fe: number): { x: number[][][]; y: number[] } {
  const x = Array.from({ length: n }, (_, i) => Array.from({ length: T }, (_, t) => Array.from({ length: Fe }, (_, f) => Math.sin(0.7 * i + 1.3 * t + 0.4 * f) + (i % 2) * 0.5)));
  return { x, y: x.map((_, i) => i % 2) };
}

const TOKENS = { source: 'tokens', tokens: { vocab: 11, length: 7 }, batchSize: 5 } as const;

describe('sequence layers against PyTorch float64', () => {
  it('embedding, sinusoidal positions, multi-head self-attention, dense and layer norm on [time, features], average over time', async () => {
    const { rows } = await check([
      { kind: 'embedding', vocab: 11, dim: 8 },
      { kind: 'positional_encoding' },
      { kind: 'attention', heads: 2 },
      { kind: 'dense', units: 8, activation: 'tanh' },
      { kind: 'layer_norm' },
      { kind: 'global_avg_pool' },
      { kind: 'dense' },
    ], [7], TOKENS);
    expect(rows.map((r) => r.kind)).toEqual(['embedding', 'attention', 'dense', 'dense']);
  });

  it('causal attention on [time, features] input, flattened into the head', async () => {
    const { x, y } = sequences(4, 6, 3);
    await check([
      { kind: 'dense', units: 8 },
      { kind: 'attention', heads: 4, causal: true },
      { kind: 'attention', heads: 2, causal: true, activation: 'relu' },
      { kind: 'flatten' },
      { kind: 'dense' },
    ], [6, 3], { source: 'inline', x, y });
  });

  it('post-LN and pre-LN transformer blocks with the same parameters; a grammaticality target', async () => {
    const stack = (norm: 'pre' | 'post'): NetworkLayerInput[] => [
      { kind: 'embedding', vocab: 11, dim: 8 },
      { kind: 'positional_encoding' },
      { kind: 'transformer_block', heads: 2, dim: 8, ffDim: 16, norm, dropout: 0.1 },
      { kind: 'transformer_block', heads: 4, dim: 8, ffDim: 12, norm, causal: true, ffActivation: 'gelu' },
      ...(norm === 'pre' ? [{ kind: 'layer_norm', name: 'final_ln' } as const] : []),
      { kind: 'global_avg_pool' },
      { kind: 'dense' },
    ];
    const data = { source: 'tokens', tokens: { vocab: 11, length: 7, target: 'grammatical' }, batchSize: 6 } as const;
    const post = await check(stack('post'), [7], data);
    const pre = await check(stack('pre'), [7], data);
    // The same rows in the same order from the same seed: the two variants differ only in where the norms sit.
    const weightsOf = (p: unknown) => (p as { weights: unknown }[]).map((r) => r.weights);
    expect(weightsOf(pre.parameters)).toEqual(weightsOf(post.parameters));
    expect(pre.rows.map((r) => r.weightGradNorm)).not.toEqual(post.rows.map((r) => r.weightGradNorm));
  });
});
