// Per-kernel time of one whole layer-graph analysis (the CNN bench's ResNet-20 or plain-20, TF-6block or LSTM-100) on a backend.
//
//   npx tsx bench/profile-graph.ts [native|wasm|cpu] [--workload CNN-resnet20|CNN-plain20|TF-6block|LSTM-100] [--runs N]
//
// Wraps every registered kernel of the backend with a timer after two warm-up analyses, then runs N. The gap
// between the kernel total and the time per analysis is host work (weight draws, statistics, bookkeeping).
import { backendOptions } from '../src/config.js';
import { printKernelTable, timeKernels } from './kernel-timer.js';
import { analyze, initBackend, type BackendChoice } from '../src/engine/index.js';
import type { AnalysisSpecInput } from '../src/schemas/spec.js';
import { cnnAnalysisSpec, CNN_WORKLOADS, type CnnWorkload } from './cnn.js';
import { transformerAnalysisSpec, TRANSFORMER_WORKLOADS } from './transformer.js';
import { lstmAnalysisSpec, RECURRENT_WORKLOADS } from './recurrent.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const backend = (process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'native') as BackendChoice;
const workload = arg('workload') ?? 'CNN-resnet20';
const known: readonly string[] = [...CNN_WORKLOADS, ...TRANSFORMER_WORKLOADS, ...RECURRENT_WORKLOADS];
if (!known.includes(workload)) throw new Error(`--workload: one of ${known.join(', ')}`);
const runs = Number(arg('runs') ?? 3);
const info = await initBackend(backend, backendOptions());
const specOf = (seed: number): Record<string, unknown> =>
  workload === 'TF-6block' ? transformerAnalysisSpec(seed) : workload === 'LSTM-100' ? lstmAnalysisSpec(seed) : cnnAnalysisSpec(workload as CnnWorkload, seed);
const run = async (seed: number): Promise<void> => { await analyze(specOf(seed) as AnalysisSpecInput); };

for (let i = 0; i < 2; i++) await run(i);
const table = timeKernels(info.tfjsBackend);
const t0 = performance.now();
for (let i = 0; i < runs; i++) await run(100 + i);
const perRun = (performance.now() - t0) / runs;
console.log(`${workload} whole analysis on ${info.name} (tfjs ${info.tfjsBackend}): ${perRun.toFixed(1)} ms per analysis (${runs} runs)`);
const total = printKernelTable(table, runs, 0.5);
console.log(`  kernels total ${total.toFixed(1)} ms; outside kernels ${(perRun - total).toFixed(1)} ms`);
