// The taps of a through-time measurement (issue 14): step probes and gate sinks that ride on a graph's forward and
// backward (graph-measure.ts adds them to the analysis's own pass), and the host reductions of what they caught.
// Apart from through-time.ts so that graph-measure.ts, which through-time.ts uses, can take them without a cycle.
import * as tf from '@tensorflow/tfjs';
import { isRecurrentNode, type RecurrentNode } from '../spec/recurrent-types.js';
import type { NormalizedGraph } from '../spec/graph-types.js';
import type { RecurrentHooks } from '../model/recurrent-forward.js';
import type { HostRead } from './measure.js';

/**
 * Per step t of gates [T][units·batch]: the mean gate value and the fraction saturated, where σ′ = g(1 − g) is
 * below the threshold's fraction of its peak 1/4 (thresholds.saturationDerivative); σ′ in float32, as a tensor pass would.
 */
export function gateStats(values: Float32Array, T: number, saturation: number): { mean: number[]; saturated: number[] } {
  const per = values.length / T;
  const limit = Math.fround(saturation * 0.25);
  const mean: number[] = [], saturated: number[] = [];
  for (let t = 0; t < T; t++) {
    let sum = 0, sat = 0;
    for (let j = t * per; j < (t + 1) * per; j++) {
      const g = values[j]!;
      sum += g;
      if (Math.fround(g * Math.fround(1 - g)) < limit) sat++;
    }
    mean.push(sum / per);
    saturated.push(sat / per);
  }
  return { mean, saturated };
}

/** One batch's step readings per recurrent layer (graph order): ‖∂L/∂h_t‖ per step, the gate's mean and saturation. */
export interface BatchSteps {
  norms: number[][];
  gateMean: number[][];
  gateSat: number[][];
}

/**
 * The hooks of a through-time measurement on a batch of B: a zero probe [units, B] at every step of every
 * recurrent row (differentiate the loss with respect to `probes`) and a sink keeping the gates past autodiff's
 * scope (`dispose` releases both). graph-measure.ts adds them to the analysis's own forward and backward.
 */
export function throughTimeTaps(graph: NormalizedGraph, B: number) {
  const rows = graph.rows.filter((r) => isRecurrentNode(r.node));
  const counts = rows.map((r) => (r.node as RecurrentNode).steps);
  const probes = rows.flatMap((r) => { const n = r.node as RecurrentNode; return Array.from({ length: n.steps }, () => tf.zeros([n.units, B])); });
  const gates = new Map<string, tf.Tensor[]>();
  const hooks = (flat: tf.Tensor[]): RecurrentHooks => {
    const stepProbes = new Map<string, tf.Tensor[]>();
    let k = 0;
    rows.forEach((r, i) => { stepProbes.set(r.node.path, flat.slice(k, k + counts[i]!)); k += counts[i]!; });
    const gate = (path: string, t: number, g: tf.Tensor): void => {
      if (!gates.has(path)) gates.set(path, []);
      gates.get(path)![t] = tf.keep(g);
    };
    return { stepProbes, gate };
  };
  /** The per-step norms (one reduction per layer) and the gates stacked, as tensors to read with the rest. */
  const tensorsOf = (grads: tf.Tensor[]): { norms: tf.Tensor[]; gates: (tf.Tensor | null)[] } => {
    let k = 0;
    const norms = counts.map((n) => { k += n; return tf.sqrt(tf.sum(tf.square(tf.stack(grads.slice(k - n, k))), [1, 2])); });
    return { norms, gates: rows.map((r) => { const gs = gates.get(r.node.path); return gs ? tf.stack(gs) : null; }) };
  };
  /**
   * ‖∂ℓ_i/∂h_t‖ RMS over the examples (√B·‖∂L/∂h_t‖_F for the batch mean L); the gates [T, units, batch] summed
   * on the host (float64), where a Mean over [1, 2] and a Less/Cast pass on the cpu kernels cost more than the read.
   */
  const read = (t: { norms: tf.Tensor[]; gates: (tf.Tensor | null)[] }, host: HostRead, saturation: number): BatchSteps => {
    const stats = t.gates.map((g, i) => (g ? gateStats(host.transient(g), counts[i]!, saturation) : null));
    return {
      norms: t.norms.map((n) => Array.from(host(n)).map((v) => Math.sqrt(B) * v)),
      gateMean: stats.map((s) => s?.mean ?? []), gateSat: stats.map((s) => s?.saturated ?? []),
    };
  };
  const dispose = (): void => { gates.forEach((gs) => gs.forEach((g) => g.dispose())); probes.forEach((p) => p.dispose()); };
  return { rows, probes, hooks, tensorsOf, read, dispose };
}
export type ThroughTimeTaps = ReturnType<typeof throughTimeTaps>;
