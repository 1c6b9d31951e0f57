// The diagnosis's reasons for transformer stacks (issue 14): where post-LN's gradients sit at initialisation
// and the cures (pre-LN, or a learning-rate warm-up), from result.blocks.
import type { AnalysisResult } from '../measure/measure.js';

/** Signal growth from the first block to the last above which post-LN's imbalance is called out. */
export const POST_LN_GROWTH = 2;

export function transformerReasons(result: AnalysisResult): string[] {
  const blocks = result.blocks;
  if (!blocks || blocks.length < 2) return [];
  const post = blocks.filter((b) => b.norm === 'post');
  if (post.length < 2) return [];
  const growth = post[post.length - 1]!.feedForward.backpropNorm / post[0]!.feedForward.backpropNorm;
  if (!(growth > POST_LN_GROWTH)) return [];
  return [
    `Post-LN transformer blocks: the gradient signal reaching the last block (${post[post.length - 1]!.path}) is ${growth.toPrecision(3)}× the first block's (${post[0]!.path}); ` +
    'each layer norm after a residual addition divides the backward signal by the std of x + F(x), so at initialisation the blocks near the output get the largest gradients ' +
    '(Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture": post-LN needs a learning-rate warm-up, or large steps on the last blocks diverge). ' +
    'Cures: norm "pre" (layer norm first inside each branch, one final layer_norm: gradients of one size across blocks, no warm-up needed), or keep post-LN and warm the learning rate up over the first steps.',
  ];
}
