// Room `measure`: one analysis measured — real batches forward and backward, every layer's gradient and
// activation statistics (read on the host in float64), and shards of one batch recombined.
export {
  runAnalysis, measureBatch, measureShard, measureAnalysisShard, readTogether, readsAsync, hostReader, targetsFor, parametersJson, DEFAULT_SATURATION_THRESHOLD,
  type AnalysisResult, type AnalysisSummary, type AnalysisTimings, type LayerStats, type InputMoments,
  type ParametersJson,
} from './measure.js';
export { combineShards, shardRanges, type ShardPartial } from './combine-shards.js';
export type { BatchMeasurement, Reading } from './readings.js';
export type { BlockStats } from './blocks.js';
