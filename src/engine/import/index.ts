// The import room's door: models people bring — ONNX (PyTorch's torch.onnx.export) and tfjs LayersModels —
// parsed, checked, executed with tfjs ops and measured like the networks gradlens builds: the loss as PyTorch
// computes it, every parameter's gradient under its own name, each parameterised node's backward signal.
export { importOnnx, describeOnnx, unsupportedNodes, OnnxModel, type ModelDescription } from './onnx-model.js';
export type { ImportedLayer, ParameterInfo, OutputKind, Measurable, RunOptions } from './types.js';
export { parseOnnx, type OnnxGraph, type OnnxNode, type OnnxValueInfo } from './onnx-parse.js';
export { SUPPORTED_OPERATORS } from './ops.js';
export {
  measureImported, importedLoss, IMPORTED_LOSSES, type ImportedLoss, type ImportedMeasurement, type ImportedLayerStats,
  type ParameterStats, type MeasureOptions,
} from './measure.js';
export { UnsupportedOperatorError, ModelFormatError } from './errors.js';
export {
  importLayersModel, LayersModelImport, SUPPORTED_LAYERS, type LayersModelFiles, type LayersModelJson,
} from './layers-model.js';
export {
  isLayersBundle, encodeLayersBundle, decodeLayersBundle, decodeLayersBundleRaw, parseModelJson, manifestPaths, describeLayersModel, importStoredModel, describeStoredModel,
} from './layers-bundle.js';
export {
  analyzeImported, mnistExamples, checkMnistInput, type ImportedAnalysisInput, type ImportedAnalysisOptions, type ImportedAnalysisOutput, type ImportedData,
  type AnalysableModel,
} from './analyze.js';
export { diagnoseImported, type ImportedSummary, type ImportedDiagnosis } from './diagnose.js';
export { trainImported, type ImportedTrainingInput, type ImportedTrainingHooks, type ImportedTrainingOutput, type ImportedTrainingRecord } from './train.js';
