// The time loop of a simple_rnn, lstm or gru (issue 14), with stock tfjs ops that autodiff on every backend.
// Fast where it matters: x·W for every step at once (one [time·batch, features] product), then one fused
// Uᵀ·h product per step for all gates. The state is kept transposed, [units, batch]: the gates are then
// blocks of rows, split along axis 0 (a contiguous copy), where splitting columns of [batch, gates·units]
// cost ~30 ms a step on the cpu-derived kernels (500× a row split; npm run bench -- --only LSTM-100).
import * as tf from '@tensorflow/tfjs';
import { activation } from './activations.js';
import type { RecurrentNode } from '../spec/recurrent-types.js';

export interface RecurrentTensors {
  /** W [features, gates·units]. */
  kernel: tf.Tensor;
  /** U, [units·gates·units] flat or [units, gates·units]. */
  recurrent: tf.Tensor;
  bias: tf.Tensor | null;
  /** gru: b_hh [gates·units] (inside the reset gate's product), else null. */
  recurrentBias: tf.Tensor | null;
}

/**
 * Hooks of a through-time measurement (measure/through-time.ts): a zero probe added to every step's h_t
 * (its gradient is the total ∂L/∂h_t, through every later step), and a sink for the gates (lstm's forget
 * gate f_t, gru's update gate z_t). Both in the loop's layout, [units, batch] (h_tᵀ).
 */
export interface RecurrentHooks {
  stepProbes?: Map<string, tf.Tensor[]>;
  gate?: (path: string, t: number, gate: tf.Tensor) => void;
}

/**
 * a [1, m, k] times b [n, k, p] → [n, m, p], the batch broadcast, with its gradient: tfjs's BatchMatMul
 * broadcasts forward but returns a's gradient unreduced ([n, m, k]), which autodiff refuses. ∂a = Σ_n dy·bᵀ
 * (a batched product and a sum), ∂b = aᵀ·dy (broadcast again).
 */
const broadcastMatMul = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [as, bs] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [tf.sum(tf.matMul(g, bs, false, true), 0, true), tf.matMul(as, g, true, false)];
    },
  };
}) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * xw [T, width, B] plus a bias [width] on every step and example, with the bias's gradient as Σ_b then Σ_t: autodiff's
 * own reduction over axes [0, 2] transposes the whole [T, width, B] gradient on the cpu kernels (~390 ms for
 * 100 × 512 × 32 against ~1 ms for the two reductions, npx tsx bench/profile-graph.ts native --workload LSTM-100).
 */
const addStepBias = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [xw, bias] = args as [tf.Tensor3D, tf.Tensor];
  return {
    value: tf.add(xw, tf.reshape(bias, [1, xw.shape[1], 1])),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      const g = dy as tf.Tensor3D;
      return [g, tf.reshape(tf.sum(tf.sum(g, 2), 0), bias.shape)];
    },
  };
}) as unknown as (xw: tf.Tensor, bias: tf.Tensor) => tf.Tensor;

type Step = (xw: tf.Tensor, h: tf.Tensor | null, c: tf.Tensor | null) => { h: tf.Tensor; c: tf.Tensor | null; gate: tf.Tensor | null };

/**
 * One step of the layer's cell, transposed: xw = (x_t W + b)ᵀ [gates·units, batch], h and c the previous state
 * [units, batch] (null at t = 0: zeros). U [units, gates·units], multiplied as Uᵀ by the product's transposeA (a
 * Transpose of U and of its gradient would cost ~30× the product on the cpu kernels); bh = b_hh as a column, or null.
 */
function cellOf(node: RecurrentNode, U: tf.Tensor, bh: tf.Tensor | null): Step {
  const act = activation(node.cell);
  // Uᵀ·h_{t−1} for every gate in one product; at t = 0 h_{−1} = 0 and the product is 0 (b_hh for a gru, broadcast
  // by an add: tf.broadcastTo is a Tile, which webgpu runs on the CPU for small tensors, reading back synchronously).
  const product = (h: tf.Tensor): tf.Tensor => tf.matMul(U as tf.Tensor2D, h as tf.Tensor2D, true, false);
  const hu = (h: tf.Tensor | null, width: number, batch: number): tf.Tensor | null =>
    (h ? (bh ? tf.add(product(h), bh) : product(h)) : bh ? tf.add(tf.zeros([width, batch]), bh) : null);
  const n = node.units;
  switch (node.kind) {
    case 'simple_rnn':
      return (xw, h) => {
        const z = hu(h, n, xw.shape[1]!);
        return { h: act.apply(z ? tf.add(xw, z) : xw), c: null, gate: null };
      };
    case 'lstm':
      return (xw, h, c) => {
        const z = hu(h, 4 * n, xw.shape[1]!);
        const [i, f, g, o] = tf.split(z ? tf.add(xw, z) : xw, 4, 0) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const fs = tf.sigmoid(f);
        const ig = tf.mul(tf.sigmoid(i), act.apply(g));
        const cNext = c ? tf.add(tf.mul(fs, c), ig) : ig;
        return { h: tf.mul(tf.sigmoid(o), act.apply(cNext)), c: cNext, gate: fs };
      };
    case 'gru':
      return (xw, h) => {
        const [xr, xz, xn] = tf.split(xw, 3, 0) as [tf.Tensor, tf.Tensor, tf.Tensor];
        const z = hu(h, 3 * n, xw.shape[1]!);
        if (!z) {
          // No state and no b_hh: r multiplies a zero product, and h_t = (1 − z)·n.
          const zg = tf.sigmoid(xz);
          return { h: tf.mul(tf.sub(1, zg), act.apply(xn)), c: null, gate: zg };
        }
        const [hr, hz, hn] = tf.split(z, 3, 0) as [tf.Tensor, tf.Tensor, tf.Tensor];
        const r = tf.sigmoid(tf.add(xr, hr));
        const zg = tf.sigmoid(tf.add(xz, hz));
        const cand = act.apply(tf.add(xn, tf.mul(r, hn)));
        // PyTorch: h_t = (1 − z)·n + z·h_{t−1} = n + z·(h_{t−1} − n).
        return { h: h ? tf.add(cand, tf.mul(zg, tf.sub(h, cand))) : tf.mul(tf.sub(1, zg), cand), c: null, gate: zg };
      };
  }
}

/** The layer on x [batch, time, features]: [batch, time, units] with returnSequences, else the last h [batch, units]. */
export function recurrentForward(node: RecurrentNode, x: tf.Tensor, p: RecurrentTensors, hooks?: RecurrentHooks): tf.Tensor {
  const B = x.shape[0]!;
  const { steps: T, features: F, units, gates } = node;
  const width = gates * units;
  // One batched product for every step at once, Wᵀ [1, gates·units, F] against xᵀ [T, F, B] (the batch
  // dimension broadcast), giving [T, gates·units, B]: then a row split. Transposing the product instead cost
  // most of the time (the cpu-derived Transpose of 1.6M entries); tf.unstack along time, seconds.
  const xt = tf.transpose(x, [1, 2, 0]);
  let xw = broadcastMatMul(tf.reshape(tf.transpose(p.kernel), [1, width, F]), xt);
  if (p.bias) xw = addStepBias(xw, p.bias);
  const perStep = tf.split(tf.reshape(xw, [T * width, B]), T, 0);
  const cell = cellOf(node, tf.reshape(p.recurrent, [units, width]), p.recurrentBias ? tf.reshape(p.recurrentBias, [width, 1]) : null);
  const probes = hooks?.stepProbes?.get(node.path);
  const hs: tf.Tensor[] = [];
  let h: tf.Tensor | null = null;
  let c: tf.Tensor | null = null;
  for (let t = 0; t < T; t++) {
    const out = cell(perStep[t]!, h, c);
    h = probes ? tf.add(out.h, probes[t]!) : out.h;
    c = out.c;
    if (out.gate && hooks?.gate) hooks.gate(node.path, t, out.gate);
    hs.push(h);
  }
  // Back to the graph's layout: [B, T, units] or [B, units].
  return node.returnSequences ? tf.transpose(tf.stack(hs, 0), [2, 0, 1]) : tf.transpose(h!);
}
