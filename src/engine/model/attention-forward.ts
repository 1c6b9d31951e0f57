// The sequence layers' parameters and differentiable forward passes (issue 14), with stock tfjs ops that
// autodiff on every backend: dense on the last axis of [B, T, F], embedding as one_hot(ids)·E, sinusoidal
// positions, and multi-head self-attention whose Wq, Wk, Wv, Wo are one flat tensor (one row, one gradient).
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../common/random.js';
import { initialize, type InitializerSpec } from './initializers.js';
import type { AttentionNode, EmbeddingNode, SequenceWeightNode } from '../spec/transformer-types.js';

/** Where each matrix of an attention row sits in its flat weight tensor and its bias: Wq, Wk, Wv [D][H·k], then Wo [H·k][D]. */
export function attentionLayout(node: AttentionNode): { D: number; hk: number; weights: number[]; biases: number[] } {
  const D = node.units, hk = node.heads * node.keyDim;
  return { D, hk, weights: [0, D * hk, 2 * D * hk, 3 * D * hk], biases: [0, hk, 2 * hk, 3 * hk] };
}

/** An embedding table [V][D], or an attention row's Wq, Wk, Wv (fan_in D, fan_out H·k) and Wo (fan_in H·k, fan_out D), drawn in that order. */
export function drawSequenceWeights(node: SequenceWeightNode, init: InitializerSpec, rng: Rng): Float32Array {
  if (node.kind === 'embedding') return initialize(init, node.vocab, node.dim, rng, false, { fanIn: node.vocab, fanOut: node.dim });
  const { D, hk } = attentionLayout(node);
  const out = new Float32Array(4 * D * hk);
  for (let m = 0; m < 3; m++) out.set(initialize(init, D, hk, rng, false, { fanIn: D, fanOut: hk }), m * D * hk);
  out.set(initialize(init, hk, D, rng, false, { fanIn: hk, fanOut: D }), 3 * D * hk);
  return out;
}

/** bq, bk, bv (H·k each) and bo (D), drawn in that order with each matrix's fans; null without biases. */
export function drawSequenceBias(node: SequenceWeightNode, init: InitializerSpec, rng: Rng): Float32Array | null {
  if (node.kind === 'embedding' || !node.useBias) return null;
  const { D, hk } = attentionLayout(node);
  const out = new Float32Array(3 * hk + D);
  for (let m = 0; m < 3; m++) out.set(initialize(init, 1, hk, rng, true, { fanIn: D, fanOut: hk }), m * hk);
  out.set(initialize(init, 1, D, rng, true, { fanIn: hk, fanOut: D }), 3 * hk);
  return out;
}

/** The weight tensor as the forward pass reads it: the embedding table [V, D], an attention row's flat [4·D·H·k]. */
export function sequenceWeightTensor(node: SequenceWeightNode, values: Float32Array): tf.Tensor {
  return node.kind === 'embedding' ? tf.tensor2d(values, [node.vocab, node.dim]) : tf.tensor1d(values);
}

/** The shape include: ["parameters"] reports the weights in: [V][D], or 4 rows (Wq, Wk, Wv, Wo, each flattened row-major). */
export function sequenceParameterShape(node: SequenceWeightNode): number[] {
  return node.kind === 'embedding' ? [node.vocab, node.dim] : [4, node.units * node.heads * node.keyDim];
}

/** x·W on the last axis: [B, F]·[F, U], or [B, T, F] → [B, T, U] through one [B·T, F] product. */
export function lastAxisMatMul(x: tf.Tensor, W: tf.Tensor): tf.Tensor {
  if (x.rank === 2) return tf.matMul(x as tf.Tensor2D, W as tf.Tensor2D);
  const shape = x.shape;
  const flat = tf.reshape(x, [-1, shape[shape.length - 1]!]) as tf.Tensor2D;
  return tf.reshape(tf.matMul(flat, W as tf.Tensor2D), [...shape.slice(0, -1), W.shape[1]!]);
}

/** [B, T] token ids (float) → [B, T, D] rows of E, as one_hot(ids)·E (its gradient is a product on every backend). */
function embed(ids: tf.Tensor, node: EmbeddingNode, E: tf.Tensor): tf.Tensor {
  const [B, T] = ids.shape as [number, number];
  // int32 one-hot then a cast: the wasm backend's OneHot with dtype float32 returns no ones (tfjs 4.22).
  const hot = tf.cast(tf.oneHot(tf.reshape(tf.cast(ids, 'int32'), [-1]) as tf.Tensor1D, node.vocab), 'float32') as tf.Tensor2D;
  return tf.reshape(tf.matMul(hot, E as tf.Tensor2D), [B, T, node.dim]);
}

/** Vaswani et al. 2017: PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i + 1] = cos(t / 10000^(2i/D)). */
export function sinusoid(T: number, D: number): Float32Array {
  const pe = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < D; j++) {
      const angle = t / 10000 ** ((2 * Math.floor(j / 2)) / D);
      pe[t * D + j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return pe;
}

export function addPositions(x: tf.Tensor): tf.Tensor {
  const [, T, D] = x.shape as [number, number, number];
  return tf.add(x, tf.tensor2d(sinusoid(T, D), [T, D]));
}

/** −1e9 above the diagonal: softmax gives those (later) steps weight exp(−1e9 − max) = 0 in float32. */
function causalMask(T: number): tf.Tensor {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  return tf.tensor2d(m, [T, T]);
}

type SoftmaxFunc = (x: tf.Tensor) => tf.Tensor;
/**
 * Softmax over the last axis with its closed-form backward, dx = y·(dy − Σ dy·y): the cpu backend's Softmax kernel
 * and autodiff's gradient of it took 40% of a transformer analysis; this is four element-wise passes and two sums.
 */
const softmaxLast = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const e = tf.exp(tf.sub(x, tf.max(x, -1, true)));
  const y = tf.div(e, tf.sum(e, -1, true));
  save([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const ys = saved[0]!;
      return [tf.mul(ys, tf.sub(dy, tf.sum(tf.mul(dy, ys), -1, true)))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as SoftmaxFunc;

/**
 * Multi-head self-attention of [B, T, D] with the flat Wq‖Wk‖Wv‖Wo and bq‖bk‖bv‖bo. Each head reads its own
 * columns of Wq, Wk, Wv and its own rows of Wo (slices of the small weight matrices), and the heads' outputs are
 * summed: the same numbers as splitting and concatenating the activations, without moving them — the cpu
 * backend's Transpose, column Slice and Concat of [B·T, H·k] activations were most of a transformer's time.
 */
function attend(x: tf.Tensor, node: AttentionNode, W: tf.Tensor, b: tf.Tensor | null): tf.Tensor {
  const [B, T] = x.shape as [number, number, number];
  const { D, hk, weights, biases } = attentionLayout(node);
  const H = node.heads, k = node.keyDim;
  const flat = tf.reshape(x, [B * T, D]) as tf.Tensor2D;
  const matrix = (m: number): tf.Tensor2D => {
    const [rows, cols] = m < 3 ? [D, hk] : [hk, D];
    return tf.reshape(tf.slice(W, [weights[m]!], [rows * cols]), [rows, cols]) as tf.Tensor2D;
  };
  const [Wq, Wk, Wv, Wo] = [0, 1, 2, 3].map(matrix) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const project = (Wm: tf.Tensor2D, m: number, h: number): tf.Tensor3D => {
    let p = tf.matMul(flat, tf.slice(Wm, [0, h * k], [D, k])) as tf.Tensor2D;
    if (b) p = tf.add(p, tf.slice(b, [biases[m]! + h * k], [k])) as tf.Tensor2D;
    return tf.reshape(p, [B, T, k]) as tf.Tensor3D;
  };
  const mask = node.causal ? causalMask(T) : null;
  let out: tf.Tensor | null = null;
  for (let h = 0; h < H; h++) {
    let scores = tf.mul(tf.matMul(project(Wq, 0, h), project(Wk, 1, h), false, true), 1 / Math.sqrt(k));
    if (mask) scores = tf.add(scores, mask);
    const context = tf.reshape(tf.matMul(softmaxLast(scores) as tf.Tensor3D, project(Wv, 2, h)), [B * T, k]) as tf.Tensor2D;
    const part = tf.matMul(context, tf.slice(Wo, [h * k, 0], [k, D]));
    out = out ? tf.add(out, part) : part;
  }
  if (b) out = tf.add(out!, tf.slice(b, [biases[3]!], [D]));
  return tf.reshape(out!, [B, T, D]);
}

/** An embedding's or an attention layer's output (bias included). */
export function sequenceWeightForward(node: SequenceWeightNode, x: tf.Tensor, W: tf.Tensor, b: tf.Tensor | null): tf.Tensor {
  return node.kind === 'embedding' ? embed(x, node, W) : attend(x, node, W, b);
}
