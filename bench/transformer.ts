// The transformer workload of the benchmark (issue 14): a 6-block post-LN transformer on token sentences of 64,
// dim 128, batch 32 — one whole analysis over HTTP — and its FLOPs. bench/torch_reference.py's
// transformer_analysis() builds the same network in PyTorch (nn.MultiheadAttention, nn.LayerNorm) and does the
// same work: one forward, one backward, every weight's gradient norm and every row's backprop norm.
export const TRANSFORMER_WORKLOADS = ['TF-6block'] as const;
export type TransformerWorkload = (typeof TRANSFORMER_WORKLOADS)[number];

export const TRANSFORMER_NET = { blocks: 6, length: 64, dim: 128, heads: 4, ffDim: 512, vocab: 64, batch: 32 } as const;

/** One sample's request: embedding, sinusoidal positions, 6 post-LN blocks, average over time, dense over the vocabulary. */
export function transformerAnalysisSpec(seed: number): Record<string, unknown> {
  const n = TRANSFORMER_NET;
  return {
    seed,
    network: {
      input: [n.length],
      layers: [
        { kind: 'embedding', vocab: n.vocab, dim: n.dim },
        { kind: 'positional_encoding' },
        ...Array.from({ length: n.blocks }, () => ({ kind: 'transformer_block', heads: n.heads, dim: n.dim, ffDim: n.ffDim, norm: 'post' })),
        { kind: 'global_avg_pool' },
        { kind: 'dense' },
      ],
    },
    data: { source: 'tokens', tokens: { vocab: n.vocab, length: n.length }, batchSize: n.batch, batches: 1 },
  };
}

/**
 * FLOPs of one analysis: three products (forward, input gradient, weight gradient) of 2 FLOPs per multiply-add
 * for the weights (embedding as one_hot·E, the four attention projections, the two feed-forward layers, the head),
 * and forward plus two backward products for QKᵀ and PV. Softmax, layer norm and the statistics are left out.
 */
export function transformerFlops(n = TRANSFORMER_NET): number {
  const T = n.length, D = n.dim;
  const perBlock = 4 * D * D + 2 * D * n.ffDim;
  const weights = n.vocab * D + n.blocks * perBlock + D * n.vocab / T;
  const scores = n.blocks * 2 * T * D;
  return 6 * n.batch * T * (weights + scores);
}
