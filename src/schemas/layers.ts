// JSON schemas (TypeBox) of a layer graph's layers: network.layers, one object per layer, told apart by `kind`
// (the kinds are LAYER_KINDS in vocabulary.ts). Tensors are NHWC (tfjs's layout): images [height, width, channels].
import { Type, type Static, type TSchema } from 'typebox';
import { ActivationSchema, InitializerSchema } from './activation-init.js';
import { RecurrentLayerSchemas } from './recurrent-layers.js';
import { CONV_PADDINGS, DROPOUT_MODES, enumOf, type LayerKind, POSITIONAL_ENCODINGS, RESIDUAL_VARIANTS, SHORTCUT_KINDS, TRANSFORMER_NORMS } from './vocabulary.js';

export const LayerInitSchema = Type.Object(
  {
    weights: Type.Optional(InitializerSchema),
    bias: Type.Optional(InitializerSchema),
  },
  { additionalProperties: false, description: 'This layer\'s initialisers (default: network.init, whose defaults are glorot_uniform weights and zero biases). Fans: dense fan_in = inputs, fan_out = units; conv2d fan_in = kh·kw·c_in, fan_out = kh·kw·c_out.' },
);

/** Fields every layer may carry. */
const common = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.]+$', description: 'The layer\'s name in its row\'s path (default: kind and position in its scope, e.g. conv2, dense1, block3); inside a residual block the path is <block>.<name>. Letters, digits, _ and dots.' })),
  activation: Type.Optional({ ...ActivationSchema, description: 'Activation applied to the layer\'s output (default linear). On a residual layer: applied after the addition.' } as typeof ActivationSchema),
  init: Type.Optional(LayerInitSchema),
};

const Int = (description: string, minimum = 1) => Type.Integer({ minimum, description });

const layer = <K extends LayerKind, P extends Record<string, TSchema>>(kind: K, properties: P, description: string) =>
  Type.Object({ kind: Type.Literal(kind), ...properties, ...common }, { additionalProperties: false, title: `Layer_${kind}`, description });

export const DenseLayerSchema = layer('dense', {
  units: Type.Optional(Int('Output units. May be omitted on the last layer: then the width of the data\'s targets, as network.outputUnits.')),
  useBias: Type.Optional(Type.Boolean({ description: 'Default network.useBias (true).' })),
}, 'Fully connected: y = xW + b, W [inputs][units]. Reads a flat [features] tensor: after an image-shaped one put flatten or global_avg_pool (a 400 says so otherwise).');

export const Conv2dLayerSchema = layer('conv2d', {
  filters: Int('Output channels c_out.'),
  kernel: Type.Union([Int('Square kernel size k (kh = kw = k).'), Type.Array(Int('Kernel height kh, then width kw.'), { minItems: 2, maxItems: 2, description: '[kh, kw]: a kernel of kh rows and kw columns.' })], { description: 'Kernel size: k (k × k) or [kh, kw].' }),
  stride: Type.Optional(Int('Stride (default 1).')),
  padding: Type.Optional(Type.Union([enumOf(CONV_PADDINGS, 'same (output ⌈in/stride⌉, tfjs/TensorFlow placement) or valid (no padding).'), Type.Integer({ minimum: 0, description: 'Zeros added on every side (PyTorch\'s padding=n).' })], { description: 'Default same.' })),
  dilation: Type.Optional(Int('Dilation (default 1); with dilation > 1 the stride must be 1.')),
  useBias: Type.Optional(Type.Boolean({ description: 'Default network.useBias (true).' })),
}, '2-D convolution over an [h, w, c_in] input; kernel layout [kh][kw][c_in][c_out] (tfjs).');

const poolFields = {
  size: Type.Union([Int('Square window size s (s × s).'), Type.Array(Int('Window height, then width.'), { minItems: 2, maxItems: 2, description: '[height, width] of the window.' })], { description: 'Window size: s (s × s) or [height, width].' }),
  stride: Type.Optional(Int('Stride, the same along height and width (default: the window\'s size along each).')),
};
export const MaxPoolLayerSchema = layer('max_pool', poolFields, 'Max pooling, valid padding (PyTorch\'s default).');
export const AvgPoolLayerSchema = layer('avg_pool', poolFields, 'Average pooling, valid padding (PyTorch\'s default).');
export const GlobalAvgPoolLayerSchema = layer('global_avg_pool', {}, 'Mean over height and width: [h, w, c] → [c].');
export const FlattenLayerSchema = layer('flatten', {}, '[h, w, c] → [h·w·c] in NHWC order (transpose from NCHW before comparing with PyTorch\'s flatten).');
export const BatchNormLayerSchema = layer('batch_norm', {}, 'Training-mode batch normalisation: per channel (the last axis) over the batch (and height and width), ε = 1e-5, learnable gamma (1) and beta (0) per channel, reported as auxParameters of the nearest dense/conv2d layer before it.');
export const LayerNormLayerSchema = layer('layer_norm', {}, 'Layer normalisation: per example over every axis but the batch, ε = 1e-5, learnable gamma (1) and beta (0) per channel (last axis), reported as auxParameters of the nearest dense/conv2d layer before it.');
export const ActivationLayerSchema = layer('activation', {}, 'Applies its activation (required here): { "kind": "activation", "activation": "relu" }.');
export const DropoutLayerSchema = layer('dropout', {
  rate: Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'Drop rate p.' }),
  mode: Type.Optional(enumOf(DROPOUT_MODES, 'inference (default): the identity, the network as it predicts; train: inverted dropout, every entry kept with probability 1 − p and scaled by 1/(1 − p), a fresh mask drawn from the seed for every analysis batch and every training step (the step\'s record uses the step\'s mask; the evaluations run it as inference).')),
}, 'Dropout: the identity unless mode is train.');

// Sequence layers (issue 14): a sequence is [time, features] per example; [time] of integer token ids before an embedding.
export const EmbeddingLayerSchema = layer('embedding', {
  vocab: Int('Vocabulary size V: the input is [time] of integer token ids in [0, V) (an id outside embeds to the zero vector).'),
  dim: Int('Embedding width D: [time] → [time, D].'),
}, 'Token embedding: a [V][D] table (a row of result.layers; weights [vocab][dim], PyTorch nn.Embedding.weight as is), computed as one_hot(ids)·E so that its gradient is the same product on every backend.');
export const PositionalEncodingLayerSchema = layer('positional_encoding', {
  encoding: Type.Optional(enumOf(POSITIONAL_ENCODINGS, 'sinusoidal (default; Vaswani et al. 2017: PE[t, 2i] = sin(t/10000^(2i/D)), PE[t, 2i+1] = cos(…)).')),
}, 'Adds a fixed positional encoding to a [time, D] sequence (no parameters).');
export const AttentionLayerSchema = layer('attention', {
  heads: Int('Heads H.'),
  keyDim: Type.Optional(Int('Width of each head\'s queries, keys and values (default D/H, D the input\'s last axis).')),
  causal: Type.Optional(Type.Boolean({ description: 'Each step attends only to itself and earlier steps (default false).' })),
  useBias: Type.Optional(Type.Boolean({ description: 'Default network.useBias (true).' })),
}, 'Multi-head self-attention on [time, D]: Q = xWq + bq, K = xWk + bk, V = xWv + bv (each [D][H·keyDim]), per head softmax(QKᵀ/√keyDim)V, concatenated, then ·Wo + bo ([H·keyDim][D]): [time, D] → [time, D]. One row of result.layers whose weights are Wq, Wk, Wv, Wo (include: parameters gives them as 4 rows, each matrix flattened row-major, and the bias as bq, bk, bv, bo concatenated). Wq…Wo are each drawn from the initialiser with fan_in D and fan_out H·keyDim.');

/** The layers a residual branch may hold: every kind but residual itself (blocks do not nest). */
export const PlainLayerSchema = Type.Union(
  [DenseLayerSchema, Conv2dLayerSchema, MaxPoolLayerSchema, AvgPoolLayerSchema, GlobalAvgPoolLayerSchema, FlattenLayerSchema,
    BatchNormLayerSchema, LayerNormLayerSchema, ActivationLayerSchema, DropoutLayerSchema, ...RecurrentLayerSchemas,
    EmbeddingLayerSchema, PositionalEncodingLayerSchema, AttentionLayerSchema],
  { title: 'PlainLayer', description: 'A layer other than residual.' },
);

export const ResidualLayerSchema = layer('residual', {
  layers: Type.Array(PlainLayerSchema, { minItems: 1, description: 'The branch F, in order.' }),
  shortcut: Type.Optional(enumOf(SHORTCUT_KINDS, 'identity (default; the branch must keep the shape) or projection: a 1×1 conv2d with the branch\'s stride and output channels (image input) or a dense layer (flat input), with its own parameters and its own row (path <block>.shortcut).')),
  scale: Type.Optional(Type.Number({ description: 'Branch multiplier α: output shortcut(x) + α·F(x) (default 1).' })),
  variant: Type.Optional(enumOf(RESIDUAL_VARIANTS, 'plain (default): shortcut(x) + scale·F(x) with scale fixed; rezero (Bachlechner et al. 2020) and skipinit (De & Smith 2020): shortcut(x) + α·F(x) with α a learnable scalar, initial scale (default 0); fixup (Zhang, Dauphin & Ma 2019): the branch\'s dense/conv2d layers but the last drawn by init and scaled by L^(−1/(2m−2)) (L fixup blocks, m the branch\'s dense/conv2d layers), the last one and the network\'s head zeroed, a learnable scalar bias before each branch layer\'s input and one before its activation (initial 0), and a learnable multiplier on F (initial scale, default 1). The scalars are auxParameters (gate; fixup_bias_in, fixup_bias_act, fixup_scale) of the branch\'s rows.')),
}, 'A residual block: activation(shortcut(x) + scale·F(x)).');

export const TransformerBlockLayerSchema = Type.Object({
  kind: Type.Literal('transformer_block'),
  name: common.name,
  heads: Int('Attention heads H (keyDim = dim/H).'),
  dim: Int('Model width D: the input\'s last axis, kept by the block.'),
  ffDim: Int('Width of the feed-forward layer (dense ffDim → dense D).'),
  norm: Type.Optional(enumOf(TRANSFORMER_NORMS, 'post (default; Vaswani et al. 2017: x = LN(x + F(x)) after each sublayer) or pre (x = x + F(LN(x)); Xiong et al. 2020). A pre-LN stack usually ends in its own layer_norm.')),
  dropout: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'Dropout after attention and after the feed-forward layer (the identity in an analysis; default 0).' })),
  causal: Type.Optional(Type.Boolean({ description: 'Causal self-attention (default false).' })),
  ffActivation: Type.Optional({ ...ActivationSchema, description: 'Activation of the first feed-forward dense layer (default relu).' } as typeof ActivationSchema),
  init: Type.Optional(LayerInitSchema),
}, { additionalProperties: false, title: 'Layer_transformer_block', description: 'A transformer encoder block on [time, D], written out in the normalised spec as residual blocks <name>.attn (attention) and <name>.ff (dense ffDim, dense D) with layer_norm <name>.ln1/<name>.ln2 after them (post) or layer_norm first inside each branch (pre). Its per-block gradient norms come back in result.blocks.' });

export const LayerSchema = Type.Union([...PlainLayerSchema.anyOf, ResidualLayerSchema], {
  title: 'Layer',
  description: 'One layer of network.layers, told apart by kind. Every layer may carry name, activation and init.',
});

/** What network.layers may hold: a layer, or a transformer_block (written out as layers before normalisation). */
export const NetworkLayerSchema = Type.Union([...LayerSchema.anyOf, TransformerBlockLayerSchema], {
  title: 'NetworkLayer',
  description: 'One entry of network.layers: a Layer, or a transformer_block that the normalised spec writes out as residual blocks and layer norms.',
});

export type LayerInput = Static<typeof LayerSchema>;
export type NetworkLayerInput = Static<typeof NetworkLayerSchema>;
export type PlainLayerInput = Static<typeof PlainLayerSchema>;
export type ResidualLayerInput = Static<typeof ResidualLayerSchema>;
export type TransformerBlockInput = Static<typeof TransformerBlockLayerSchema>;
export type LayerInitInput = Static<typeof LayerInitSchema>;
