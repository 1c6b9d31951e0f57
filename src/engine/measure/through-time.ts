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

/** Per step of one layer, averaged over the batches. */
export interface StepReadings {
  row: number;
  node: RecurrentNode;
  /** RMS over the examples of ‖∂ℓ_i/∂h_t‖ (ℓ_i the example's loss), mean over batches: √B·‖∂L/∂h_t‖_F for the batch mean L. */
  norms: number[];
  /** lstm forget gate f_t, gru update gate z_t: mean over examples and units, and the saturated fraction. */
  gate: { name: 'forget' | 'update'; mean: number[]; saturated: number[] } | null;
}

/** One batch's readings: per recurrent layer (graph order) the step norms and the gate's per-step statistics. */
export interface BatchStepReadings {
  norms: number[][];
  gateMean: number[][];
  gateSat: number[][];
}

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

/** One batch: per layer the step norms and gate statistics. Leaves no tensors. */
export async function measureStepBatch({ spec, tensors, x, y, saturation, dropoutSeed = null }: StepBatchArgs): Promise<BatchStepReadings> {
  const graph = spec.network.graph!;
  const rows = graph.rows.filter((r) => isRecurrentNode(r.node));
  const B = x.shape[0]!;
  const gates = new Map<string, tf.Tensor[]>();
  tf.engine().startScope();
  try {
    const probes = rows.map((r) => { const n = r.node as RecurrentNode; return Array.from({ length: n.steps }, () => tf.zeros([n.units, B])); });
    const f = (...flat: tf.Tensor[]): tf.Scalar => {
      const stepProbes = new Map<string, tf.Tensor[]>();
      let k = 0;
      rows.forEach((r, i) => { stepProbes.set(r.node.path, flat.slice(k, k + probes[i]!.length)); k += probes[i]!.length; });
      const gate = (path: string, t: number, g: tf.Tensor): void => {
        if (!gates.has(path)) gates.set(path, []);
        gates.get(path)![t] = tf.keep(g);
      };
      const run = graphForward(graph, tensors, x, null, { hooks: { stepProbes, gate }, dropoutSeed });
      return lossOf(spec.loss, spec.network.outputActivation, run.logits, run.output, y);
    };
    const { grads } = tf.valueAndGrads(f)(probes.flat());
    // ‖∂L/∂h_t‖_F per step and the gate statistics, as tensors, read on the host together.
    const stepNorms = tf.stack(grads.map((g) => tf.norm(g)));
    const gateStats = rows.map((r) => {
      const gs = gates.get(r.node.path);
      if (!gs) return null;
      const all = tf.stack(gs);
      // Saturated where σ′ = g(1 − g) is below the threshold's fraction of its peak 1/4 (thresholds.saturationDerivative).
      const deriv = tf.mul(all, tf.sub(1, all));
      return [tf.mean(all, [1, 2]), tf.mean(tf.cast(tf.less(deriv, saturation * 0.25), 'float32'), [1, 2])] as const;
    });
    const host = await hostReader([stepNorms, ...gateStats.flatMap((s) => (s ? [...s] : []))]);
    const flatNorms = Array.from(host(stepNorms)).map((v) => Math.sqrt(B) * v);
    let k = 0;
    const norms = rows.map((r) => { const n = (r.node as RecurrentNode).steps; const out = flatNorms.slice(k, k + n); k += n; return out; });
    return {
      norms,
      gateMean: gateStats.map((s) => (s ? Array.from(host(s[0])) : [])),
      gateSat: gateStats.map((s) => (s ? Array.from(host(s[1])) : [])),
    };
  } finally {
    // The gates were kept past autodiff's scope: released here.
    gates.forEach((gs) => gs.forEach((t) => t.dispose()));
    tf.engine().endScope();
  }
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
  return rows.map((r, i) => {
    const node = r.node as RecurrentNode;
    const gated = node.kind !== 'simple_rnn';
    return {
      row: r.index, node,
      norms: average(per.map((p) => p.norms[i]!)),
      gate: gated ? { name: node.kind === 'lstm' ? 'forget' : 'update', mean: average(per.map((p) => p.gateMean[i]!)), saturated: average(per.map((p) => p.gateSat[i]!)) } : null,
    };
  });
}
