// The normalised layer graph: every layer with its defaults filled in, its path, and the shapes it reads and
// writes (one example, NHWC). What spec/graph-normalize.ts makes and model/graph-*.ts, measure/graph-*.ts read.
import type { ActivationSpec } from '../model/activations.js';
import type { InitializerSpec } from '../model/initializers.js';
import type { LayerInits } from './layer-inits.js';
import type { ConvPadding, DropoutMode, ResidualVariant, ShortcutKind } from '../../schemas/vocabulary.js';
import type { RecurrentNode } from './recurrent-types.js';
import type { PositionalNode, SequenceWeightNode, TransformerBlockPlan } from './transformer-types.js';

interface NodeBase {
  /** Dotted path of the layer: its name, inside a residual block "<block path>.<name>" (e.g. stage2.block1.conv2). */
  path: string;
  /** The name as the request gives it (or the default: kind and position). */
  name: string;
  activation: ActivationSpec;
  /** Shapes of one example: [h, w, c] or [features]. */
  inputShape: number[];
  outputShape: number[];
}

export type { LayerInits } from './layer-inits.js';

export interface DenseNode extends NodeBase {
  kind: 'dense';
  units: number;
  useBias: boolean;
  init: LayerInits;
}

export interface ConvNode extends NodeBase {
  kind: 'conv2d';
  filters: number;
  /** [kh, kw] (a request's k is [k, k]). */
  kernel: [number, number];
  stride: number;
  padding: ConvPadding | number;
  dilation: number;
  useBias: boolean;
  init: LayerInits;
}

export interface PoolNode extends NodeBase {
  kind: 'max_pool' | 'avg_pool';
  /** [height, width] of the window, and the stride along each (a request's stride s is [s, s]; default the window). */
  size: [number, number];
  stride: [number, number];
}

export interface ShapeNode extends NodeBase {
  kind: 'global_avg_pool' | 'flatten' | 'batch_norm' | 'layer_norm' | 'activation';
}

export interface DropoutNode extends NodeBase {
  kind: 'dropout';
  rate: number;
  mode: DropoutMode;
}

export interface ResidualNode extends NodeBase {
  kind: 'residual';
  layers: BranchNode[];
  shortcut: ShortcutKind;
  /** plain: the fixed α; rezero, skipinit: the learnable gate's initial value; fixup: the learnable multiplier's. */
  scale: number;
  variant: ResidualVariant;
  /** The projection of a projection shortcut (path <block>.shortcut): a 1×1 strided conv2d, or dense on flat input. */
  projection: ConvNode | DenseNode | null;
}

export type WeightNode = DenseNode | ConvNode | RecurrentNode | SequenceWeightNode;
export type BranchNode = WeightNode | PoolNode | ShapeNode | DropoutNode | PositionalNode;
export type GraphNode = BranchNode | ResidualNode;

/** One row of result.layers: a dense, conv2d or recurrent layer (projection shortcuts included), in graph order. */
export interface RowPlan {
  index: number;
  node: WeightNode;
  /** Path of the residual block it belongs to, or null. */
  block: string | null;
  /** A projection shortcut: left out of the depth-wise slope fits (it is not on the main path's chain). */
  shortcut: boolean;
  fanIn: number;
  fanOut: number;
  /** Entries of the weight tensor and of the layer's output per example. */
  weightCount: number;
  outputSize: number;
}

export interface NormParam {
  /** Path of the batch_norm or layer_norm layer. */
  path: string;
  kind: 'batch_norm' | 'layer_norm';
  /** Channels (the last axis): gamma and beta have this many entries. */
  channels: number;
  /** The row (nearest dense/conv2d before it) that reports its gradients as auxParameters. */
  row: number;
}

/** A residual block's learnable scalars (variants other than plain), reported on the block's last branch row. */
export interface BlockScalars {
  /** Path of the residual block. */
  path: string;
  variant: Exclude<ResidualVariant, 'plain'>;
  /** The branch's dense/conv2d rows, in order (Fixup gives each two scalar biases). */
  branchRows: number[];
  /** The row that reports the scalars: the branch's last dense/conv2d row. */
  row: number;
}

export interface NormalizedGraph {
  input: number[];
  layers: GraphNode[];
  rows: RowPlan[];
  norms: NormParam[];
  /** Residual blocks with a variant other than plain, in graph order. */
  blocks: BlockScalars[];
  outputUnits: number;
  /** Trainable entries: weights, biases, gamma and beta. */
  parameters: number;
  /** Multiply-add FLOPs (2 per MAC) of the weight layers' forward pass, per example. */
  weightFlopsPerExample: number;
  /** Entries of every layer's output per example (element-wise work: activations, normalisation, statistics). */
  elementsPerExample: number;
  /** The transformer_blocks the spec wrote out (spec/transformer-spec.ts), in order; absent without any. */
  transformerBlocks?: TransformerBlockPlan[];
}
