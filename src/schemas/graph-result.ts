// JSON schemas (TypeBox) of what a layer graph adds to a result row (the parameters' and batches' nested
// tensors are in result.ts, beside the dense layouts).
import { Type } from 'typebox';
import { enumOf, PARAMETERISED_LAYER_KINDS } from './vocabulary.js';

/** Optional LayerStats fields, present on the rows of a layer graph only (the dense shorthand's rows are unchanged). */
export const GraphRowFields = {
  path: Type.Optional(Type.String({ description: 'Layer graphs: the layer\'s dotted path, e.g. stem.conv, stage2.block1.conv2, stage2.block1.shortcut, head.dense.' })),
  kind: Type.Optional(enumOf(PARAMETERISED_LAYER_KINDS, 'Layer graphs: dense, conv2d, embedding or attention.')),
  outputShape: Type.Optional(Type.Array(Type.Integer(), { description: 'Layer graphs: the shape of the layer\'s output for one example ([h, w, c] or [units]).' })),
  block: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'Layer graphs: the path of the residual block the row belongs to (its branch or its projection shortcut), or null.' })),
  shortcut: Type.Optional(Type.Boolean({ description: 'Layer graphs: true for a projection shortcut\'s row. Shortcut rows are left out of the depth-wise fits (summary log-slopes, verdict) and of the first-to-last ratios: they are not on the chain of the main path.' })),
  spatial: Type.Optional(Type.Array(Type.Integer(), { description: 'conv2d: the output\'s [height, width].' })),
  channelDeadFraction: Type.Optional(Type.Union([Type.Number(), Type.Null()], { description: 'conv2d: fraction of output channels whose activation derivative is 0 for every example and every position (no gradient passes); equals deadFraction, which counts channels as the units of a convolution.' })),
};
