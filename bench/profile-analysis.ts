// Per-kernel time of one W2 analysis batch (measureBatch) on a backend: where the engine's time goes, kernel by kernel.
//
//   npx tsx bench/profile-analysis.ts [native|wasm|cpu] [--statistics host|device] [--steps N]
//
// Wraps every registered kernel of the backend with a timer after warm-up (30 batches), then runs N
// batches. Host-side work (statistics reductions, bookkeeping) is the gap between the kernel total and
// the time per batch. For a whole analysis over HTTP, profile with node --cpu-prof instead.
import * as tf from '@tensorflow/tfjs';
import { backendOptions } from '../src/config.js';
import { printKernelTable, timeKernels } from './kernel-timer.js';
import {
  initBackend, type BackendChoice, measureBatch, DEFAULT_SATURATION_THRESHOLD, normalizeSpec,
  initParameters, Rng,
} from '../src/engine/index.js';
import { W2 } from './workloads.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const backend = (process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'native') as BackendChoice;
const statistics = (arg('statistics') ?? 'host') as 'host' | 'device';
const steps = Number(arg('steps') ?? 30);
const info = await initBackend(backend, backendOptions());

const rng = new Rng(1);
const rows = (n: number, d: number): number[][] => Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
const { spec, dataset } = normalizeSpec({
  seed: 1,
  network: { depth: W2.depth, width: W2.width, activation: 'relu', outputActivation: 'linear', init: { weights: 'he_normal' } },
  data: { source: 'inline', x: rows(W2.batch, W2.width), y: rows(W2.batch, W2.width), batchSize: W2.batch },
  loss: 'mse',
});
const params = initParameters(spec.network, spec.seed);
const weights = params.layers.map((l) => tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units]));
const biases = params.layers.map((l) => tf.tensor1d(params.biases[l.index]!));
const x = tf.tensor2d(dataset.x, [W2.batch, W2.width]);
const y = tf.tensor2d(dataset.y, [W2.batch, W2.width]);
const run = async (): Promise<void> => {
  await measureBatch({ layers: params.layers, weights, biases, residualScale: 1, loss: 'mse', x, y, saturationThreshold: DEFAULT_SATURATION_THRESHOLD, statistics });
};

for (let i = 0; i < 30; i++) await run();
const table = timeKernels(info.tfjsBackend);
const t0 = performance.now();
for (let i = 0; i < steps; i++) await run();
const perStep = (performance.now() - t0) / steps;
console.log(`W2 analysis batch on ${info.name} (tfjs ${info.tfjsBackend}), ${statistics} statistics: ${perStep.toFixed(1)} ms per batch (${steps} batches)`);
const total = printKernelTable(table, steps, 0);
console.log(`  kernels total ${total.toFixed(1)} ms; outside kernels ${(perStep - total).toFixed(1)} ms`);
