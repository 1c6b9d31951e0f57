// The fixed benchmark workloads of issue 5, shared by the gradlens side (bench/run.ts) and described for bench/torch_reference.py.
import type { AnalysisSpecInput } from '../src/schemas/spec.js';

export const WORKLOADS = ['W1', 'W2', 'W2stats', 'W3', 'W3stats', 'MNIST', 'MNISTx', 'MNISTbig', 'SWEEP', 'TRAIN'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface WorkloadInfo {
  name: WorkloadName;
  title: string;
  /** engine: in-process on the main thread; http: a real listening server with its worker pool. */
  via: 'engine' | 'http';
  /** Floating-point operations per unit of work (a step, an analysis, a cell, a training run). */
  flops: number;
  unit: 'ms' | 'cells/s' | 'steps/s' | 'analyses/s';
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
/** The same network on a batch of 1024 (9 GFLOP): the case for splitting one analysis across workers (--split). */
export const MNIST_BIG_BATCH = 1024;
export const SWEEP_NET = { depth: 20, width: 64, batch: 64 };
export const TRAIN_NET = { depth: 10, width: 128, batch: 64, steps: 200 };

const uniform = (depth: number, width: number, input: number, output: number): number[] =>
  [input, ...Array.from({ length: depth - 1 }, () => width), output];

/** 10 activations × 6 initialisers = the 60 cells of the sweep workload. */
export const SWEEP_ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'leaky_relu', 'elu', 'selu', 'gelu', 'swish', 'softplus', 'linear'];
export const SWEEP_INITS = ['glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_normal', 'orthogonal'];

export const WORKLOAD_INFO: Record<WorkloadName, WorkloadInfo> = {
  W1: { name: 'W1', title: 'W1 textbook 20x1 sigmoid chain, POST /v1/analyses', via: 'http', flops: denseFlops(uniform(20, 1, 1, 1), 1), unit: 'ms' },
  W2: { name: 'W2', title: 'W2 step: 20x256, batch 128, fwd+bwd+grad norms', via: 'engine', flops: denseFlops(uniform(W2.depth, W2.width, W2.width, W2.width), W2.batch), unit: 'ms' },
  W2stats: { name: 'W2stats', title: 'W2 + every per-layer statistic (measureBatch)', via: 'engine', flops: denseFlops(uniform(W2.depth, W2.width, W2.width, W2.width), W2.batch), unit: 'ms' },
  W3: { name: 'W3', title: 'W3 step: 50x512, batch 256, fwd+bwd+grad norms', via: 'engine', flops: denseFlops(uniform(W3.depth, W3.width, W3.width, W3.width), W3.batch), unit: 'ms' },
  W3stats: { name: 'W3stats', title: 'W3 + every per-layer statistic (measureBatch)', via: 'engine', flops: denseFlops(uniform(W3.depth, W3.width, W3.width, W3.width), W3.batch), unit: 'ms' },
  MNIST: { name: 'MNIST', title: 'whole analysis MNIST 784-19x256-10, batch 128, POST /v1/analyses', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_NET.batch), unit: 'ms' },
  MNISTx: { name: 'MNISTx', title: 'same, one request in flight per worker: throughput', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_NET.batch), unit: 'analyses/s' },
  MNISTbig: { name: 'MNISTbig', title: 'same on a batch of 1024 (with --split: across idle workers)', via: 'http', flops: denseFlops(uniform(MNIST_NET.depth, MNIST_NET.width, 784, 10), MNIST_BIG_BATCH), unit: 'ms' },
  SWEEP: { name: 'SWEEP', title: 'sweep 60 cells (10 activations x 6 inits), 20x64, batch 64, MNIST', via: 'http', flops: denseFlops(uniform(SWEEP_NET.depth, SWEEP_NET.width, 784, 10), SWEEP_NET.batch), unit: 'cells/s' },
  TRAIN: { name: 'TRAIN', title: 'training 200 Adam steps, 10x128, batch 64, MNIST', via: 'http', flops: denseFlops(uniform(TRAIN_NET.depth, TRAIN_NET.width, 784, 10), TRAIN_NET.batch), unit: 'steps/s' },
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
