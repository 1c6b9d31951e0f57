// The fixed benchmark workloads and the rows that pair them with PyTorch, shared by bench/run.ts, bench/sampler.ts and bench/table.ts
// (bench/torch_reference.py implements the same workloads).
import type { AnalysisSpecInput } from '../src/schemas/spec.js';
import { CNN_NET, cnnFlops } from './cnn.js';
import { TRANSFORMER_NET, transformerFlops } from './transformer.js';
import { LSTM_NET, lstmFlops } from './recurrent.js';
import { R18, r18Flops } from './onnx-model.js';

/** Backends a row can run on; native-wasm is the native path's other design (wasm + OpenBLAS matmul). */
export const BENCH_BACKENDS = ['native', 'native-wasm', 'wasm', 'cpu', 'webgpu', 'auto'] as const;
export type BenchBackend = (typeof BENCH_BACKENDS)[number];

export const WORKLOADS = ['W1', 'W2', 'W2stats', 'W3', 'W3stats', 'MNIST', 'MNISTx', 'MNISTbig', 'SWEEP', 'TRAIN', 'CNN-resnet20', 'CNN-plain20', 'TF-6block', 'LSTM-100', 'R18-onnx'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface WorkloadInfo {
  name: WorkloadName;
  title: string;
  /** The README table's name for it. */
  short: string;
  /** engine: in-process on the main thread; http: a real listening server with its worker pool. */
  via: 'engine' | 'http';
  /** Floating-point operations per unit of work (a step, an analysis, a cell, a training run). */
  flops: number;
  unit: 'ms' | 'cells/s' | 'steps/s' | 'analyses/s';
  /** Units of work in one sample: 1, or the cells of a sweep, the steps of a training, the analyses of a burst. */
  units: number;
}

/** 2 FLOPs per multiply-add, three products per dense layer (forward, input gradient, weight gradient). */
export function denseFlops(sizes: number[], batch: number): number {
  let f = 0;
  for (let l = 0; l + 1 < sizes.length; l++) f += 6 * batch * sizes[l]! * sizes[l + 1]!;
  return f;
}

export const W2 = { depth: 20, width: 256, batch: 128 };
export const W3 = { depth: 50, width: 512, batch: 256 };
export const MNIST_NET = { depth: 20, width: 256, batch: 128 };
/** The same network on a batch of 1024 (9 GFLOP per analysis). */
export const MNIST_BIG_BATCH = 1024;
export const SWEEP_NET = { depth: 20, width: 64, batch: 64 };
export const TRAIN_NET = { depth: 10, width: 128, batch: 64, steps: 200 };
/** Analyses per MNISTx sample: split evenly over the workers (gradlens) or processes (PyTorch). */
export const MNISTX_BURST = 8;

const uniform = (depth: number, width: number, input: number, output: number): number[] =>
  [input, ...Array.from({ length: depth - 1 }, () => width), output];

/** 10 activations × 6 initialisers = the 60 cells of the sweep workload. */
export const SWEEP_ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'leaky_relu', 'elu', 'selu', 'gelu', 'swish', 'softplus', 'linear'];
export const SWEEP_INITS = ['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_normal', 'orthogonal'];

export const WORKLOAD_INFO: Record<WorkloadName, WorkloadInfo> = {
  W1: { name: 'W1', short: 'W1: textbook chain over HTTP', title: 'W1 textbook 20x1 sigmoid chain, POST /v1/analyses', via: 'http', flops: denseFlops(uniform(20, 1, 1, 1), 1), unit: 'ms', units: 1 },
  W2: { name: 'W2', short: 'W2: 20 × 256², batch 128, fwd + bwd + norms', title: 'W2 step: 20x256, batch 128, fwd+bwd+grad norms', via: 'engine', flops: denseFlops(uniform(W2.depth, W2.width, W2.width, W2.width), W2.batch), unit: 'ms', units: 1 },
  W2stats: { name: 'W2stats', short: 'W2 + every per-layer statistic', title: 'W2 + every per-layer statistic (measureBatch)', via: 'engine', flops: denseFlops(uniform(W2.depth, W2.width, W2.width, W2.width), W2.batch), unit: 'ms', units: 1 },
  W3: { name: 'W3', short: 'W3: 50 × 512², batch 256, fwd + bwd + norms', title: 'W3 step: 50x512, batch 256, fwd+bwd+grad norms', via: 'engine', flops: denseFlops(uniform(W3.depth, W3.width, W3.width, W3.width), W3.batch), unit: 'ms', units: 1 },
  W3stats: { name: 'W3stats', short: 'W3 + every per-layer statistic', title: 'W3 + every per-layer statistic (measureBatch)', via: 'engine', flops: denseFlops(uniform(W3.depth, W3.width, W3.width, W3.width), W3.batch), unit: 'ms', units: 1 },
  MNIST: { name: 'MNIST', short: 'MNIST whole analysis over HTTP (784 → 19 × 256 → 10, batch 128)', title: 'whole analysis MNIST 784-19x256-10, batch 128, POST /v1/analyses', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_NET.batch), unit: 'ms', units: 1 },
  MNISTx: { name: 'MNISTx', short: 'MNIST analyses, one in flight per worker / process', title: 'MNIST analyses, 8 per sample, one request in flight per worker: throughput', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_NET.batch), unit: 'analyses/s', units: MNISTX_BURST },
  MNISTbig: { name: 'MNISTbig', short: 'MNIST analysis, batch 1024', title: 'same on a batch of 1024', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_BIG_BATCH), unit: 'ms', units: 1 },
  SWEEP: { name: 'SWEEP', short: 'sweep, 60 cells (activations × inits, 20 × 64)', title: 'sweep 60 cells (10 activations x 6 inits), 20x64, batch 64, MNIST', via: 'http', flops: denseFlops(uniform(SWEEP_NET.depth, SWEEP_NET.width, 784, 10), SWEEP_NET.batch), unit: 'cells/s', units: SWEEP_ACTIVATIONS.length * SWEEP_INITS.length },
  TRAIN: { name: 'TRAIN', short: 'training, 200 Adam steps (10 × 128, MNIST)', title: 'training 200 Adam steps, 10x128, batch 64, MNIST', via: 'http', flops: denseFlops(uniform(TRAIN_NET.depth, TRAIN_NET.width, 784, 10), TRAIN_NET.batch), unit: 'steps/s', units: TRAIN_NET.steps },
  'CNN-resnet20': { name: 'CNN-resnet20', short: `ResNet-20 whole analysis over HTTP (MNIST 28 × 28 × 1, batch ${CNN_NET.batch})`, title: `whole analysis ResNet-20 (16/32/64, 3 blocks per stage, projection shortcuts), MNIST 28x28x1, batch ${CNN_NET.batch}, POST /v1/analyses`, via: 'http', flops: cnnFlops(true), unit: 'ms', units: 1 },
  'TF-6block': { name: 'TF-6block', short: `6-block transformer whole analysis over HTTP (tokens ${TRANSFORMER_NET.length}, dim ${TRANSFORMER_NET.dim}, batch ${TRANSFORMER_NET.batch})`, title: `whole analysis 6-block post-LN transformer (${TRANSFORMER_NET.heads} heads, dim ${TRANSFORMER_NET.dim}, ffDim ${TRANSFORMER_NET.ffDim}), token sentences of ${TRANSFORMER_NET.length}, batch ${TRANSFORMER_NET.batch}, POST /v1/analyses`, via: 'http', flops: transformerFlops(), unit: 'ms', units: 1 },
  'LSTM-100': { name: 'LSTM-100', short: `LSTM whole analysis over HTTP (${LSTM_NET.steps} steps, ${LSTM_NET.units} units, batch ${LSTM_NET.batch})`, title: `whole analysis lstm ${LSTM_NET.units} units + dense, adding problem of ${LSTM_NET.steps} steps, batch ${LSTM_NET.batch} (layers and throughTime), POST /v1/analyses`, via: 'http', flops: lstmFlops(), unit: 'ms', units: 1 },
  'CNN-plain20': { name: 'CNN-plain20', short: `plain 20-layer CNN whole analysis over HTTP (MNIST 28 × 28 × 1, batch ${CNN_NET.batch})`, title: `whole analysis plain 20-layer CNN (ResNet-20 without shortcuts), MNIST 28x28x1, batch ${CNN_NET.batch}, POST /v1/analyses`, via: 'http', flops: cnnFlops(false), unit: 'ms', units: 1 },
  'R18-onnx': { name: 'R18-onnx', short: `torchvision ResNet-18 imported from ONNX, whole analysis (${R18.shape.join(' × ')})`, title: `whole analysis of torchvision resnet18(num_classes=10) exported to ONNX (11.2 M parameters), batch ${R18.shape.join('x')}, the model-analysis task of POST /v1/analyses with model:{id}`, via: 'engine', flops: r18Flops(), unit: 'ms', units: 1 },
};

export function mnistAnalysisSpec(seed: number, batch = MNIST_NET.batch): AnalysisSpecInput {
  return {
    seed,
    network: { depth: MNIST_NET.depth, width: MNIST_NET.width, activation: 'relu', init: { weights: 'he_normal' } },
    data: { source: 'mnist', batchSize: batch, batches: 1 },
  };
}

export function sweepSpec(seed: number): { base: AnalysisSpecInput; grid: Record<string, unknown[]> } {
  return {
    base: {
      seed,
      network: { depth: SWEEP_NET.depth, width: SWEEP_NET.width },
      data: { source: 'mnist', batchSize: SWEEP_NET.batch, batches: 1 },
    },
    grid: { 'network.activation': SWEEP_ACTIVATIONS, 'network.init.weights': SWEEP_INITS },
  };
}

export function trainingSpec(seed: number): Record<string, unknown> {
  return {
    seed,
    network: { depth: TRAIN_NET.depth, width: TRAIN_NET.width, activation: 'relu', init: { weights: 'he_normal' } },
    data: { source: 'mnist', batchSize: TRAIN_NET.batch },
    steps: TRAIN_NET.steps,
    optimizer: { name: 'adam', learningRate: 0.001 },
  };
}

/**
 * How a row uses the cores, on each side. 1v1: gradlens computes on one thread (the main thread for the
 * engine rows; one pool worker, with the HTTP thread beside it, for the HTTP rows) against one PyTorch
 * process with torch.set_num_threads(1). 2v2: both cores on both sides: two gradlens pool workers against
 * two PyTorch processes of one thread each, which split each sample's work evenly (sweep cells i, i+2, …;
 * half the analyses of a burst each), i.e. what a PyTorch user does with multiprocessing. Every process on
 * both sides has OPENBLAS_NUM_THREADS=1 (and OMP/MKL likewise).
 */
export const PAIRINGS = {
  '1v1': { workers: 1, torchProcesses: 1 },
  '2v2': { workers: 2, torchProcesses: 2 },
} as const;
export type Pairing = keyof typeof PAIRINGS;

export interface RowPlan {
  workload: WorkloadName;
  pairing: Pairing;
}

/** The rows of `npm run bench`, per backend: every workload one against one, the parallel ones also two against two. */
export const ROW_PLANS: RowPlan[] = [
  ...(['W1', 'W2', 'W2stats', 'W3', 'W3stats', 'MNIST', 'MNISTbig', 'SWEEP', 'TRAIN', 'CNN-resnet20', 'CNN-plain20', 'TF-6block', 'LSTM-100', 'R18-onnx'] as const).map((workload) => ({ workload, pairing: '1v1' as const })),
  { workload: 'MNISTx', pairing: '2v2' },
  { workload: 'SWEEP', pairing: '2v2' },
];

/** What each side runs in a row, in words (README and bench table). */
export function sidesOf(plan: RowPlan): { gradlens: string; torch: string } {
  const via = WORKLOAD_INFO[plan.workload].via;
  if (plan.pairing === '2v2') return { gradlens: '2 workers', torch: '2 processes × 1 thread' };
  return { gradlens: via === 'engine' ? '1 thread (in-process)' : '1 worker', torch: '1 thread' };
}
