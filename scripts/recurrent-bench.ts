// One-off timing of a recurrent layer's forward + backward (issue 14's workload: LSTM, 100 steps, 128 units,
// batch 32) on a chosen backend, against scripts/recurrent_bench_torch.py doing the same work in PyTorch.
// Run: npx tsx scripts/recurrent-bench.ts [native|wasm|cpu] [lstm|gru|simple_rnn]
import { initBackend, recurrentStepTimer, type BackendChoice } from '../src/engine/index.js';
import type { RecurrentLayerKind } from '../src/schemas/vocabulary.js';

const backend = (process.argv[2] ?? 'native') as BackendChoice;
const kind = (process.argv[3] ?? 'lstm') as RecurrentLayerKind;
const workload = { kind, batch: 32, steps: 100, features: 32, units: 128 };
const REPEATS = 5;
await initBackend(backend);
const { step, dispose } = recurrentStepTimer(workload);
step();
const times: number[] = [];
for (let i = 0; i < REPEATS; i++) {
  const t0 = performance.now();
  step();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ backend, ...workload, medianMs: times[Math.floor(REPEATS / 2)], minMs: times[0] }));
dispose();
