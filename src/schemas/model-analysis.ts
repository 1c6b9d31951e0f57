// JSON schemas (TypeBox) of an analysis of an uploaded model (POST /v1/analyses with "model": {"id"}): the
// reference to the model, the spec as stored with the job, the result (every parameter under its ONNX
// initializer name, one row per parameterised node, the verdict) and its cost.
import { Type, type Static } from 'typebox';
import { DataSchema, ThresholdsSchema } from './spec.js';
import { LogSlopeSchema, NonFiniteSchema, Num } from './result.js';
import { ChecksSchema } from './checks.js';
import { DiagnosisSummaryFields } from './diagnosis.js';
import { enumOf, LayerFlagSchema, MODEL_FORMATS, MODEL_OUTPUT_KINDS } from './vocabulary.js';
import { ModelLossSchema, ModelModeSchema, ModelRefSchema } from './models.js';

export { ModelLossSchema, ModelModeSchema, ModelRefSchema };

/** The spec of a model analysis as the job keeps it (without expect); the normalised one has every default. */
export const ModelAnalysisSpecSchema = Type.Object(
  {
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Seeds the batch drawn (mnist, gaussian_images) and generated targets (default 42).' })),
    model: ModelRefSchema,
    data: DataSchema,
    loss: Type.Optional(ModelLossSchema),
    mode: Type.Optional(ModelModeSchema),
    thresholds: Type.Optional(ThresholdsSchema),
  },
  { additionalProperties: false, title: 'ModelAnalysisSpec', description: 'An analysis of an uploaded model: the model, the data in its own input layout, the loss and the mode.' },
);
export type ModelAnalysisSpecInput = Static<typeof ModelAnalysisSpecSchema>;

const ParameterStatsSchema = Type.Object(
  {
    name: Type.String({ description: 'The ONNX initializer name: for a PyTorch export the state_dict name (layer1.0.conv1.weight).' }),
    shape: Type.Array(Type.Integer(), { description: 'Its shape as stored (PyTorch\'s: Conv weights [c_out][c_in][kh][kw]).' }),
    norm: Num('Frobenius norm of the parameter.'),
    gradNorm: Num('Frobenius norm of dLoss/dparameter (the loss is the batch mean).'),
    gradRms: Num('gradNorm / sqrt(entries).'),
    gradMaxAbs: Num('Largest |dLoss/dparameter| entry.'),
  },
  { additionalProperties: false, title: 'ImportedParameterStats', description: 'One parameter of an imported model and its gradient.' },
);

const ImportedLayerSchema = Type.Object(
  {
    index: Type.Integer({ description: 'Row index: parameterised nodes in graph order, 0 nearest the input.' }),
    name: Type.String({ description: 'The node name (PyTorch: module path and op, /layer1/conv1/Conv).' }),
    op: Type.String({ description: 'The ONNX operator.' }),
    outputShape: Type.Array(Type.Integer(), { description: 'Shape of the node\'s output on this batch (batch first).' }),
    parameters: Type.Array(ParameterStatsSchema, { description: 'The parameters the node reads.' }),
    backpropNorm: Num('‖dLoss/d(output of the node)‖ over the whole batch: the backward signal there.'),
    backpropRms: Num('backpropNorm / sqrt(entries of the output).'),
    activationMean: Num('Mean of the node\'s output.'),
    activationStd: Num('Standard deviation of the node\'s output.'),
    activationMaxAbs: Num('Largest |entry| of the node\'s output.'),
    zeroFraction: Num('Share of the output\'s entries that are exactly 0.'),
    flags: Type.Array(LayerFlagSchema, { description: 'Diagnostic flags of the row (onset_vanishing, onset_exploding, non_finite).' }),
  },
  { additionalProperties: false, title: 'ImportedLayerStats', description: 'One parameterised node of an imported model.' },
);

export const ModelAnalysisResultSchema = Type.Object(
  {
    format: enumOf([...MODEL_FORMATS], 'The model\'s file format.'),
    loss: Num('The loss on this batch.'),
    lossName: ModelLossSchema,
    outputKind: enumOf([...MODEL_OUTPUT_KINDS], 'How the loss read the model\'s output.'),
    batchNorm: enumOf(['batch', 'running'], 'Which statistics BatchNormalization used: batch (mode train) or running (mode eval).'),
    mode: ModelModeSchema,
    batchSize: Type.Integer({ description: 'Examples in the batch.' }),
    layers: Type.Array(ImportedLayerSchema, { description: 'Parameterised nodes in graph order.' }),
    parameters: Type.Array(ParameterStatsSchema, { description: 'Every parameter in the model\'s order (each also under its layer).' }),
    summary: Type.Object(
      {
        firstToLastRatio: Num('Gradient norm of the first row\'s parameters together / the last row\'s.'),
        backpropFirstToLastRatio: Num('backpropNorm of the first row / that of the last row.'),
        weightGradLogSlope: LogSlopeSchema,
        backpropLogSlope: LogSlopeSchema,
        ...DiagnosisSummaryFields,
      },
      { additionalProperties: false, title: 'ModelAnalysisSummary', description: 'The flow from the output back to the input, judged by the rules of built networks (zeroByDesign is always null: gradlens did not initialise the model).' },
    ),
    batchNormFolded: Type.Boolean({ description: 'The model has no BatchNormalization node and its Conv weights are named onnx::Conv_*: an eval-mode export folded BatchNorm into the convolutions; analysed as it is.' }),
    nonFinite: NonFiniteSchema,
    checks: Type.Optional(ChecksSchema),
    passed: Type.Optional(Type.Boolean({ description: 'Whether every check passed (present when expect was given).' })),
  },
  { additionalProperties: false, title: 'ModelAnalysisResult', description: 'Gradient statistics of an uploaded model on one batch.' },
);

export const ModelAnalysisCostSchema = Type.Object(
  {
    parameters: Type.Integer({ description: 'Parameter entries of the model.' }),
    examples: Type.Integer({ description: 'Examples in the batch.' }),
  },
  { additionalProperties: false, title: 'ModelAnalysisCost', description: 'The size of a model analysis.' },
);
