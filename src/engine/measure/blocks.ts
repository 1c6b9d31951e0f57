// result.blocks: per transformer block the gradient norms of its attention and feed-forward weights, read
// off the rows already measured (a block's norm is the Frobenius norm of all its weight gradients together).
import type { TransformerBlockPlan } from '../spec/transformer-types.js';
import type { LayerStats } from './measure.js';
import type { Static } from 'typebox';
import type { BlocksSchema } from '../../schemas/transformer-result.js';

export type BlockStats = Static<typeof BlocksSchema>;

export function blockStats(plans: TransformerBlockPlan[], layers: LayerStats[]): BlockStats {
  const out = plans.map((p) => {
    const att = layers[p.attentionRow]!;
    const ff = Math.hypot(...p.feedForwardRows.map((r) => layers[r]!.weightGradNorm));
    return {
      path: p.path, norm: p.norm,
      attention: { path: att.path!, row: p.attentionRow, weightGradNorm: att.weightGradNorm, backpropNorm: att.backpropNorm },
      feedForward: {
        paths: p.feedForwardRows.map((r) => layers[r]!.path!), rows: [...p.feedForwardRows], weightGradNorm: ff,
        backpropNorm: layers[p.feedForwardRows[p.feedForwardRows.length - 1]!]!.backpropNorm,
      },
      weightGradNorm: Math.hypot(att.weightGradNorm, ff),
      relativeToFirst: 0,
      backpropRelativeToFirst: 0,
    };
  });
  out.forEach((b) => {
    b.relativeToFirst = b.weightGradNorm / out[0]!.weightGradNorm;
    b.backpropRelativeToFirst = b.feedForward.backpropNorm / out[0]!.feedForward.backpropNorm;
  });
  return out;
}
