// A recurrent layer of a normalised layer graph (issue 14): what spec/recurrent-normalize.ts makes and
// model/recurrent-*.ts, measure/through-time.ts read. Sequences are [time, features] per example.
import type { ActivationSpec } from '../model/activations.js';
import type { InitializerSpec } from '../model/initializers.js';
import type { RecurrentLayerKind } from '../../schemas/vocabulary.js';
import { RECURRENT_LAYER_KINDS, isOneOf } from '../../schemas/vocabulary.js';

/** Gate blocks along the gates·units axis, in PyTorch's order (weight_ih_l0's rows): the layout of W, U and b. */
export const GATE_ORDER: Record<RecurrentLayerKind, readonly string[]> = {
  simple_rnn: ['h'],
  lstm: ['i', 'f', 'g', 'o'],
  gru: ['r', 'z', 'n'],
};

export interface RecurrentInits {
  weights: InitializerSpec;
  recurrent: InitializerSpec;
  bias: InitializerSpec;
}

export interface RecurrentNode {
  kind: RecurrentLayerKind;
  path: string;
  name: string;
  /** Always linear: a recurrent layer's nonlinearity is inside the recurrence (`cell`). */
  activation: ActivationSpec;
  /** simple_rnn: φ of the recurrence (default tanh); lstm and gru: tanh (their candidate's). */
  cell: ActivationSpec;
  inputShape: number[];
  outputShape: number[];
  units: number;
  /** Gate blocks: 1, 4 (lstm) or 3 (gru). */
  gates: number;
  steps: number;
  features: number;
  returnSequences: boolean;
  useBias: boolean;
  /** lstm: added to the forget gate's bias block after drawing; 0 otherwise. */
  forgetBias: number;
  init: RecurrentInits;
}

export function isRecurrentKind(kind: string): kind is RecurrentLayerKind {
  return isOneOf(RECURRENT_LAYER_KINDS, kind);
}

export function isRecurrentNode(node: { kind: string }): node is RecurrentNode {
  return isRecurrentKind(node.kind);
}
