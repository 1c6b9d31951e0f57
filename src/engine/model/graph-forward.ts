// A layer graph's differentiable forward pass with stock tfjs ops (they autodiff on every backend), tapping
// every dense/conv2d row: its output h (a zero probe added there gives ∂Loss/∂h), and what its activation sees.
import * as tf from '@tensorflow/tfjs';
import { activation, type Activation, type ActivationSpec } from './activations.js';
import { NORM_EPSILON } from './network.js';
import type { BranchNode, ConvNode, GraphNode, NormalizedGraph, WeightNode } from '../spec/graph-types.js';

export interface GraphTensors {
  /** Per row: dense [inputs, units], conv2d [kh, kw, c_in, c_out]. */
  weights: tf.Tensor[];
  biases: (tf.Tensor | null)[];
  /** gamma and beta by the norm layer's path. */
  norms: Map<string, { gamma: tf.Tensor; beta: tf.Tensor }>;
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

function convolve(x: tf.Tensor4D, node: ConvNode, kernel: tf.Tensor): tf.Tensor4D {
  const k = (node.dilation > 1 ? dilateKernel(kernel, node.dilation) : kernel) as tf.Tensor4D;
  if (typeof node.padding === 'number') {
    const p = node.padding;
    const padded = p > 0 ? tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) : x;
    return tf.conv2d(padded, k, node.stride, 'valid');
  }
  return tf.conv2d(x, k, node.stride, node.padding);
}

/** gamma·(x − mean)/√(var + ε) + beta, per channel over the batch (and space), or per example over every axis. */
function normalize(x: tf.Tensor, kind: 'batch_norm' | 'layer_norm', p: { gamma: tf.Tensor; beta: tf.Tensor }): tf.Tensor {
  const axes = kind === 'batch_norm' ? x.shape.slice(0, -1).map((_, i) => i) : x.shape.slice(1).map((_, i) => i + 1);
  const { mean, variance } = tf.moments(x, axes, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, NORM_EPSILON))), p.gamma), p.beta);
}

class GraphRun {
  taps: GraphTaps;
  /** The row waiting for its activation, or null. */
  private pending: number | null = null;
  private acts = new Map<string, Activation>();
  private rowOf: Map<WeightNode, number>;
  /** The head's output before its activation (the loss reads logits). */
  logits: tf.Tensor | null = null;

  constructor(private graph: NormalizedGraph, private t: GraphTensors, private probes: tf.Tensor[] | null) {
    const n = graph.rows.length;
    this.taps = { pre: new Array(n), post: new Array(n), act: new Array(n).fill(LINEAR) };
    this.rowOf = new Map(graph.rows.map((r) => [r.node, r.index]));
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

  private weightLayer(node: WeightNode, a: tf.Tensor): tf.Tensor {
    const r = this.rowOf.get(node)!;
    const W = this.t.weights[r]!;
    let h = node.kind === 'dense' ? tf.matMul(a as tf.Tensor2D, W as tf.Tensor2D) : convolve(a as tf.Tensor4D, node, W);
    const b = this.t.biases[r];
    if (b) h = tf.add(h, b);
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
        return this.weightLayer(node, a);
      case 'max_pool':
      case 'avg_pool':
        this.pending = null;
        return node.kind === 'max_pool'
          ? tf.maxPool(a as tf.Tensor4D, node.size, node.stride, 'valid')
          : tf.avgPool(a as tf.Tensor4D, node.size, node.stride, 'valid');
      case 'global_avg_pool':
        this.pending = null;
        return tf.mean(a, [1, 2]);
      case 'flatten':
        this.pending = null;
        return tf.reshape(a, [a.shape[0]!, -1]);
      case 'batch_norm':
      case 'layer_norm':
        return normalize(a, node.kind, this.t.norms.get(node.path)!);
      case 'activation':
      case 'dropout':
        return a;
    }
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
        a = tf.add(skip, node.scale === 1 ? branch : tf.mul(branch, node.scale));
      } else {
        a = this.branchNode(node, a);
      }
      if (node === this.graph.layers[this.graph.layers.length - 1]) this.logits = a;
      a = this.activate(a, node.activation);
    }
    return a;
  }
}

/** Runs the graph on x ([batch, ...input]); returns the head's logits and output, and the rows' taps. */
export function graphForward(graph: NormalizedGraph, t: GraphTensors, x: tf.Tensor, probes: tf.Tensor[] | null): { logits: tf.Tensor2D; output: tf.Tensor2D; taps: GraphTaps } {
  const run = new GraphRun(graph, t, probes);
  const output = run.run(graph.layers, x) as tf.Tensor2D;
  return { logits: run.logits as tf.Tensor2D, output, taps: run.taps };
}
