// Transformer stacks through POST /v1/analyses (issue 14): result.blocks for pre-LN and post-LN side by side,
// the post-LN reason and its cures, the written-out normalised spec, and the shape refusals (400 naming the
// layer's field, its path and the shapes) before anything runs.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function post(body: unknown) {
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: body as object });
  return { status: res.statusCode, body: res.json() };
}

const L = 12;
const stack = (norm: 'pre' | 'post') => ({
  seed: 1,
  network: {
    input: [32],
    layers: [
      { kind: 'embedding', vocab: 64, dim: 32 },
      { kind: 'positional_encoding' },
      ...Array.from({ length: L }, () => ({ kind: 'transformer_block', heads: 4, dim: 32, ffDim: 128, norm })),
      ...(norm === 'pre' ? [{ kind: 'layer_norm', name: 'final_ln' }] : []),
      { kind: 'flatten' },
      { kind: 'dense' },
    ],
  },
  data: { source: 'tokens', tokens: { vocab: 64, length: 32 }, batchSize: 16 },
});

interface Block { path: string; norm: string; attention: { path: string; row: number; weightGradNorm: number }; feedForward: { paths: string[]; backpropNorm: number }; backpropRelativeToFirst: number }

describe('transformer stacks through the API', () => {
  it('returns result.blocks for a pre-LN and a post-LN stack, with the post-LN reason and its cures', async () => {
    const [postLn, preLn] = [await post(stack('post')), await post(stack('pre'))];
    expect(postLn.status).toBe(200);
    expect(preLn.status).toBe(200);
    const pb: Block[] = postLn.body.result.blocks, qb: Block[] = preLn.body.result.blocks;
    expect(pb.map((b) => b.path)).toEqual(Array.from({ length: L }, (_, i) => `transformer${i + 1}`));
    expect(pb[0]).toMatchObject({ norm: 'post', attention: { path: 'transformer1.attn.attention', row: 1 }, feedForward: { paths: ['transformer1.ff.dense1', 'transformer1.ff.dense2'] } });
    expect(postLn.body.result.layers[1]).toMatchObject({ kind: 'attention', outputShape: [32, 32], block: 'transformer1.attn' });
    // The normalised spec writes each block out: post-LN as residual, layer_norm, residual, layer_norm.
    expect(postLn.body.spec.network.layers.slice(2, 6).map((l: { kind: string; name: string }) => `${l.kind}:${l.name}`))
      .toEqual(['residual:transformer1.attn', 'layer_norm:transformer1.ln1', 'residual:transformer1.ff', 'layer_norm:transformer1.ln2']);
    // Xiong et al. 2020: post-LN's last block gets about √L times pre-LN's (test/engine/transformer-depth.test.ts has the margins).
    expect(pb[L - 1]!.feedForward.backpropNorm / qb[L - 1]!.feedForward.backpropNorm).toBeGreaterThan(Math.sqrt(L) / 2);
    const why = (body: { result: { summary: { reasons: string[] } } }) => body.result.summary.reasons.filter((r) => r.startsWith('Post-LN'));
    expect(why(postLn.body)).toHaveLength(1);
    expect(why(postLn.body)[0]).toMatch(/Xiong et al\. 2020.*warm-up.*norm "pre"/);
    expect(why(preLn.body)).toEqual([]);
  });

  it('refuses shapes a sequence layer cannot read with a 400 naming the field, the path and the shapes', async () => {
    const data = { source: 'tokens', tokens: { vocab: 10, length: 8 }, batchSize: 4 };
    const flatAttention = await post({ network: { input: [8], layers: [{ kind: 'attention', heads: 2 }, { kind: 'dense' }] }, data });
    expect(flatAttention.status).toBe(400);
    expect(flatAttention.body.message).toMatch(/network\.layers\[0\] \(attn1\): attention reads a \[time, features\] sequence but gets \[8\]/);
    const heads = await post({ network: { input: [8], layers: [{ kind: 'embedding', vocab: 10, dim: 6 }, { kind: 'attention', heads: 4 }, { kind: 'global_avg_pool' }, { kind: 'dense' }] }, data });
    expect(heads.status).toBe(400);
    expect(heads.body.message).toMatch(/\(attn1\): 4 heads do not divide the input's width 6 \(input \[8, 6\]\)/);
    const width = await post({ network: { input: [8], layers: [{ kind: 'embedding', vocab: 10, dim: 6 }, { kind: 'transformer_block', heads: 2, dim: 8, ffDim: 8 }, { kind: 'global_avg_pool' }, { kind: 'dense' }] }, data });
    expect(width.status).toBe(400);
    expect(width.body.message).toMatch(/\(transformer1\.ff\): an identity shortcut needs the branch to keep its input.s shape, but the branch maps \[8, 6\] to \[8, 8\]/);
    const standardized = await post({ network: { input: [8], layers: [{ kind: 'embedding', vocab: 10, dim: 6 }, { kind: 'global_avg_pool' }, { kind: 'dense' }] }, data: { ...data, normalize: 'standardize' } });
    expect(standardized.status).toBe(400);
    expect(standardized.body.message).toMatch(/embed1 \(embedding\) reads integer token ids/);
  });
});
