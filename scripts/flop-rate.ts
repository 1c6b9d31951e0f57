// What one compute thread does per second on the examples the default FLOP budgets are sized from (src/engine/spec/normalize.ts, JOB_FLOPS).
// Usage: npm run build && node dist/scripts/flop-rate.js [backend] > scripts/flop-rate.results.txt
import { cpuUsage } from 'node:process';
import { availableParallelism, loadavg } from 'node:os';
import { backendOptions } from '../src/config.js';
import {
  initBackend, type BackendChoice, prepareTraining, runTraining, expandSweep, analyze, DEFAULT_LIMITS,
} from '../src/engine/index.js';
import { DEEP_MNIST_SWEEP, DEEP_MNIST_TRAINING, README_BENCHMARK_TRAINING } from './budget-examples.js';

// Measured, not admitted: no budget may stop the measurement.
const limits = { ...DEFAULT_LIMITS, maxAnalysisFlops: 1e15, maxAsyncAnalysisFlops: 1e15, maxTrainingFlops: 1e15, maxSweepFlops: 1e15 };

async function measure(name: string, flops: number, run: () => Promise<unknown>): Promise<void> {
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  await run();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log([name, flops.toExponential(3), wallS.toFixed(2), cpuS.toFixed(2), (flops / wallS).toExponential(3), (flops / cpuS).toExponential(3)].join('\t'));
}

/** A sweep's cells one after another on this thread: what one pool worker does for each cell it gets. */
async function sweepInOneThread(sweep: typeof DEEP_MNIST_SWEEP): Promise<void> {
  for (const cell of expandSweep(sweep, limits, 64).cells) await analyze(cell.spec, limits, { budget: 'asyncAnalysis' });
}

const backend = await initBackend((process.argv[2] ?? 'native') as BackendChoice, backendOptions());
console.log(`# backend ${backend.name} (${backend.tfjsBackend}), one thread, ${availableParallelism()} cores, load average before ${loadavg()[0]!.toFixed(2)}`);
console.log(['work', 'estimated FLOPs', 'wall s', 'CPU s', 'FLOP/s (wall)', 'FLOP/s (CPU)'].join('\t'));
await measure('README benchmark training', prepareTraining(README_BENCHMARK_TRAINING, limits).cost.flops, () => runTraining(README_BENCHMARK_TRAINING, limits));
await measure('8-cell 30 x 256 sweep', expandSweep(DEEP_MNIST_SWEEP, limits, 64).cost.flops, () => sweepInOneThread(DEEP_MNIST_SWEEP));
await measure('400-step 30 x 256 training', prepareTraining(DEEP_MNIST_TRAINING, limits).cost.flops, () => runTraining(DEEP_MNIST_TRAINING, limits));
console.log(`# load average after ${loadavg()[0]!.toFixed(2)}`);
