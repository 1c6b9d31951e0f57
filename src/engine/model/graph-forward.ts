// A layer graph's differentiable forward pass with stock tfjs ops (they autodiff on every backend), tapping
// every dense/conv2d row: its output h (a zero probe added there gives ∂Loss/∂h), and what its activation sees.
import * as tf from '@tensorflow/tfjs';
import { activation, type Activation, type ActivationSpec } from './activations.js';
import { NORM_EPSILON } from './network.js';
import type { BranchNode, ConvNode, DenseNode, DropoutNode, GraphNode, NormalizedGraph } from '../spec/graph-types.js';
import type { RecurrentNode } from '../spec/recurrent-types.js';
import type { SequenceWeightNode } from '../spec/transformer-types.js';
import { recurrentForward, type RecurrentHooks } from './recurrent-forward.js';
import { addPositions, lastAxisMatMul, sequenceWeightForward } from './attention-forward.js';
import { Rng, deriveSeed } from '../common/random.js';

export interface GraphTensors {
  /** Per row: dense [inputs, units], conv2d [kh, kw, c_in, c_out]. */
  weights: tf.Tensor[];
  biases: (tf.Tensor | null)[];
  /** gamma and beta by the norm layer's path. */
  norms: Map<string, { gamma: tf.Tensor; beta: tf.Tensor }>;
  /**
   * Every aux parameter by "<path>:<name>": the residual variants' learnable scalars (a block's gate or
   * fixup_scale, a row's fixup biases) and a recurrent layer's recurrent_kernel and recurrent_bias.
   */
  named: Map<string, tf.Tensor>;
}

/**
 * Per row: `pre` what the row's activation sees and `post` its output. A row's activation is its own, or
 * the first one after it (past batch_norm, layer_norm and dropout only: ResNet's conv-BN-relu); a row whose
 * output meets a pooling, a flatten, a residual addition or the next row first is linear (pre = post = h).
 */
export interface GraphTaps {
  pre: tf.Tensor[];
  post: tf.Tensor[];
  act: ActivationSpec[];
}

const LINEAR: ActivationSpec = { name: 'linear' };

/**
 * A dilated kernel as a differentiable product with a fixed 0/1 matrix: tfjs's conv2d gradient refuses
 * dilation > 1, so the convolution runs undilated on the kernel with (d − 1) zeros between its taps.
 */
export function dilateKernel(kernel: tf.Tensor, d: number): tf.Tensor {
  const [kh, kw, ci, co] = kernel.shape as [number, number, number, number];
  const eh = (kh - 1) * d + 1, ew = (kw - 1) * d + 1;
  const scatter = new Float32Array(eh * ew * kh * kw);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) scatter[(i * d * ew + j * d) * kh * kw + i * kw + j] = 1;
  const s = tf.tensor2d(scatter, [eh * ew, kh * kw]);
  return tf.reshape(tf.matMul(s, tf.reshape(kernel, [kh * kw, ci * co])), [eh, ew, ci, co]);
}

/** [before, after] zero rows of TensorFlow's "same" padding: the odd one at the end. */
function samePadding(n: number, k: number, s: number): [number, number] {
  const total = Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * conv2d 'valid' with its filter gradient computed by Conv2D itself, for backends without a
 * Conv2DBackpropFilter kernel (wasm: tfjs #8474): ∂L/∂W[i,j,ci,co] = Σ_{b,p,q} x[b, p·s + i, q·s + j, ci]·dy[b,p,q,co]
 * is the 'valid' convolution of x read as [c_in, h, w, batch] with dy read as a [h_out, w_out, batch, c_out]
 * filter dilated by the stride. The input gradient is Conv2DBackpropInput (conv2dTranspose), which wasm has.
 */
const convWithoutFilterKernel = (stride: number) => tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, 'valid'),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = dy as tf.Tensor4D;
      const dx = tf.conv2dTranspose(g, ws, xs.shape, stride, 'valid');
      const [kh, kw] = ws.shape;
      const full = tf.conv2d(tf.transpose(xs, [3, 1, 2, 0]), tf.transpose(g, [1, 2, 0, 3]), 1, 'valid', 'NHWC', stride);
      const dw = tf.transpose(tf.slice(full, [0, 0, 0, 0], [-1, kh, kw, -1]), [1, 2, 0, 3]);
      return [dx, dw];
    },
  };
});

function convolve(x: tf.Tensor4D, node: ConvNode, kernel: tf.Tensor): tf.Tensor4D {
  const k = (node.dilation > 1 ? dilateKernel(kernel, node.dilation) : kernel) as tf.Tensor4D;
  const fast = tf.getKernel('Conv2DBackpropFilter', tf.getBackend()) !== undefined;
  if (fast && typeof node.padding !== 'number') return tf.conv2d(x, k, node.stride, node.padding);
  // Explicit zero padding, then a 'valid' convolution.
  const [spanH, spanW] = [k.shape[0], k.shape[1]];
  const [h, w] = [x.shape[1], x.shape[2]];
  const p = node.padding;
  const [top, bottom] = p === 'same' ? samePadding(h, spanH, node.stride) : p === 'valid' ? [0, 0] : [p, p];
  const [left, right] = p === 'same' ? samePadding(w, spanW, node.stride) : p === 'valid' ? [0, 0] : [p, p];
  const padded = top + bottom + left + right > 0 ? tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]) : x;
  return (fast ? tf.conv2d(padded, k, node.stride, 'valid') : convWithoutFilterKernel(node.stride)(padded, k)) as tf.Tensor4D;
}

/** Entries x[b, p·sh + i, q·sw + j, c] for every output position (p, q): one tap of a pooling window, by slices and reshapes. */
function tap(x: tf.Tensor4D, i: number, j: number, [sh, sw]: [number, number], ho: number, wo: number): tf.Tensor4D {
  const [B, , , C] = x.shape;
  const t = tf.slice(x, [0, i, j, 0], [B, ho * sh, wo * sw, C]);
  if (sh === 1 && sw === 1) return t;
  const rows = tf.slice(tf.reshape(t, [B * ho, sh, wo * sw * C]), [0, 0, 0], [B * ho, 1, wo * sw * C]);
  const cols = tf.slice(tf.reshape(rows, [B * ho * wo, sw, C]), [0, 0, 0], [B * ho * wo, 1, C]);
  return tf.reshape(cols, [B, ho, wo, C]);
}

/**
 * Max pooling as the maximum of its window's taps (stock Slice, Reshape and Max, whose gradients are exact):
 * the wasm backend's MaxPoolGrad misplaces the gradient for even window sizes (tfjs 4.22; a 2×2 window's
 * gradient norm differs from the cpu backend's and PyTorch's by ~1%).
 */
function maxPoolByTaps(x: tf.Tensor4D, [kh, kw]: [number, number], stride: [number, number]): tf.Tensor4D {
  const [, h, w] = x.shape;
  const ho = Math.floor((h - kh) / stride[0]) + 1, wo = Math.floor((w - kw) / stride[1]) + 1;
  // The last tap's strided slice reads up to row (kh − 1) + ho·stride − 1: pad the end with zeros it never selects.
  const needH = kh - 1 + ho * stride[0], needW = kw - 1 + wo * stride[1];
  const xp = needH > h || needW > w ? tf.pad(x, [[0, 0], [0, Math.max(0, needH - h)], [0, Math.max(0, needW - w)], [0, 0]]) : x;
  const taps: tf.Tensor4D[] = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tap(xp, i, j, stride, ho, wo));
  return tf.max(tf.stack(taps), 0) as tf.Tensor4D;
}

/** gamma·(x − mean)/√(var + ε) + beta, per channel over the batch (and space), or per example over every axis. */
function normalize(x: tf.Tensor, kind: 'batch_norm' | 'layer_norm', p: { gamma: tf.Tensor; beta: tf.Tensor }): tf.Tensor {
  if (kind === 'batch_norm') return batchNorm(x, p.gamma, p.beta);
  // A [B, T, F] sequence is normalised over its last axis (each step on its own, as in a transformer).
  const axes = x.rank === 3 ? [2] : x.shape.slice(1).map((_, i) => i + 1);
  const { mean, variance } = tf.moments(x, axes, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, NORM_EPSILON))), p.gamma), p.beta);
}

/**
 * Training-mode batch norm over every axis but the channels, with its closed-form backward (Ioffe & Szegedy
 * 2015) instead of autodiff through the moments: autodiff differentiates mean, the squared difference and the
 * division one by one, a dozen full-size products per layer where the closed form needs five — in a ResNet
 * they were most of the time outside the convolutions. With xc = x − μ, r = 1/√(σ² + ε), s = γ·r:
 *   y = xc·s + β;  ∂β = Σ dy;  ∂γ = r·Σ dy·xc;  ∂x = s·(dy − mean(dy) − xc·r²·mean(dy·xc)).
 * The float64 gradchecks (test/engine/graph-gradcheck.test.ts) hold it to PyTorch's autograd.
 */
type BatchNormFunc = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
const batchNorm = tf.customGrad(((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const mean = tf.mean(x, axes, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), axes, true);
  const r = tf.rsqrt(tf.add(variance, NORM_EPSILON));
  const scale = tf.mul(gamma, r);
  save([xc, r, scale]);
  return {
    value: tf.add(tf.mul(xc, scale), beta),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xcS, rS, scaleS] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const sumDy = tf.sum(dy, axes, true);
      const sumDyXc = tf.sum(tf.mul(dy, xcS), axes, true);
      const n = xcS.size / xcS.shape[xcS.shape.length - 1]!;
      const k = tf.mul(tf.square(rS), tf.div(sumDyXc, n));
      const dx = tf.mul(tf.sub(tf.sub(dy, tf.div(sumDy, n)), tf.mul(xcS, k)), scaleS);
      return [dx, tf.reshape(tf.mul(rS, sumDyXc), gamma.shape), tf.reshape(sumDy, beta.shape)];
    },
  };
  // customGrad's type takes its inputs as one rest parameter that includes save; the call has three tensors.
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as BatchNormFunc;

class GraphRun {
  taps: GraphTaps;
  /** The row waiting for its activation, or null. */
  private pending: number | null = null;
  private acts = new Map<string, Activation>();
  /** Row by path, not by object: a spec that crossed a JSON boundary has copies of the nodes in rows and layers. */
  private rowOf: Map<string, number>;
  /** The head's output before its activation (the loss reads logits). */
  logits: tf.Tensor | null = null;

  constructor(private graph: NormalizedGraph, private t: GraphTensors, private probes: tf.Tensor[] | null, private hooks: RecurrentHooks | undefined, private dropoutSeed: number | null) {
    const n = graph.rows.length;
    this.taps = { pre: new Array(n), post: new Array(n), act: new Array(n).fill(LINEAR) };
    this.rowOf = new Map(graph.rows.map((r) => [r.node.path, r.index]));
  }

  private act(spec: ActivationSpec): Activation {
    const key = `${spec.name}:${spec.alpha ?? ''}`;
    let a = this.acts.get(key);
    if (!a) this.acts.set(key, (a = activation(spec)));
    return a;
  }

  /** Applies a layer's activation; the first non-linear one after a row is that row's. */
  private activate(a: tf.Tensor, spec: ActivationSpec): tf.Tensor {
    if (spec.name === 'linear') return a;
    const out = this.act(spec).apply(a);
    if (this.pending !== null) {
      this.taps.pre[this.pending] = a;
      this.taps.post[this.pending] = out;
      this.taps.act[this.pending] = spec;
      this.pending = null;
    }
    return out;
  }

  /** A recurrent row: its time loop (model/recurrent-forward.ts); its output is its tap, and it takes no activation after it. */
  private recurrentLayer(node: RecurrentNode, a: tf.Tensor): tf.Tensor {
    const r = this.rowOf.get(node.path)!;
    let h = recurrentForward(node, a, {
      kernel: this.t.weights[r]!, bias: this.t.biases[r] ?? null,
      recurrent: this.t.named.get(`${node.path}:recurrent_kernel`)!, recurrentBias: this.t.named.get(`${node.path}:recurrent_bias`) ?? null,
    }, this.hooks);
    if (this.probes) h = tf.add(h, this.probes[r]!);
    this.taps.pre[r] = h;
    this.taps.post[r] = h;
    this.pending = null;
    return h;
  }

  private weightLayer(node: DenseNode | ConvNode | SequenceWeightNode, a: tf.Tensor): tf.Tensor {
    const r = this.rowOf.get(node.path)!;
    const W = this.t.weights[r]!;
    const b = this.t.biases[r];
    let h: tf.Tensor;
    if (node.kind === 'embedding' || node.kind === 'attention') h = sequenceWeightForward(node, a, W, b ?? null);
    else {
      // Fixup's scalar biases: one added to the layer's input, one to its output before the activation.
      const biasIn = this.t.named.get(`${node.path}:fixup_bias_in`);
      const input = biasIn ? tf.add(a, biasIn) : a;
      h = node.kind === 'dense' ? lastAxisMatMul(input, W) : convolve(input as tf.Tensor4D, node, W);
      if (b) h = tf.add(h, b);
      const biasAct = this.t.named.get(`${node.path}:fixup_bias_act`);
      if (biasAct) h = tf.add(h, biasAct);
    }
    if (this.probes) h = tf.add(h, this.probes[r]!);
    this.taps.pre[r] = h;
    this.taps.post[r] = h;
    this.pending = r;
    return h;
  }

  private branchNode(node: BranchNode, a: tf.Tensor): tf.Tensor {
    switch (node.kind) {
      case 'dense':
      case 'conv2d':
      case 'embedding':
      case 'attention':
        return this.weightLayer(node, a);
      case 'positional_encoding':
        return addPositions(a);
      case 'max_pool':
      case 'avg_pool':
        this.pending = null;
        if (node.kind === 'avg_pool') return tf.avgPool(a as tf.Tensor4D, node.size, node.stride, 'valid');
        return tf.getBackend() === 'wasm' && node.size.some((s) => s % 2 === 0)
          ? maxPoolByTaps(a as tf.Tensor4D, node.size, node.stride)
          : tf.maxPool(a as tf.Tensor4D, node.size, node.stride, 'valid');
      case 'global_avg_pool':
        this.pending = null;
        return tf.mean(a, a.rank === 3 ? [1] : [1, 2]);
      case 'flatten':
        this.pending = null;
        return tf.reshape(a, [a.shape[0]!, -1]);
      case 'batch_norm':
      case 'layer_norm':
        return normalize(a, node.kind, this.t.norms.get(node.path)!);
      case 'dropout':
        return node.mode === 'train' && this.dropoutSeed !== null ? this.dropout(node, a) : a;
      case 'activation':
        return a;
      case 'simple_rnn':
      case 'lstm':
      case 'gru':
        return this.recurrentLayer(node, a);
    }
  }

  /**
   * Inverted dropout with a mask drawn on the host from the seed and the layer's path (the same on every
   * backend): each entry kept with probability 1 − p and scaled by 1/(1 − p), so E[output] = input.
   */
  private dropout(node: DropoutNode, a: tf.Tensor): tf.Tensor {
    const rng = new Rng(deriveSeed(this.dropoutSeed!, `dropout:${node.path}`));
    const keep = 1 / (1 - node.rate);
    const mask = new Float32Array(a.size);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() >= node.rate ? keep : 0;
    return tf.mul(a, tf.tensor(mask, a.shape));
  }

  run(nodes: GraphNode[], x: tf.Tensor): tf.Tensor {
    let a = x;
    for (const node of nodes) {
      if (node.kind === 'residual') {
        this.pending = null;
        const branch = this.run(node.layers, a);
        this.pending = null;
        const skip = node.projection ? this.weightLayer(node.projection, a) : a;
        this.pending = null;
        // rezero/skipinit: a learnable gate α; fixup: a learnable multiplier; plain: the fixed scale.
        const gate = this.t.named.get(`${node.path}:gate`) ?? this.t.named.get(`${node.path}:fixup_scale`);
        a = tf.add(skip, gate ? tf.mul(branch, gate) : node.scale === 1 ? branch : tf.mul(branch, node.scale));
      } else {
        a = this.branchNode(node, a);
      }
      if (node === this.graph.layers[this.graph.layers.length - 1]) this.logits = a;
      a = this.activate(a, node.activation);
    }
    return a;
  }
}

/** What a run may add: the recurrent layers' per-step probes and gate taps, and a seed for dropout in mode "train". */
export interface GraphRunOptions {
  hooks?: RecurrentHooks;
  /** With a seed, dropout layers in mode "train" drop (a mask per layer from the seed); without one they are the identity. */
  dropoutSeed?: number | null;
}

/** Runs the graph on x ([batch, ...input]); returns the head's logits and output, and the rows' taps. */
export function graphForward(graph: NormalizedGraph, t: GraphTensors, x: tf.Tensor, probes: tf.Tensor[] | null, options: GraphRunOptions = {}): { logits: tf.Tensor2D; output: tf.Tensor2D; taps: GraphTaps } {
  const run = new GraphRun(graph, t, probes, options.hooks, options.dropoutSeed ?? null);
  const output = run.run(graph.layers, x) as tf.Tensor2D;
  return { logits: run.logits as tf.Tensor2D, output, taps: run.taps };
}
