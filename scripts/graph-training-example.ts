// The layer-graph training example of docs/layer-graphs.md: a small ResNet (preset resnet, stages [8, 16], one block
// per stage) trained with Adam on 16×16 shapes; the loss and accuracy at each record, and each row's weight-gradient
// norm and update/weight ratio at the first and the last record.
// Usage: npx tsx scripts/graph-training-example.ts [backend] > scripts/graph-training-example.results.txt
import { backendOptions } from '../src/config.js';
import { initBackend, runTraining, DEFAULT_LIMITS, type BackendChoice } from '../src/engine/index.js';

const backend = await initBackend((process.argv[2] ?? 'cpu') as BackendChoice, backendOptions());
const spec = {
  seed: 3,
  network: { preset: 'resnet' as const, stages: [8, 16], blocksPerStage: 1 },
  data: { source: 'shapes' as const, height: 16, width: 16, samples: 512, batchSize: 32 },
  steps: 150,
  optimizer: { name: 'adam' as const, learningRate: 0.01 },
  recordEvery: 50,
};
console.log(`# backend ${backend.name}; ${JSON.stringify(spec)}`);
const t0 = performance.now();
const { result: r } = await runTraining(spec, DEFAULT_LIMITS);
const f = (v: unknown): string => (typeof v === 'number' ? v.toPrecision(3) : String(v));
console.log(`status ${r.status}; evaluation loss ${f(r.initialLoss)} -> ${f(r.finalLoss)}, accuracy ${f(r.initialAccuracy)} -> ${f(r.finalAccuracy)} (chance ${f(r.chanceAccuracy)}); ${(performance.now() - t0).toFixed(0)} ms`);
console.log(['step', 'loss', 'accuracy', 'firstToLastRatio'].join('\t'));
for (const rec of r.records) console.log([rec.step, f(rec.loss), f(rec.accuracy), f(rec.firstToLastRatio)].join('\t'));
const first = r.records[0]!, last = r.records.at(-2)!;
console.log(`\n${['path', 'kind', 'block', `weightGradNorm@${first.step}`, `weightGradNorm@${last.step}`, `updateToWeightRatio@${first.step}`, `updateToWeightRatio@${last.step}`].join('\t')}`);
for (const l of r.layers) {
  const a = first.layers[l.index]!, b = last.layers[l.index]!;
  console.log([l.path + (l.shortcut ? ' (shortcut)' : ''), l.kind, l.block ?? '-', f(a.weightGradNorm), f(b.weightGradNorm), f(a.updateToWeightRatio), f(b.updateToWeightRatio)].join('\t'));
}
