// Entry points for an analysis split across workers: which analyses to split, and one worker's shard of one.
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import { normalizeSpec, DEFAULT_LIMITS, type SpecLimits } from '../spec/normalize.js';
import { estimateCost, checkCost, type FlopBudget } from '../spec/cost.js';
import { measureAnalysisShard } from '../measure/measure.js';
import { cachedParameters } from '../model/param-cache.js';
import type { ShardPartial } from '../measure/combine-shards.js';

/** Whether an analysis may be split, and its forward + backward FLOPs; throws what analyze() would for a bad spec. */
export function shardPlan(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS): { splittable: boolean; flops: number; batchSize: number } {
  const { spec } = normalizeSpec(input, limits);
  const cost = estimateCost(spec);
  // Batch normalisation couples the examples of a batch: its statistics differ per shard.
  return { splittable: spec.network.normalization !== 'batch', flops: cost.flops, batchSize: spec.data.batchSize };
}

/** Shard `index` of `count` of every batch of the analysis: what combineShards needs, one entry per batch. */
export async function analyzeShard(input: AnalysisSpecInput, limits: SpecLimits, index: number, count: number, budget: FlopBudget = 'analysis'): Promise<ShardPartial[]> {
  const { spec, dataset } = normalizeSpec(input, limits);
  checkCost(estimateCost(spec), limits, { budget });
  return measureAnalysisShard(spec, dataset, cachedParameters(spec.network, spec.seed), index, count);
}
