// The normalised sequence layers (issue 14): token embedding, positional encoding and multi-head self-attention,
// and the transformer blocks a spec wrote out, as spec/graph-types.ts's unions include them.
import type { ActivationSpec } from '../model/activations.js';
import type { LayerInits } from './layer-inits.js';
import type { PositionalEncodingKind, TransformerNorm } from '../../schemas/vocabulary.js';

interface SequenceBase {
  path: string;
  name: string;
  activation: ActivationSpec;
  inputShape: number[];
  outputShape: number[];
}

/** [T] token ids → [T, dim]: a [vocab][dim] table, a row of result.layers. */
export interface EmbeddingNode extends SequenceBase {
  kind: 'embedding';
  vocab: number;
  dim: number;
  /** The row's output units (dim), as dense layers call theirs. */
  units: number;
  useBias: false;
  init: LayerInits;
}

/** [T, D] → [T, D] multi-head self-attention; one row whose weight tensor is Wq, Wk, Wv ([D][H·k]) and Wo ([H·k][D]) packed flat. */
export interface AttentionNode extends SequenceBase {
  kind: 'attention';
  heads: number;
  keyDim: number;
  causal: boolean;
  /** D, the input's last axis and the output's. */
  units: number;
  useBias: boolean;
  init: LayerInits;
}

export interface PositionalNode extends SequenceBase {
  kind: 'positional_encoding';
  encoding: PositionalEncodingKind;
}

export type SequenceWeightNode = EmbeddingNode | AttentionNode;

/** One transformer_block as written out: which rows are its attention and its feed-forward layers. */
export interface TransformerBlockPlan {
  path: string;
  norm: TransformerNorm;
  attentionRow: number;
  feedForwardRows: number[];
}
