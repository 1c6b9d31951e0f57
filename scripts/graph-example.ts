// The layer-graph example of docs/layer-graphs.md: ResNet-20 against its plain counterpart on MNIST, one row per
// dense/conv2d layer (path, kind, output shape, backprop signal), and the summary of each.
// Usage: npx tsx scripts/graph-example.ts [backend] > scripts/graph-example.results.txt
import { backendOptions } from '../src/config.js';
import { initBackend, analyze, DEFAULT_LIMITS, type BackendChoice } from '../src/engine/index.js';

const backend = await initBackend((process.argv[2] ?? 'cpu') as BackendChoice, backendOptions());
console.log(`# backend ${backend.name}; network { preset, stages [8, 16, 32], blocksPerStage 3 }, data { mnist, batchSize 4 }, seed 42`);
for (const preset of ['resnet', 'plain_cnn'] as const) {
  const t0 = performance.now();
  const out = await analyze({ network: { preset, stages: [8, 16, 32], blocksPerStage: 3 }, data: { source: 'mnist', batchSize: 4 } }, DEFAULT_LIMITS);
  const r = out.result as unknown as { layers: { path: string; kind: string; outputShape: number[]; backpropNorm: number; weightGradNorm: number; deadFraction: number | null; shortcut: boolean }[]; summary: { verdict: string; backpropFirstToLastRatio: number; backpropLogSlope: { slope: number } | null } };
  console.log(`\n## ${preset}: ${r.layers.length} rows, verdict ${r.summary.verdict}, backpropFirstToLastRatio ${r.summary.backpropFirstToLastRatio.toPrecision(3)}, backpropLogSlope ${r.summary.backpropLogSlope?.slope.toPrecision(3)}, ${(performance.now() - t0).toFixed(0)} ms, ${out.cost.flops.toExponential(2)} estimated FLOPs`);
  console.log(['path', 'kind', 'outputShape', 'backpropNorm', 'weightGradNorm', 'deadFraction'].join('\t'));
  for (const l of r.layers) console.log([l.path + (l.shortcut ? ' (shortcut)' : ''), l.kind, `[${l.outputShape.join(',')}]`, l.backpropNorm.toPrecision(3), l.weightGradNorm.toPrecision(3), l.deadFraction?.toFixed(3) ?? 'null'].join('\t'));
}
