// Xiong et al. 2020 ("On Layer Normalization in the Transformer Architecture") at initialisation, on a
// 12-block stack over token sequences with a per-position head (flatten → dense: each step's gradient its own),
// post-LN and pre-LN with the same parameters, read from result.blocks:
// - their Theorem 1: the last layer's weight gradient of post-LN is O(d·√ln d), of pre-LN O(d·√(ln d / L)) —
//   pre-LN's final layer norm divides by ‖x_L‖, which grows as √L: post/pre ≈ √L at the last block;
// - post-LN: the signal ∂L/∂h reaching a block shrinks block by block toward the input (each LN divides by the
//   std of x + F(x) while the backward Jacobian I + J_F gains less), so the last block gets several times the first's;
// - pre-LN: the identity path carries the signal untouched, so every block gets about the same.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { NetworkLayerInput } from '../../src/schemas/layers.js';
import type { BlockStats } from '../../src/engine/measure/blocks.js';

beforeAll(async () => {
  await useTestBackend();
});

const L = 12, D = 32, T = 32, VOCAB = 64;

async function blocks(norm: 'pre' | 'post'): Promise<BlockStats> {
  const layers: NetworkLayerInput[] = [{ kind: 'embedding', vocab: VOCAB, dim: D }, { kind: 'positional_encoding' }];
  for (let i = 0; i < L; i++) layers.push({ kind: 'transformer_block', heads: 4, dim: D, ffDim: 4 * D, norm });
  if (norm === 'pre') layers.push({ kind: 'layer_norm', name: 'final_ln' });
  layers.push({ kind: 'flatten' }, { kind: 'dense' });
  const out = await analyze({ seed: 1, network: { input: [T], layers }, data: { source: 'tokens', tokens: { vocab: VOCAB, length: T }, batchSize: 16 } });
  const b = (out.result as { blocks?: BlockStats }).blocks;
  expect(b, 'result.blocks').toBeDefined();
  expect(b!.map((x) => x.norm)).toEqual(new Array(L).fill(norm));
  return b!;
}

describe('post-LN vs pre-LN at initialisation (Xiong et al. 2020)', () => {
  it('post-LN: the last block gets √L times pre-LN\'s gradient, and several times its own first block\'s signal; pre-LN: one size', async () => {
    const post = await blocks('post');
    const pre = await blocks('pre');
    const last = L - 1;
    // Theorem 1's ratio √L (3.46 here); a factor 2 either side leaves room for d = 32's finite-width noise.
    const weightRatio = post[last]!.feedForward.weightGradNorm / pre[last]!.feedForward.weightGradNorm;
    const signalRatio = post[last]!.feedForward.backpropNorm / pre[last]!.feedForward.backpropNorm;
    for (const [what, r] of [['feed-forward weight gradient', weightRatio], ['backprop signal', signalRatio]] as const) {
      expect(r, `post/pre last-block ${what}`).toBeGreaterThan(Math.sqrt(L) / 2);
      expect(r, `post/pre last-block ${what}`).toBeLessThan(2 * Math.sqrt(L));
    }
    // Post-LN: the signal at the last block is over twice the first block's (2.4 to 5.8 over seeds 1–3).
    expect(post[last]!.backpropRelativeToFirst, 'post-LN last/first signal').toBeGreaterThan(2);
    // Pre-LN: every block's signal within [0.5, 1.25] of the first's (0.6 to 1 measured).
    for (const b of pre) {
      expect(b.backpropRelativeToFirst, `${b.path} pre-LN signal relative to the first block`).toBeGreaterThan(0.5);
      expect(b.backpropRelativeToFirst, `${b.path} pre-LN signal relative to the first block`).toBeLessThan(1.25);
    }
  });
});
