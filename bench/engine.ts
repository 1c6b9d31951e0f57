// Engine-level workloads W2/W3: a gradient step and a full per-layer measurement through src/engine, on the main thread.
import * as tf from '@tensorflow/tfjs';
import {
  normalizeSpec, activationsFor, forward, initParameters, lossOf, measureBatch,
  DEFAULT_SATURATION_THRESHOLD, Rng,
} from '../src/engine/index.js';
import type { AnalysisSpecInput } from '../src/schemas/spec.js';

export interface DenseCase {
  depth: number;
  width: number;
  batch: number;
}

export interface EngineBench {
  /** One forward + backward with every weight- and bias-gradient norm read back once (asynchronously: webgpu cannot read synchronously). */
  step(): Promise<Float32Array>;
  /** measureBatch: the analysis's per-batch work (probes for ∂L/∂h, every statistic, one read-back). */
  stats(): Promise<number>;
  dispose(): void;
}

/**
 * W2/W3 as the engine builds them: ReLU hidden layers, He-normal weights, zero biases, linear output,
 * MSE against random targets, inputs N(0, 1). Built through normalizeSpec and initParameters so that
 * the network is exactly what an analysis of the same spec would run.
 */
export function denseBench(c: DenseCase, seed = 1): EngineBench {
  const rng = new Rng(seed);
  const rows = (n: number, d: number): number[][] => Array.from({ length: n }, () => Array.from({ length: d }, () => rng.normal()));
  const input: AnalysisSpecInput = {
    seed,
    network: { depth: c.depth, width: c.width, activation: 'relu', outputActivation: 'linear', init: { weights: 'he_normal' } },
    data: { source: 'inline', x: rows(c.batch, c.width), y: rows(c.batch, c.width), batchSize: c.batch, batches: 1 },
    loss: 'mse',
  };
  const { spec, dataset } = normalizeSpec(input, { maxDepth: 1000, maxWidth: 1 << 16, maxBatchSize: 1 << 16, maxBatches: 64, maxInlineRows: 1 << 20, maxAnalysisFlops: 1e15, maxAsyncAnalysisFlops: 1e15, maxTrainingFlops: 1e15, maxSweepFlops: 1e15, maxParameters: 1e9 });
  const params = initParameters(spec.network, spec.seed);
  const layers = params.layers;
  const acts = activationsFor(layers);
  const weights = layers.map((l) => tf.variable(tf.tensor2d(params.weights[l.index]!, [l.inputUnits, l.units]), true));
  const biases = layers.map((l) => tf.variable(tf.tensor1d(params.biases[l.index]!), true));
  const x = tf.tensor2d(dataset.x, [c.batch, c.width]);
  const y = tf.tensor2d(dataset.y, [c.batch, c.width]);

  const step = async (): Promise<Float32Array> => {
    const norms = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        const { logits, output } = forward({ layers, acts, residualScale: 1, weights, biases, probes: null, x });
        return lossOf('mse', layers[layers.length - 1]!.activation, logits, output, y);
      }, [...weights, ...biases]);
      // sqrt(sum(square)) rather than tf.norm, which goes through Pow and Abs (7x slower, notes).
      return tf.stack(Object.values(grads).map((g) => tf.sqrt(tf.sum(tf.square(g)))));
    });
    try {
      return (await norms.data()) as Float32Array;
    } finally {
      norms.dispose();
    }
  };

  const stats = async (): Promise<number> => {
    const m = await measureBatch({ layers, weights, biases, residualScale: 1, loss: 'mse', x, y, saturationThreshold: DEFAULT_SATURATION_THRESHOLD });
    return m.readings.reduce((s, r) => s + r.gradNorm, 0);
  };

  return { step, stats, dispose: () => tf.dispose([...weights, ...biases, x, y]) };
}
