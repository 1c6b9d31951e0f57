// Zero-by-design: which gradients are exactly 0 at step 0 because of the spec's structure (zero gates, zero-initialised layers).
import type { NormalizedSpec } from '../spec/normalize.js';
import { planLayers, type AuxName, type LayerPlan } from '../model/network.js';
import { activation } from '../model/activations.js';
import type { InitializerSpec } from '../model/initializers.js';

/** Whether an initialiser draws nothing but zeros: decided from its parameters, never from the draws. */
export function isZeroInitializer(init: InitializerSpec): boolean {
  switch (init.name) {
    case 'zeros': return true;
    case 'constant': return init.value === 0;
    case 'random_normal':
    case 'truncated_normal': return init.mean === 0 && init.stddev === 0;
    case 'random_uniform': return init.min === 0 && init.max === 0;
    case 'orthogonal':
    case 'identity': return init.gain === 0;
    default: return false;
  }
}

export interface StructuralLayer {
  index: number;
  /** ∂Loss/∂W of this layer is exactly 0 at step 0 by construction. */
  weightGradZero: boolean;
  /** ∂Loss/∂h of this layer (backpropNorm) is exactly 0 at step 0 by construction. */
  backpropZero: boolean;
  /** The structural cause in words, when either is zero. */
  cause: string | null;
  /** The pre-activation is exactly 0 by construction (zero weights and biases, or a zero input). */
  preActivationZero: boolean;
}

export interface StructuralAux {
  layer: number;
  name: AuxName;
  gradZero: boolean;
}

export interface StructuralZeros {
  layers: StructuralLayer[];
  aux: StructuralAux[];
  /** Whether any weight gradient is zero by design. */
  any: boolean;
}

/**
 * Propagates "exactly zero" through the network's graph using nothing but the spec: which weights
 * start at zero (zeros/constant 0 initialisers, Fixup's zeroed layers), which residual gates start at
 * 0 (ReZero, SkipInit, a plain scale of 0), and φ(0), φ'(0) of each activation. Magnitudes are never
 * consulted, so a gradient that merely underflows is not called zero by design.
 */
export function structuralZeros(spec: NormalizedSpec): StructuralZeros {
  const net = spec.network;
  const layers = planLayers(net);
  const L = layers.length;
  const fixup = net.residual.variant === 'fixup';
  const variantName = net.residual.variant === 'plain' ? 'residual.scale' : net.residual.variant;

  const zeroWeightCause = (layer: LayerPlan): string | null => {
    if (fixup && layer.index === L - 1) return 'the output layer is zero-initialised (Fixup)';
    if (fixup && layer.blockEnd) return `the last layer of block ${layer.block}'s branch (layer ${layer.index}) is zero-initialised (Fixup)`;
    if (isZeroInitializer(net.init.weights)) return `layer ${layer.index}'s weights are initialised to zero (init.weights ${net.init.weights.name})`;
    return null;
  };
  const biasZero = !net.useBias || isZeroInitializer(net.init.bias);
  // The gate multiplying each block's branch: residual.scale for plain (fixed), the initial learnable value otherwise.
  const gateZero = net.residual.scale === 0;
  const gateCause = (block: number): string =>
    `block ${block}'s branch is multiplied by ${variantName === 'residual.scale' ? 'residual.scale' : `its ${variantName} gate`} = 0 at step 0`;

  // Forward: which layer inputs and pre-activations are exactly 0.
  const inputZero = new Array<boolean>(L).fill(false);
  const hZero = new Array<boolean>(L).fill(false);
  const postZero = new Array<boolean>(L).fill(false);
  const blockStartOf = new Map<number, number>();
  const blockEndOf = new Map<number, number>();
  for (const layer of layers) {
    if (layer.blockStart) blockStartOf.set(layer.block!, layer.index);
    if (layer.blockEnd) blockEndOf.set(layer.block!, layer.index);
  }
  for (const layer of layers) {
    const l = layer.index;
    if (l > 0) {
      const prev = layers[l - 1]!;
      if (prev.blockEnd) {
        const start = blockStartOf.get(prev.block!)!;
        inputZero[l] = inputZero[start]! && (postZero[l - 1]! || gateZero);
      } else {
        inputZero[l] = postZero[l - 1]!;
      }
    }
    hZero[l] = (zeroWeightCause(layer) !== null || inputZero[l]!) && biasZero;
    const f = activation(layer.activation).f;
    postZero[l] = hZero[l]! && f !== null && f(0) === 0;
  }

  // Backward: which gradients are exactly 0, with the cause carried along.
  const gOut: (string | null)[] = new Array<string | null>(L).fill(null); // cause if ∂Loss/∂out_l ≡ 0
  const delta: (string | null)[] = new Array<string | null>(L).fill(null);
  const gPostCause: (string | null)[] = new Array<string | null>(L).fill(null);
  for (let l = L - 1; l >= 0; l--) {
    const layer = layers[l]!;
    if (l < L - 1) {
      gPostCause[l] = gOut[l] ?? (layer.blockEnd && gateZero ? gateCause(layer.block!) : null);
      let d = gPostCause[l]!;
      if (!d && hZero[l]) {
        const df = activation(layer.activation).df;
        // tfjs differentiates ReLU-like kinks at 0 as 0 (step(0) = 0).
        if (df && df(0) === 0) d = `layer ${l}'s pre-activation is exactly 0 (zero weights and biases) where its ${layer.activation.name}'(0) = 0`;
      }
      delta[l] = d;
    }
    if (l === 0) break;
    const wCause = zeroWeightCause(layer);
    const through = delta[l] ?? wCause;
    if (layer.blockStart) {
      const skip = gOut[blockEndOf.get(layer.block!)!];
      gOut[l - 1] = through && skip ? skip : null;
    } else {
      gOut[l - 1] = through;
    }
  }

  const result: StructuralLayer[] = layers.map((layer, l) => {
    const weightCause = delta[l] ?? (inputZero[l] ? `layer ${l}'s input is exactly 0 at step 0` : null);
    return { index: l, weightGradZero: weightCause !== null, backpropZero: delta[l] !== null, cause: weightCause, preActivationZero: hZero[l]! };
  });

  const aux: StructuralAux[] = [];
  for (const layer of layers) {
    const l = layer.index;
    const hidden = l < L - 1;
    if (layer.block !== null && fixup) {
      aux.push({ layer: l, name: 'fixup_bias_in', gradZero: delta[l] !== null || zeroWeightCause(layer) !== null });
      aux.push({ layer: l, name: 'fixup_bias_act', gradZero: delta[l] !== null });
    }
    if (hidden && net.normalization !== 'none') {
      const df = activation(layer.activation).df;
      const dzZero = gPostCause[l] !== null || (hZero[l]! && df !== null && df(0) === 0);
      aux.push({ layer: l, name: 'gamma', gradZero: dzZero || hZero[l]! });
      aux.push({ layer: l, name: 'beta', gradZero: dzZero });
    }
    if (layer.blockEnd && net.residual.variant !== 'plain') {
      aux.push({ layer: l, name: net.residual.variant === 'fixup' ? 'fixup_scale' : 'gate', gradZero: gOut[l] !== null || postZero[l]! });
    }
  }
  return { layers: result, aux, any: result.some((r) => r.weightGradZero) };
}

/** No zero-by-design structure (a layer graph: no gates, no Fixup): every layer is measured. */
export function noStructuralZeros(layers: number): StructuralZeros {
  return {
    layers: Array.from({ length: layers }, (_, index) => ({ index, weightGradZero: false, backpropZero: false, cause: null, preActivationZero: false })),
    aux: [],
    any: false,
  };
}
