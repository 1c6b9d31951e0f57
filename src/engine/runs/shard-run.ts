// Entry points for an analysis split across workers: which analyses to split, and one worker's shard of one.
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import { datasetOf, isNormalizedSpec, normalizeSpecShape, DEFAULT_LIMITS, type NormalizedSpec, type SpecLimits } from '../spec/normalize.js';
import { estimateCost, checkCost, type FlopBudget } from '../spec/cost.js';
import { measureAnalysisShard } from '../measure/measure.js';
import { cachedParameters } from '../model/param-cache.js';
import type { ShardPartial } from '../measure/combine-shards.js';

/** Whether an analysis may be split, and its forward + backward FLOPs; throws what analyze() would for a bad spec. */
export function shardPlan(input: AnalysisSpecInput | NormalizedSpec, limits: SpecLimits = DEFAULT_LIMITS): { splittable: boolean; flops: number; batchSize: number } {
  const spec = isNormalizedSpec(input) ? input : normalizeSpecShape(input, limits);
  const cost = estimateCost(spec);
  // Batch normalisation couples the examples of a batch: its statistics differ per shard.
  // Layer graphs are measured whole (their batch_norm couples the examples; their rows have no shard form yet).
  return { splittable: spec.network.normalization !== 'batch' && !spec.network.graph, flops: cost.flops, batchSize: spec.data.batchSize };
}

/** Shard `index` of `count` of every batch of the analysis: what combineShards needs, one entry per batch. */
export async function analyzeShard(input: AnalysisSpecInput | NormalizedSpec, limits: SpecLimits, index: number, count: number, budget: FlopBudget = 'analysis'): Promise<ShardPartial[]> {
  // A spec normalised on the HTTP thread is used as it is: every shard reuses it.
  const spec = isNormalizedSpec(input) ? input : normalizeSpecShape(input, limits);
  checkCost(estimateCost(spec), limits, { budget });
  return measureAnalysisShard(spec, datasetOf(spec), cachedParameters(spec.network, spec.seed), index, count);
}
