// Recurrent layer graphs against a float64 PyTorch oracle (test/support/recurrent_reference.py): simple_rnn,
// lstm and gru rebuilt with PyTorch's own cells from the parameters the analysis returns (weight_ih = Wᵀ,
// weight_hh = Uᵀ, PyTorch's gate order), their weight, bias and recurrent-kernel gradient norms and the
// through-time norms √B·‖∂L/∂h_t‖ at every step compared with autograd's.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { expectRelClose, torchOracle } from '../support/torch-oracle.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { LayerInput } from '../../src/schemas/layers.js';
import { Rng } from '../../src/engine/common/random.js';


beforeAll(async () => {
  await useTestBackend();
});

interface OracleRow { weightGradNorm: number; biasGradNorm: number; recurrentGradNorm?: number; recurrentBiasGradNorm?: number; stepNorms?: number[] }

const oracle = (body: unknown): { loss: number; rows: OracleRow[] } => torchOracle('recurrent_reference.py', body);

/** float32 time loops against float64: 1e-4 relative covers rounding over tens of steps; a wrong gate or layout does not. */
const RTOL = 1e-4;
const close = (actual: number, expected: number, what: string): void => expectRelClose(actual, expected, RTOL, what);

/** Inline sequences [batch][time][features] with a regression target per sequence. */
function sequences(B: number, T: number, F: number, seed: number): { x: number[][][]; y: number[][] } {
  const rng = new Rng(seed);
  const x = Array.from({ length: B }, () => Array.from({ length: T }, () => Array.from({ length: F }, () => rng.normal())));
  return { x, y: x.map(() => [rng.normal()]) };
}

type Row = { path: string; weightGradNorm: number; biasGradNorm: number | null; auxParameters?: { name: string; gradNorm: number }[] };

async function check(layers: LayerInput[], T: number, F: number): Promise<void> {
  const { x, y } = sequences(5, T, F, 11);
  const spec: AnalysisSpecInput = { seed: 4, network: { input: [T, F], layers }, data: { source: 'inline', x, y }, loss: 'mse', include: ['parameters', 'batch'] };
  const before = tf.memory().numTensors;
  const out = await analyze(spec);
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  const result = out.result as unknown as { loss: number; layers: Row[]; parameters: unknown; batch: unknown[]; throughTime: { layer: number; norms: number[] }[] };
  const ref = oracle({ spec: out.spec, parameters: result.parameters, batch: result.batch[0] });
  close(result.loss, ref.loss, 'loss');
  expect(ref.rows).toHaveLength(result.layers.length);
  result.layers.forEach((row, i) => {
    const r = ref.rows[i]!;
    close(row.weightGradNorm, r.weightGradNorm, `${row.path} weightGradNorm`);
    close(row.biasGradNorm!, r.biasGradNorm, `${row.path} biasGradNorm`);
    if (r.recurrentGradNorm === undefined) return;
    const aux = new Map((row.auxParameters ?? []).map((a) => [a.name, a.gradNorm]));
    close(aux.get('recurrent_kernel')!, r.recurrentGradNorm, `${row.path} recurrent_kernel gradNorm`);
    if (r.recurrentBiasGradNorm !== undefined) close(aux.get('recurrent_bias')!, r.recurrentBiasGradNorm, `${row.path} recurrent_bias gradNorm`);
    const entry = result.throughTime.find((e) => e.layer === i)!;
    expect(entry.norms).toHaveLength(T);
    entry.norms.forEach((v, t) => close(v, r.stepNorms![t]!, `${row.path} ‖∂L/∂h_${t}‖`));
  });
}

const PT = 'pytorch_default';

describe('recurrent layer gradients against PyTorch float64 cells', () => {
  it('simple_rnn (tanh, Keras-default glorot/orthogonal init) and the IRNN (relu, identity recurrent kernel)', async () => {
    await check([{ kind: 'simple_rnn', units: 6, init: { bias: { name: 'random_uniform', min: -0.3, max: 0.3 } } }, { kind: 'dense', units: 1 }], 9, 3);
    await check([{ kind: 'simple_rnn', units: 5, activation: 'relu', init: { recurrent: { name: 'identity', gain: 1 } } }, { kind: 'dense', units: 1 }], 8, 2);
  });

  it('lstm with PyTorch\'s default init and a forget-gate bias of 1 (gate order i, f, g, o)', async () => {
    await check([{ kind: 'lstm', units: 6, forgetBias: 1, init: { weights: PT, recurrent: PT, bias: PT } }, { kind: 'dense', units: 1 }], 10, 3);
  });

  it('gru with PyTorch\'s default init: r multiplies (W_hn h + b_hn) (gate order r, z, n)', async () => {
    await check([{ kind: 'gru', units: 5, init: { weights: PT, recurrent: PT, bias: PT } }, { kind: 'dense', units: 1 }], 10, 3);
  });

  it('stacked: lstm with returnSequences into a gru into the head', async () => {
    await check([
      { kind: 'lstm', units: 4, returnSequences: true, init: { bias: PT } },
      { kind: 'gru', units: 3, init: { bias: PT } },
      { kind: 'dense', units: 1 },
    ], 7, 2);
  });
});
