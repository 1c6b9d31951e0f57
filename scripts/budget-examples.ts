// Ordinary work the default FLOP budgets must admit (issue 10, defect 3): the spec of each, shared by the budget test and scripts/flop-rate.ts.
import type { TrainingSpecInput } from '../src/schemas/training.js';
import type { SweepSpecInput } from '../src/schemas/sweep.js';

/** The README's benchmark training: 200 Adam steps of a 10 × 128 MNIST MLP (about 2.5e10 FLOPs). */
export const README_BENCHMARK_TRAINING: TrainingSpecInput = {
  network: { depth: 10, width: 128 },
  data: { source: 'mnist', batchSize: 64 },
  steps: 200,
  optimizer: { name: 'adam' },
};

/** 400 SGD steps of a 30 × 256 MNIST MLP on batches of 256 (about 1.4e12 FLOPs). */
export const DEEP_MNIST_TRAINING: TrainingSpecInput = {
  network: { depth: 30, width: 256, init: { weights: 'he_normal' } },
  data: { source: 'mnist', batchSize: 256 },
  steps: 400,
  optimizer: { name: 'sgd', learningRate: 0.01 },
};

/** An 8-cell sweep of that network: 4 activations × 2 initialisations (about 2.5e10 FLOPs). */
export const DEEP_MNIST_SWEEP: SweepSpecInput = {
  base: { network: { depth: 30, width: 256 }, data: { source: 'mnist', batchSize: 256 } },
  grid: { 'network.activation': ['relu', 'tanh', 'sigmoid', 'gelu'], 'network.init.weights': ['he_normal', 'glorot_uniform'] },
};
