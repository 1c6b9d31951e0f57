// One batch of a layer graph forward and backward by tfjs autodiff, read on the host: per row the weight,
// bias and output gradients (zero probes at every dense/conv2d output), the taps, and gamma/beta gradients.
import * as tf from '@tensorflow/tfjs';
import type { LossName } from '../../schemas/spec.js';
import { activation, type ActivationSpec } from '../model/activations.js';
import { lossOf } from '../model/network.js';
import { graphForward, type GraphTaps, type GraphTensors } from '../model/graph-forward.js';
import type { GraphParameters } from '../model/graph-params.js';
import type { NormalizedGraph } from '../spec/graph-types.js';
import { isRecurrentNode } from '../spec/recurrent-types.js';
import { layerPartial } from './batch-stats.js';
import { combineShards } from './combine-shards.js';
import type { BatchMeasurement } from './readings.js';
import { hostReader } from './measure.js';
import { sequenceWeightTensor } from '../model/attention-forward.js';
import type { BatchSteps, ThroughTimeTaps } from './through-time-taps.js';

/** The parameters as tensors, shaped as the layers read them (conv kernels [kh, kw, c_in, c_out]). */
export function graphTensors(graph: NormalizedGraph, p: GraphParameters): { tensors: GraphTensors; list: tf.Tensor[] } {
  const weights = graph.rows.map((r, i) => {
    const n = r.node;
    if (n.kind === 'embedding' || n.kind === 'attention') return sequenceWeightTensor(n, p.weights[i]!);
    const cin = n.inputShape[n.inputShape.length - 1]!;
    if (isRecurrentNode(n)) return tf.tensor2d(p.weights[i]!, [n.features, n.gates * n.units]);
    return n.kind === 'conv2d' ? tf.tensor4d(p.weights[i]!, [n.kernel[0], n.kernel[1], cin, n.filters]) : tf.tensor2d(p.weights[i]!, [cin, n.units]);
  });
  const biases = p.biases.map((b) => (b ? tf.tensor1d(b) : null));
  const aux = p.aux.map((a) => tf.tensor1d(a.values));
  return { tensors: packGraph(weights, biases, aux, p), list: [...weights, ...biases.filter((b): b is tf.Tensor1D => b !== null), ...aux] };
}

/**
 * gamma/beta by norm layer; every aux parameter by "<path>:<name>", as p's aux entries name them (the variants'
 * scalars, a recurrent layer's recurrent_kernel and recurrent_bias).
 */
function packGraph(weights: tf.Tensor[], biases: (tf.Tensor | null)[], aux: tf.Tensor[], p: Pick<GraphParameters, 'aux' | 'auxPaths'>): GraphTensors {
  const norms = new Map<string, { gamma: tf.Tensor; beta: tf.Tensor }>();
  const named = new Map<string, tf.Tensor>();
  p.aux.forEach((a, i) => {
    const path = p.auxPaths[i]!;
    named.set(`${path}:${a.name}`, aux[i]!);
    if (a.name === 'gamma') norms.set(path, { gamma: aux[i]!, beta: aux[i + 1]! });
  });
  return { weights, biases, norms, named };
}

/**
 * The flat list (graphTensors' order: every row's weight, the biases that exist, gamma/beta) as the layers
 * read it, laid out as `p`'s parameters are: for a list of updated parameters or of their gradients.
 */
export function graphTensorsOf(list: tf.Tensor[], p: GraphParameters): GraphTensors {
  const biasMask = p.biases.map((b) => b !== null);
  const u = unpack(list, p.weights.length, biasMask, p.aux.length);
  return packGraph(u.weights, u.biases, u.aux, p);
}

/** The flat list back into the rows' weights, biases (null where the mask says none) and aux. */
function unpack(list: tf.Tensor[], L: number, biasMask: boolean[], auxCount: number) {
  const weights = list.slice(0, L);
  let next = L;
  const biases = biasMask.map((has) => (has ? list[next++]! : null));
  const aux = list.slice(next, next + auxCount);
  return { weights, biases, aux };
}

export interface GraphBatchArgs {
  graph: NormalizedGraph;
  params: GraphParameters;
  tensors: GraphTensors;
  list: tf.Tensor[];
  x: tf.Tensor;
  y: tf.Tensor2D | null;
  loss: LossName;
  outputActivation: ActivationSpec;
  saturationThreshold: number;
  /** Seed of this batch's dropout masks (mode "train" layers); none: dropout is the identity. */
  dropoutSeed?: number;
  /** A recurrent graph's through-time taps (measure/through-time.ts): its step probes and gates ride on this pass. */
  throughTime?: ThroughTimeTaps;
}

export interface GraphGradients {
  value: tf.Scalar;
  weights: tf.Tensor[];
  biases: (tf.Tensor | null)[];
  /** ∂Loss/∂h per row (h the row's output, bias included). */
  deltas: tf.Tensor[];
  aux: tf.Tensor[];
  taps: GraphTaps;
  /** ∂Loss/∂h_t at every step probe of a.throughTime (empty without). */
  steps: tf.Tensor[];
}

/** Gradients of one batch's mean loss w.r.t. every parameter and every row's output. Call inside a scope. */
export function graphBatchGradients(a: GraphBatchArgs): GraphGradients {
  const { graph } = a;
  const B = a.x.shape[0]!;
  const probes = graph.rows.map((r) => tf.zeros([B, ...r.node.outputShape]));
  const biasMask = a.tensors.biases.map((b) => b !== null);
  const n = a.list.length, rows = probes.length;
  const steps = a.throughTime?.probes ?? [];
  let taps: GraphTaps | null = null;
  const f = (...list: tf.Tensor[]): tf.Scalar => {
    const u = unpack(list, a.tensors.weights.length, biasMask, a.params.aux.length);
    const hooks = a.throughTime?.hooks(list.slice(n + rows));
    const run = graphForward(graph, packGraph(u.weights, u.biases, u.aux, a.params), a.x, list.slice(n, n + rows), { dropoutSeed: a.dropoutSeed ?? null, ...(hooks ? { hooks } : {}) });
    taps = { pre: run.taps.pre.map((t) => tf.keep(t)), post: run.taps.post.map((t) => tf.keep(t)), act: run.taps.act };
    return lossOf(a.loss, a.outputActivation, run.logits, run.output, a.y);
  };
  const { value, grads } = tf.valueAndGrads(f)([...a.list, ...probes, ...steps]);
  const u = unpack(grads.slice(0, n), a.tensors.weights.length, biasMask, a.params.aux.length);
  return { value, weights: u.weights, biases: u.biases, deltas: grads.slice(n, n + rows), aux: u.aux, taps: taps!, steps: grads.slice(n + rows) };
}

/**
 * One batch measured: the rows' readings (host float64 passes), gamma/beta gradient norms, and with
 * a.throughTime the step readings of the same pass. Leaves no tensors (the caller disposes a.throughTime's gates).
 */
export async function measureGraphBatch(a: GraphBatchArgs): Promise<BatchMeasurement & { steps?: BatchSteps }> {
  tf.engine().startScope();
  let kept: GraphTaps | null = null;
  try {
    const g = graphBatchGradients(a);
    kept = g.taps;
    const acts = g.taps.act.map((s) => activation(s));
    const derivatives = acts.map((act, r) => (act.derivative ? act.derivative(g.taps.pre[r]!) : null));
    const through = a.throughTime?.tensorsOf(g.steps);
    const host = await hostReader([g.value, ...a.tensors.weights, ...g.weights, ...g.biases, ...g.deltas, ...g.taps.pre, ...g.taps.post, ...derivatives, ...g.aux, ...(through ? [...through.norms, ...through.gates] : [])]);
    const layers = a.graph.rows.map((row, r) => {
      const act = acts[r]!;
      // Every array reduced here, synchronously, before any other op runs: views of the wasm heap (transient).
      const post = host.transient(g.taps.post[r]!);
      const derivative = derivatives[r];
      return layerPartial({
        weight: host.transient(a.tensors.weights[r]!), grad: host.transient(g.weights[r]!), biasGrad: g.biases[r] ? host.transient(g.biases[r]!) : null,
        delta: host.transient(g.deltas[r]!), pre: host.transient(g.taps.pre[r]!), post, out: post,
        // NHWC: the channel is the fastest axis, so [B·h·w, c] rows: a channel is dead when it passes no gradient anywhere.
        derivative: derivative ? host.transient(derivative) : null, units: row.node.outputShape[row.node.outputShape.length - 1]!,
        saturationLimit: act.derivative && act.saturating ? Math.fround(a.saturationThreshold * act.peakDerivative) : null,
      });
    });
    const measured = combineShards([{ batch: a.x.shape[0]!, loss: host(g.value)[0]!, layers, auxGrads: g.aux.map((t) => host.transient(t)), perExample: [] }]);
    return through ? { ...measured, steps: a.throughTime!.read(through, host, a.saturationThreshold) } : measured;
  } finally {
    // The taps were kept past autodiff's scope: released here, once each (pre and post are one tensor on linear rows).
    if (kept) new Set([...kept.pre, ...kept.post]).forEach((t) => { if (t !== a.x) t.dispose(); });
    tf.engine().endScope();
  }
}
