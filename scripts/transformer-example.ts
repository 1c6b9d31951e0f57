// The transformer example of docs/sequence-models.md: a 12-block post-LN stack against the same stack in pre-LN
// form (same parameters) on token sentences at initialisation, result.blocks side by side (Xiong et al. 2020).
// Usage: npx tsx scripts/transformer-example.ts [backend] > scripts/transformer-example.results.txt
import { backendOptions } from '../src/config.js';
import { initBackend, analyze, DEFAULT_LIMITS, type BackendChoice } from '../src/engine/index.js';
import type { BlockStats } from '../src/engine/index.js';
import type { NetworkLayerInput } from '../src/schemas/layers.js';

const backend = await initBackend((process.argv[2] ?? 'cpu') as BackendChoice, backendOptions());
const L = 12;
console.log(`# backend ${backend.name}; embedding(64 → 32), sinusoidal positions, ${L} × transformer_block { heads 4, dim 32, ffDim 128 }, (pre: final layer_norm), flatten, dense; data { tokens { vocab 64, length 32 }, batchSize 16 }, seed 1`);
const runs: Record<string, { blocks: BlockStats; reasons: string[] }> = {};
for (const norm of ['post', 'pre'] as const) {
  const layers: NetworkLayerInput[] = [{ kind: 'embedding', vocab: 64, dim: 32 }, { kind: 'positional_encoding' }];
  for (let i = 0; i < L; i++) layers.push({ kind: 'transformer_block', heads: 4, dim: 32, ffDim: 128, norm });
  if (norm === 'pre') layers.push({ kind: 'layer_norm', name: 'final_ln' });
  layers.push({ kind: 'flatten' }, { kind: 'dense' });
  const t0 = performance.now();
  const out = await analyze({ seed: 1, network: { input: [32], layers }, data: { source: 'tokens', tokens: { vocab: 64, length: 32 }, batchSize: 16 } }, DEFAULT_LIMITS);
  const r = out.result as unknown as { blocks: BlockStats; summary: { reasons: string[] } };
  runs[norm] = { blocks: r.blocks, reasons: r.summary.reasons.filter((s) => s.startsWith('Post-LN')) };
  console.log(`# ${norm}-LN: ${(performance.now() - t0).toFixed(0)} ms`);
}
console.log(['block', 'post attention ‖∂W‖', 'post feed-forward ‖∂W‖', 'post signal', 'post signal/first', 'pre attention ‖∂W‖', 'pre feed-forward ‖∂W‖', 'pre signal', 'pre signal/first'].join('\t'));
runs.post!.blocks.forEach((p, i) => {
  const q = runs.pre!.blocks[i]!;
  const cols = (b: BlockStats[number]) => [b.attention.weightGradNorm.toPrecision(3), b.feedForward.weightGradNorm.toPrecision(3), b.feedForward.backpropNorm.toPrecision(3), b.backpropRelativeToFirst.toFixed(2)];
  console.log([p.path, ...cols(p), ...cols(q)].join('\t'));
});
const last = L - 1;
console.log(`# last block post/pre: feed-forward ‖∂W‖ ${(runs.post!.blocks[last]!.feedForward.weightGradNorm / runs.pre!.blocks[last]!.feedForward.weightGradNorm).toFixed(2)}, signal ${(runs.post!.blocks[last]!.feedForward.backpropNorm / runs.pre!.blocks[last]!.feedForward.backpropNorm).toFixed(2)}; √L = ${Math.sqrt(L).toFixed(2)}`);
console.log(`# post-LN reason: ${runs.post!.reasons[0] ?? '(none)'}`);
console.log(`# pre-LN reasons: ${runs.pre!.reasons.length}`);
