// The engine's only door: everything outside src/engine (the job layer, routes, plugins, the CLI, config,
// scripts and benches) imports the engine from here. Pure tfjs: no HTTP, no database, no environment —
// configuration comes in as options. Inside the engine, rooms import each other's files directly; each
// room's index.ts says what the room offers.

// Kinds of work (runs/): validated and costed up front, JSON-safe output.
export {
  admitAnalysis, admitNormalized, analyze, analyzeNormalized, shardPlan, analyzeShard, prepareTraining, runTraining,
  expandSweep, expandGrid, sweepRow, sweepResult, sweepToCsv,
  type AdmittedCell, type SweepCell, type AnalysisOutput, type TrainingOutput, type SweepRow, type SweepResult,
} from './runs/index.js';
export { theoryReport, networkTheory, type TheoryReport } from './theory/index.js';
export { evaluateChecks, validateExpect, analysisFacts, fmt, type WorkKind } from './diagnosis/index.js';

// Specs, limits and budgets (spec/).
export {
  normalizeSpec, normalizeSpecShape, isNormalizedSpec, DEFAULT_LIMITS, FLOP_BUDGETS, DEFAULT_THRESHOLDS, normalizeThresholds,
  type NormalizedSpec, type SpecLimits, type FlopBudget, type Thresholds,
} from './spec/index.js';

// Backends (backends/): chosen once per process; the native addon and the wasm backend load lazily.
export {
  initBackend, BackendUnavailableError, BACKEND_CHOICES, GPU_POLICIES, type BackendChoice, type BackendInfo, type BackendOptions,
  type GpuPolicy, type WebGpuAdapter, loadNativeKernels, registerNativeKernels, registerNativeWasmMatMul, nativeKernelsIssue, nativeKernelStats,
} from './backends/index.js';

// Models people bring (import/): ONNX from PyTorch and tfjs LayersModels, parsed, executed and measured.
export {
  importOnnx, describeOnnx, measureImported, analyzeImported, mnistExamples, checkMnistInput, diagnoseImported, trainImported, importLayersModel, SUPPORTED_OPERATORS, SUPPORTED_LAYERS, IMPORTED_LOSSES,
  UnsupportedOperatorError, ModelFormatError, isLayersBundle, encodeLayersBundle, decodeLayersBundle, decodeLayersBundleRaw, parseModelJson,
  manifestPaths, describeLayersModel, importStoredModel, describeStoredModel,
  type ModelDescription, type LayersModelJson, type ImportedMeasurement, type ImportedLoss, type OnnxModel, type ImportedAnalysisInput, type ImportedAnalysisOutput,
  type ImportedTrainingInput, type ImportedTrainingOutput,
} from './import/index.js';

// Errors and shared helpers (common/).
export { SpecError, LimitError, CancelledError, capEcho, MAX_ECHOED_FIELD, Rng, fitLogSlope } from './common/index.js';

// Lower-level pieces that benches and scripts time or drive directly (measure/, model/).
export { runAnalysis, measureBatch, readTogether, readsAsync, DEFAULT_SATURATION_THRESHOLD, type ShardPartial, type BlockStats } from './measure/index.js';
export { initParameters, forward, lossOf, activationsFor, normalizeOptimizer, type InitializerInput } from './model/index.js';
