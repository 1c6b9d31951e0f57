// A dense network as plain parameters plus a differentiable forward pass with tapped pre-activations.
import * as tf from '@tensorflow/tfjs';
import { activation, type Activation, type ActivationSpec } from './activations.js';
import { initialize } from './initializers.js';
import { Rng, deriveSeed } from '../common/random.js';
import type { NormalizationKind, NormalizedNetwork } from '../spec/normalize.js';
import type { LossName } from '../../schemas/spec.js';

export interface LayerPlan {
  index: number;
  name: string;
  inputUnits: number;
  units: number;
  activation: ActivationSpec;
  /** Residual block this layer belongs to, or null. */
  block: number | null;
  /** First layer of its residual block, whose input the skip connection carries (a one-layer block's layer is first and last); false outside blocks. */
  blockStart: boolean;
  /** Last layer of its residual block, where the skip connection adds back; false outside blocks. */
  blockEnd: boolean;
}

/**
 * Parameters besides W and b: normalisation gamma/beta (vectors of the layer's units), the learnable
 * ReZero/SkipInit gate, and Fixup's scalar biases and multiplier (single numbers).
 */
import type { AuxParameterName as AuxName } from '../../schemas/vocabulary.js';
export type { AuxName };

export interface AuxParameter {
  /** The layer it belongs to; a block's gate and Fixup multiplier belong to the block's last layer. */
  layer: number;
  name: AuxName;
  /** Initial values. */
  values: Float32Array;
}

/** gamma and beta are vectors; every other auxiliary parameter is a scalar. */
export function auxIsVector(name: AuxName): boolean {
  return name === 'gamma' || name === 'beta';
}

export interface AuxTensor {
  layer: number;
  name: AuxName;
  tensor: tf.Tensor;
}

export interface NetworkParameters {
  layers: LayerPlan[];
  /** Row-major [inputUnits][units] per layer (the tfjs Dense kernel layout). */
  weights: Float32Array[];
  biases: (Float32Array | null)[];
  /** Auxiliary parameters (normalisation, residual gates, Fixup scalars); absent or empty for plain networks. */
  aux?: AuxParameter[];
}

export function planLayers(net: NormalizedNetwork): LayerPlan[] {
  const sizes = [net.inputUnits, ...net.widths, net.outputUnits];
  const blockOf = new Map<number, number>();
  net.blocks.forEach((block, b) => block.forEach((l) => blockOf.set(l, b)));
  return Array.from({ length: net.depth }, (_, l) => {
    const block = blockOf.get(l) ?? null;
    const members = block === null ? [] : net.blocks[block]!;
    const blockEnd = block !== null && members[members.length - 1] === l;
    // Fixup's branches end in the addition, not in a nonlinearity (its ResNet blocks apply it after the
    // sum). With one, the zeroed last layer would sit at h = 0 where relu'(0) = 0 and never learn.
    const linearEnd = blockEnd && net.residual.variant === 'fixup';
    return {
      index: l,
      name: l === net.depth - 1 ? 'output' : `dense_${l}`,
      inputUnits: sizes[l]!,
      units: sizes[l + 1]!,
      activation: l === net.depth - 1 ? net.outputActivation : linearEnd ? { name: 'linear' } : net.activations[l]!,
      block,
      blockStart: block !== null && members[0] === l,
      blockEnd,
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
    biases.push(net.useBias ? initialize(net.init.bias, 1, layer.units, rng, true, { fanIn: layer.inputUnits, fanOut: layer.units }) : null);
  }
  // Variants rewrite the draws above rather than drawing differently, so the RNG stream (and with it
  // every plain network's weights) stays what it was before variants existed.
  if (net.residual.variant === 'fixup') applyFixup(net, weights);
  const aux = auxParameters(net, layers);
  return aux.length > 0 ? { layers, weights, biases, aux } : { layers, weights, biases };
}

/** Fixup's branch scale L^(−1/(2m−2)) for L blocks of m layers; 1 for one-layer branches (their only layer is zeroed). */
export function fixupBranchScale(blocks: number, m: number): number {
  return m > 1 ? blocks ** (-1 / (2 * m - 2)) : 1;
}

/** Zhang et al. 2019: scale every branch layer but the last, zero the last one of each branch and the output layer. */
function applyFixup(net: NormalizedNetwork, weights: Float32Array[]): void {
  const factor = fixupBranchScale(net.blocks.length, net.residual.every);
  for (const block of net.blocks) {
    block.forEach((l, i) => {
      if (i === block.length - 1) weights[l]!.fill(0);
      else for (let k = 0; k < weights[l]!.length; k++) weights[l]![k]! *= factor;
    });
  }
  weights[net.depth - 1]!.fill(0);
}

/** Entries of every auxiliary parameter together, without drawing any weights. */
export function auxParameterCount(net: NormalizedNetwork): number {
  return auxParameters(net, planLayers(net)).reduce((n, p) => n + p.values.length, 0);
}

function auxParameters(net: NormalizedNetwork, layers: LayerPlan[]): AuxParameter[] {
  const aux: AuxParameter[] = [];
  const scalar = (v: number): Float32Array => Float32Array.of(v);
  for (const layer of layers) {
    const hidden = layer.index < net.depth - 1;
    if (layer.block !== null && net.residual.variant === 'fixup') {
      aux.push({ layer: layer.index, name: 'fixup_bias_in', values: scalar(0) });
      aux.push({ layer: layer.index, name: 'fixup_bias_act', values: scalar(0) });
    }
    if (hidden && net.normalization !== 'none') {
      aux.push({ layer: layer.index, name: 'gamma', values: new Float32Array(layer.units).fill(1) });
      aux.push({ layer: layer.index, name: 'beta', values: new Float32Array(layer.units) });
    }
    if (layer.blockEnd) {
      if (net.residual.variant === 'rezero' || net.residual.variant === 'skipinit') {
        aux.push({ layer: layer.index, name: 'gate', values: scalar(net.residual.scale) });
      } else if (net.residual.variant === 'fixup') {
        aux.push({ layer: layer.index, name: 'fixup_scale', values: scalar(net.residual.scale) });
      }
    }
  }
  return aux;
}

export interface ForwardTaps {
  /** What each activation sees (batch × units): the pre-activation h^l, or its normalisation where the network has one. */
  pre: tf.Tensor2D[];
  /** Activations φ(h^l) (batch × units), before any residual addition. */
  post: tf.Tensor2D[];
  /** What the layer hands to the next one: φ(h^l), or x + α·F(x) at the end of a block. */
  out: tf.Tensor2D[];
  /** The matrix each layer multiplies by W (its input, plus Fixup's scalar input bias): ∂Loss/∂W = inputᵀ·δ. */
  input: tf.Tensor2D[];
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
  /** Auxiliary parameters as tensors (normalisation gamma/beta, gates, Fixup scalars). */
  aux?: AuxTensor[];
  /** Normalisation of the hidden layers (default none). */
  normalization?: NormalizationKind;
}

/** PyTorch's BatchNorm1d/LayerNorm epsilon. */
export const NORM_EPSILON = 1e-5;

/** gamma·(h − mean)/√(var + ε) + beta over the batch (axis 0) or over the units (axis 1). */
function normalizeLayer(h: tf.Tensor2D, kind: 'batch' | 'layer', gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(h, kind === 'batch' ? 0 : 1, true);
  const n = tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, NORM_EPSILON)));
  return tf.add(tf.mul(n, gamma), beta) as tf.Tensor2D;
}

export function activationsFor(layers: LayerPlan[]): Activation[] {
  return layers.map((l) => activation(l.activation));
}

/** Runs the network; returns the output layer's pre-activation (logits) and activation, plus taps. */
export function forward(args: ForwardArgs): { logits: tf.Tensor2D; output: tf.Tensor2D; taps: ForwardTaps } {
  const taps: ForwardTaps = { pre: [], post: [], out: [], input: [] };
  const aux = new Map<string, tf.Tensor>();
  for (const p of args.aux ?? []) aux.set(`${p.layer}:${p.name}`, p.tensor);
  const auxOf = (layer: number, name: AuxName): tf.Tensor | undefined => aux.get(`${layer}:${name}`);
  const normalization = args.normalization ?? 'none';
  const last = args.layers.length - 1;
  let a = args.x;
  let blockInput: tf.Tensor2D | null = null;
  for (const layer of args.layers) {
    if (layer.blockStart) blockInput = a;
    const biasIn = auxOf(layer.index, 'fixup_bias_in');
    const input: tf.Tensor2D = biasIn ? tf.add(a, biasIn) : a;
    let h: tf.Tensor2D = tf.matMul(input, args.weights[layer.index]!);
    const b = args.biases[layer.index];
    if (b) h = tf.add(h, b);
    const biasAct = auxOf(layer.index, 'fixup_bias_act');
    if (biasAct) h = tf.add(h, biasAct);
    if (args.probes) h = tf.add(h, args.probes[layer.index]!);
    // What the activation sees: h itself, or h normalised (never the output layer's logits).
    let z = h;
    if (normalization !== 'none' && layer.index < last) {
      z = normalizeLayer(h, normalization, auxOf(layer.index, 'gamma') ?? tf.scalar(1), auxOf(layer.index, 'beta') ?? tf.scalar(0));
    }
    const post = args.acts[layer.index]!.apply(z) as tf.Tensor2D;
    let out = post;
    if (layer.blockEnd && blockInput) {
      const gate = auxOf(layer.index, 'gate') ?? auxOf(layer.index, 'fixup_scale');
      if (gate) out = tf.add(blockInput, tf.mul(gate, post));
      else out = (args.residualScale === 1 ? tf.add(blockInput, post) : tf.add(blockInput, tf.mul(args.residualScale, post))) as tf.Tensor2D;
      blockInput = null;
    }
    taps.input.push(input);
    taps.pre.push(z);
    taps.post.push(post);
    taps.out.push(out);
    a = out;
  }
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
