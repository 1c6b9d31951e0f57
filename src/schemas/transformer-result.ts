// JSON schema (TypeBox) of result.blocks: per transformer_block the gradient norms of its attention and
// feed-forward weights (issue 14), so that pre-LN and post-LN stacks can be read side by side.
import { Type } from 'typebox';
import { enumOf, TRANSFORMER_NORMS } from './vocabulary.js';

const norm = (description: string) => Type.Number({ description });

export const TransformerBlockResultSchema = Type.Object({
  path: Type.String({ description: 'The transformer_block\'s name (its rows\' paths start with it).' }),
  norm: enumOf(TRANSFORMER_NORMS, 'Where the block\'s layer norms sit: post or pre.'),
  attention: Type.Object({
    path: Type.String({ description: 'Path of the attention row.' }),
    row: Type.Integer({ description: 'Its index in result.layers.' }),
    weightGradNorm: norm('‖∂L/∂(Wq, Wk, Wv, Wo)‖_F: the attention row\'s weightGradNorm (mean over batches).'),
    backpropNorm: norm('The attention row\'s backpropNorm: the signal ∂L/∂(attention output) that reaches the block\'s attention.'),
  }, { additionalProperties: false }),
  feedForward: Type.Object({
    paths: Type.Array(Type.String(), { description: 'Paths of the feed-forward dense rows.' }),
    rows: Type.Array(Type.Integer(), { description: 'Their indices in result.layers.' }),
    weightGradNorm: norm('√(Σ weightGradNorm²) over the feed-forward dense rows: the Frobenius norm of both weight matrices\' gradients.'),
    backpropNorm: norm('The last feed-forward dense row\'s backpropNorm: the signal ∂L/∂(feed-forward output) that reaches the block from above.'),
  }, { additionalProperties: false }),
  weightGradNorm: norm('√(attention² + feedForward²): the block\'s weight gradients as one vector.'),
  backpropRelativeToFirst: norm('feedForward.backpropNorm / the first block\'s: the gradient flow through the stack (Xiong et al. 2020: growing toward the output for post-LN, about 1 for pre-LN).'),
  relativeToFirst: norm('weightGradNorm / the first block\'s: Xiong et al. 2020 find it growing toward the output for post-LN at initialisation and about 1 for pre-LN.'),
}, { additionalProperties: false, title: 'TransformerBlockResult', description: 'One transformer_block\'s weight-gradient norms.' });

export const BlocksSchema = Type.Array(TransformerBlockResultSchema, {
  description: 'Layer graphs with transformer_block layers: one entry per block, input side first.',
});
