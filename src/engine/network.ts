// A dense network as plain parameters plus a differentiable forward pass with tapped pre-activations.
import * as tf from '@tensorflow/tfjs';
import { activation, type Activation, type ActivationSpec } from './activations.js';
import { initialize } from './initializers.js';
import { Rng, deriveSeed } from './random.js';
import type { NormalizedNetwork } from './spec.js';
import type { LossName } from '../schemas/spec.js';

export interface LayerPlan {
  index: number;
  name: string;
  inputUnits: number;
  units: number;
  activation: ActivationSpec;
  /** Residual block this layer belongs to, or null. */
  block: number | null;
  /** 'start' / 'end' of its block (a one-layer block is both), 'inside', or null outside blocks. */
  blockStart: boolean;
  blockEnd: boolean;
}

export interface NetworkParameters {
  layers: LayerPlan[];
  /** Row-major [inputUnits][units] per layer (the tfjs Dense kernel layout). */
  weights: Float32Array[];
  biases: (Float32Array | null)[];
}

export function planLayers(net: NormalizedNetwork): LayerPlan[] {
  const sizes = [net.inputUnits, ...net.widths, net.outputUnits];
  const blockOf = new Map<number, number>();
  net.blocks.forEach((block, b) => block.forEach((l) => blockOf.set(l, b)));
  return Array.from({ length: net.depth }, (_, l) => {
    const block = blockOf.get(l) ?? null;
    const members = block === null ? [] : net.blocks[block]!;
    return {
      index: l,
      name: l === net.depth - 1 ? 'output' : `dense_${l}`,
      inputUnits: sizes[l]!,
      units: sizes[l + 1]!,
      activation: l === net.depth - 1 ? net.outputActivation : net.activations[l]!,
      block,
      blockStart: block !== null && members[0] === l,
      blockEnd: block !== null && members[members.length - 1] === l,
    };
  });
}

/** Draws every layer's weights and biases from the spec's seed, layer by layer, in order. */
export function initParameters(net: NormalizedNetwork, seed: number): NetworkParameters {
  const layers = planLayers(net);
  const rng = new Rng(deriveSeed(seed, 'weights'));
  const weights: Float32Array[] = [];
  const biases: (Float32Array | null)[] = [];
  for (const layer of layers) {
    weights.push(initialize(net.init.weights, layer.inputUnits, layer.units, rng));
    biases.push(net.useBias ? initialize(net.init.bias, 1, layer.units, rng, true) : null);
  }
  return { layers, weights, biases };
}

export interface ForwardTaps {
  /** Pre-activations h^l (batch × units). */
  pre: tf.Tensor2D[];
  /** Activations φ(h^l) (batch × units), before any residual addition. */
  post: tf.Tensor2D[];
  /** What the layer hands to the next one: φ(h^l), or x + α·F(x) at the end of a block. */
  out: tf.Tensor2D[];
}

export interface ForwardArgs {
  layers: LayerPlan[];
  acts: Activation[];
  residualScale: number;
  weights: tf.Tensor2D[];
  biases: (tf.Tensor1D | null)[];
  /** Zero tensors added to each pre-activation: their gradient is ∂Loss/∂h^l. */
  probes: tf.Tensor2D[] | null;
  x: tf.Tensor2D;
}

export function activationsFor(layers: LayerPlan[]): Activation[] {
  return layers.map((l) => activation(l.activation));
}

/** Runs the network; returns the output layer's pre-activation (logits) and activation, plus taps. */
export function forward(args: ForwardArgs): { logits: tf.Tensor2D; output: tf.Tensor2D; taps: ForwardTaps } {
  const taps: ForwardTaps = { pre: [], post: [], out: [] };
  let a = args.x;
  let blockInput: tf.Tensor2D | null = null;
  for (const layer of args.layers) {
    if (layer.blockStart) blockInput = a;
    let h: tf.Tensor2D = tf.matMul(a, args.weights[layer.index]!);
    const b = args.biases[layer.index];
    if (b) h = tf.add(h, b);
    if (args.probes) h = tf.add(h, args.probes[layer.index]!);
    const post = args.acts[layer.index]!.apply(h) as tf.Tensor2D;
    let out = post;
    if (layer.blockEnd && blockInput) {
      out = (args.residualScale === 1 ? tf.add(blockInput, post) : tf.add(blockInput, tf.mul(args.residualScale, post))) as tf.Tensor2D;
      blockInput = null;
    }
    taps.pre.push(h);
    taps.post.push(post);
    taps.out.push(out);
    a = out;
  }
  const last = args.layers.length - 1;
  return { logits: taps.pre[last]!, output: taps.out[last]!, taps };
}

const EPSILON = 1e-7;

/**
 * The batch-mean loss. Softmax + categorical and sigmoid + binary cross-entropy are computed from
 * the logits (log-sum-exp form) so that saturated outputs give finite, exact gradients.
 */
export function lossOf(loss: LossName, outputActivation: ActivationSpec, logits: tf.Tensor2D, output: tf.Tensor2D, y: tf.Tensor2D | null): tf.Scalar {
  const batch = output.shape[0];
  switch (loss) {
    case 'output':
      return tf.div(tf.sum(output), batch);
    case 'mse':
      return tf.mean(tf.squaredDifference(output, y!)) as tf.Scalar;
    case 'categorical_crossentropy': {
      const logp = outputActivation.name === 'softmax'
        ? tf.logSoftmax(logits)
        : tf.log(tf.clipByValue(tf.div(output, tf.sum(output, -1, true)), EPSILON, 1 - EPSILON));
      return tf.neg(tf.div(tf.sum(tf.mul(y!, logp)), batch)) as tf.Scalar;
    }
    case 'binary_crossentropy': {
      if (outputActivation.name === 'sigmoid') {
        // max(z, 0) − z·y + log(1 + e^(−|z|))
        const z = logits;
        return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y!)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))) as tf.Scalar;
      }
      const p = tf.clipByValue(output, EPSILON, 1 - EPSILON);
      return tf.neg(tf.mean(tf.add(tf.mul(y!, tf.log(p)), tf.mul(tf.sub(1, y!), tf.log(tf.sub(1, p)))))) as tf.Scalar;
    }
  }
}
