// Room `runs`: the engine's entry points for each kind of work the job layer runs — an analysis (whole or
// split into shards), a training, a sweep — each validated and costed up front, returning JSON-safe output.
export { admitAnalysis, admitNormalized, analyze, analyzeNormalized, type AnalysisOutput, type AnalyzeOptions } from './analysis-run.js';
export { shardPlan, analyzeShard } from './shard-run.js';
export { prepareTraining, runTraining, type TrainingOutput, type TrainingResult, type PreparedTraining } from './training-run.js';
export {
  expandSweep, expandGrid, sweepRow, sweepResult, sweepToCsv,
  type AdmittedCell, type ExpandedSweep, type SweepRow, type SweepResult, type SweepCell,
} from './sweep-run.js';
