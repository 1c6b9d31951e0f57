// Gradients through time (issue 14): for every recurrent layer, ‖∂L/∂h_t‖ at each step t from zero probes
// added to every h_t (model/recurrent-forward.ts), so the gradient at a probe is the total derivative
// through every later step; the forget (lstm) or update (gru) gate over time; then the fit, the memory
// horizon, Pascanu et al.'s conditions and the verdict (diagnosis/through-time-verdict.ts).
import * as tf from '@tensorflow/tfjs';
import type { NormalizedSpec } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import type { GraphParameters } from '../model/graph-params.js';
import { graphForward } from '../model/graph-forward.js';
import { lossOf } from '../model/network.js';
import { isRecurrentNode, type RecurrentNode } from '../spec/recurrent-types.js';
import { analysisBatches, DEFAULT_SATURATION_THRESHOLD } from './measure.js';
import { graphTensors } from './graph-measure.js';
import type { GraphTensors } from '../model/graph-forward.js';
import { hostReader } from './measure.js';
import type { NormalizedGraph } from '../spec/graph-types.js';

/** Per step of one layer, averaged over the batches. */
export interface StepReadings {
  row: number;
  node: RecurrentNode;
  /** RMS over the examples of ‖∂ℓ_i/∂h_t‖ (ℓ_i the example's loss), mean over batches: √B·‖∂L/∂h_t‖_F for the batch mean L. */
  norms: number[];
  /** lstm forget gate f_t, gru update gate z_t: mean over examples and units, and the saturated fraction. */
  gate: { name: 'forget' | 'update'; mean: number[]; saturated: number[] } | null;
}

export { gateStats, throughTimeTaps, type BatchSteps, type ThroughTimeTaps } from './through-time-taps.js';
import { throughTimeTaps, type BatchSteps } from './through-time-taps.js';

/** One batch's readings: per recurrent layer (graph order) the step norms and the gate's per-step statistics. */
export type BatchStepReadings = BatchSteps;

export interface StepBatchArgs {
  spec: NormalizedSpec;
  /** The parameters as tensors (left as they are): a training's current list through graphTensorsOf. */
  tensors: GraphTensors;
  x: tf.Tensor;
  y: tf.Tensor2D | null;
  saturation: number;
  /** A training step's dropout masks; none for analyses (dropout is the identity). */
  dropoutSeed?: number | null;
}

/**
 * One batch on a forward and backward of its own, for the step norms and gate statistics: a training's records,
 * and an analysis of a graph with dropout in mode "train" (whose own pass drops). Leaves no tensors.
 */
export async function measureStepBatch({ spec, tensors, x, y, saturation, dropoutSeed = null }: StepBatchArgs): Promise<BatchStepReadings> {
  const graph = spec.network.graph!;
  const taps = throughTimeTaps(graph, x.shape[0]!);
  tf.engine().startScope();
  try {
    const f = (...flat: tf.Tensor[]): tf.Scalar => {
      const run = graphForward(graph, tensors, x, null, { hooks: taps.hooks(flat), dropoutSeed });
      return lossOf(spec.loss, spec.network.outputActivation, run.logits, run.output, y);
    };
    const { grads } = tf.valueAndGrads(f)(taps.probes);
    const t = taps.tensorsOf(grads);
    return taps.read(t, await hostReader([...t.norms, ...t.gates]), saturation);
  } finally {
    // The gates were kept past autodiff's scope: released here.
    taps.dispose();
    tf.engine().endScope();
  }
}

/** Every recurrent layer's readings, averaged over the batches' step readings. */
export function stepReadings(graph: NormalizedGraph, per: BatchSteps[]): StepReadings[] {
  return graph.rows.filter((r) => isRecurrentNode(r.node)).map((r, i) => {
    const node = r.node as RecurrentNode;
    const gated = node.kind !== 'simple_rnn';
    return {
      row: r.index, node,
      norms: average(per.map((p) => p.norms[i]!)),
      gate: gated ? { name: node.kind === 'lstm' ? 'forget' : 'update', mean: average(per.map((p) => p.gateMean[i]!)), saturated: average(per.map((p) => p.gateSat[i]!)) } : null,
    };
  });
}

const average = (runs: number[][]): number[] => runs[0]!.map((_, t) => runs.reduce((s, r) => s + r[t]!, 0) / runs.length);

/** The step readings of every recurrent layer over the analysis's batches (the same batches as result.layers). */
export async function measureThroughTime(spec: NormalizedSpec, dataset: Dataset, params: GraphParameters): Promise<StepReadings[]> {
  const graph = spec.network.graph!;
  const rows = graph.rows.filter((r) => isRecurrentNode(r.node));
  if (rows.length === 0) return [];
  const { batches, targets } = analysisBatches(spec, dataset);
  const saturation = spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD;
  const per: BatchStepReadings[] = [];
  const { tensors, list } = graphTensors(graph, params);
  try {
    for (const [i, batch] of batches.entries()) {
      const x = tf.tensor(batch.x, [batch.size, ...graph.input]);
      const y = spec.loss === 'output' ? null : tf.tensor2d(targets[i]!.values, [batch.size, targets[i]!.width]);
      try {
        per.push(await measureStepBatch({ spec, tensors, x, y, saturation }));
      } finally {
        x.dispose();
        y?.dispose();
      }
    }
  } finally {
    list.forEach((t) => t.dispose());
  }
  return stepReadings(graph, per);
}
