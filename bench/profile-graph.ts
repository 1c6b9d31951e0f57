// Per-kernel time of one whole layer-graph analysis (the CNN bench's ResNet-20 or plain-20) on a backend.
//
//   npx tsx bench/profile-graph.ts [native|wasm|cpu] [--workload CNN-resnet20|CNN-plain20] [--runs N]
//
// Wraps every registered kernel of the backend with a timer after two warm-up analyses, then runs N. The gap
// between the kernel total and the time per analysis is host work (weight draws, statistics, bookkeeping).
import * as tf from '@tensorflow/tfjs';
import { backendOptions } from '../src/config.js';
import { analyze, initBackend, type BackendChoice } from '../src/engine/index.js';
import type { AnalysisSpecInput } from '../src/schemas/spec.js';
import { cnnAnalysisSpec, CNN_WORKLOADS, type CnnWorkload } from './cnn.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const backend = (process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'native') as BackendChoice;
const workload = (arg('workload') ?? 'CNN-resnet20') as CnnWorkload;
if (!CNN_WORKLOADS.includes(workload)) throw new Error(`--workload: one of ${CNN_WORKLOADS.join(', ')}`);
const runs = Number(arg('runs') ?? 3);
const info = await initBackend(backend, backendOptions());
const run = async (seed: number): Promise<void> => { await analyze(cnnAnalysisSpec(workload, seed) as AnalysisSpecInput); };

for (let i = 0; i < 2; i++) await run(i);
const table = new Map<string, { calls: number; ms: number }>();
for (const k of tf.getKernelsForBackend(info.tfjsBackend)) {
  const inner = k.kernelFunc;
  tf.unregisterKernel(k.kernelName, info.tfjsBackend);
  tf.registerKernel({
    ...k,
    kernelFunc: ((args: Parameters<typeof inner>[0]) => {
      const t0 = performance.now();
      const out = inner(args);
      const row = table.get(k.kernelName) ?? { calls: 0, ms: 0 };
      row.calls++;
      row.ms += performance.now() - t0;
      table.set(k.kernelName, row);
      return out;
    }) as typeof inner,
  });
}
const t0 = performance.now();
for (let i = 0; i < runs; i++) await run(100 + i);
const perRun = (performance.now() - t0) / runs;
let total = 0;
console.log(`${workload} whole analysis on ${info.name} (tfjs ${info.tfjsBackend}): ${perRun.toFixed(1)} ms per analysis (${runs} runs)`);
for (const [name, r] of [...table].sort((a, b) => b[1].ms - a[1].ms)) {
  total += r.ms;
  if (r.ms / runs >= 0.5) console.log(`  ${name.padEnd(24)} ${(r.calls / runs).toFixed(0).padStart(5)} calls ${(r.ms / runs).toFixed(1).padStart(9)} ms`);
}
console.log(`  kernels total ${(total / runs).toFixed(1)} ms; outside kernels ${(perRun - total / runs).toFixed(1)} ms`);
