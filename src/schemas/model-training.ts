// JSON schemas (TypeBox) of a training run of an uploaded model (POST /v1/trainings with "model": {"id"}):
// the spec as the job keeps it, the result (per record every parameter's gradient under its ONNX initializer
// name, each layer's backward signal, the verdict of the flow) and its cost.
import { Type, type Static } from 'typebox';
import { ThresholdsSchema } from './spec.js';
import { NonFiniteSchema, Num } from './result.js';
import { ChecksSchema } from './checks.js';
import { enumOf, MODEL_FORMATS, MODEL_OUTPUT_KINDS, TrainingOutcomeSchema, VerdictSchema } from './vocabulary.js';
import { ModelLossSchema, ModelModeSchema, ModelRefSchema } from './models.js';
import { MAX_TRAINING_RECORDS, OptimizerSchema, TrainingDataSchema, TrainingSpecSchema } from './training.js';

/** The spec of a model training as the job keeps it (without expect); the normalised one has every default. */
export const ModelTrainingSpecSchema = Type.Object(
  {
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Seeds the batch drawn (mnist, gaussian_images) and generated targets (default 42).' })),
    model: ModelRefSchema,
    data: TrainingDataSchema,
    loss: Type.Optional(ModelLossSchema),
    mode: Type.Optional(ModelModeSchema),
    steps: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Optimizer steps, each on the one batch data gives.' }),
    optimizer: Type.Optional(OptimizerSchema),
    recordEvery: Type.Optional(Type.Integer({ minimum: 1, description: `Record every this many steps, plus step 0 and after the last step (default ceil(steps / 50); at most ${MAX_TRAINING_RECORDS} records).` })),
    thresholds: Type.Optional(ThresholdsSchema),
  },
  { additionalProperties: false, title: 'ModelTrainingSpec', description: 'A training run of an uploaded model: its own parameters trained on one batch in its input layout.' },
);
export type ModelTrainingSpecInput = Static<typeof ModelTrainingSpecSchema>;

const RecordParameterSchema = Type.Object(
  {
    name: Type.String({ description: 'The ONNX initializer name: for a PyTorch export the state_dict name.' }),
    norm: Num('Frobenius norm of the parameter before this step\'s update.'),
    gradNorm: Num('Frobenius norm of dLoss/dparameter on the batch (the loss is the batch mean).'),
    gradRms: Num('gradNorm / sqrt(entries).'),
    gradMaxAbs: Num('Largest |dLoss/dparameter| entry.'),
  },
  { additionalProperties: false, title: 'ModelTrainingParameterRecord', description: 'One parameter at one recorded step.' },
);

export const ModelTrainingRecordSchema = Type.Object(
  {
    step: Type.Integer({ description: 'Updates applied before this record: 0 is the uploaded parameters, the last follows the last update.' }),
    loss: Num('Loss on the batch, before this step\'s update.'),
    firstToLastRatio: Num('Gradient norm of the first parameterised node\'s parameters together / the last one\'s.'),
    backpropFirstToLastRatio: Num('backpropNorm of the first parameterised node / that of the last.'),
    verdict: VerdictSchema,
    parameters: Type.Array(RecordParameterSchema, { description: 'Every parameter in the model\'s order.' }),
    layers: Type.Array(
      Type.Object({
        index: Type.Integer({ description: 'Row index (result.layers).' }),
        backpropNorm: Num('‖dLoss/d(output of the node)‖ over the batch.'),
        activationStd: Num('Standard deviation of the node\'s output.'),
        zeroFraction: Num('Share of the output\'s entries that are exactly 0.'),
      }, { additionalProperties: false, title: 'ModelTrainingLayerRecord', description: 'One parameterised node at one recorded step.' }),
      { description: 'Parameterised nodes in graph order.' },
    ),
  },
  { additionalProperties: false, title: 'ModelTrainingRecord', description: 'One recorded step of a model training.' },
);

export const ModelTrainingResultSchema = Type.Object(
  {
    format: enumOf([...MODEL_FORMATS], 'The model\'s file format.'),
    steps: Type.Integer({ description: 'Steps asked for.' }),
    stepsCompleted: Type.Integer({ description: 'Updates applied: fewer than steps when the loss became non-finite.' }),
    batchSize: Type.Integer({ description: 'Examples in the batch every step trains on.' }),
    optimizer: { ...OptimizerSchema, description: 'The optimizer with every default filled in.' },
    lossName: ModelLossSchema,
    mode: ModelModeSchema,
    outputKind: enumOf([...MODEL_OUTPUT_KINDS], 'How the loss read the model\'s output.'),
    batchNormFolded: Type.Boolean({ description: 'An eval-mode export folded BatchNorm into the convolutions (trained as it is).' }),
    parameters: Type.Array(Type.Object({ name: Type.String(), shape: Type.Array(Type.Integer()) }, { additionalProperties: false }), { description: 'The trained parameters: initializer names and shapes.' }),
    layers: Type.Array(
      Type.Object({
        index: Type.Integer(), name: Type.String({ description: 'The node name.' }), op: Type.String({ description: 'The ONNX operator.' }),
        parameters: Type.Array(Type.String(), { description: 'Initializer names the node reads.' }),
      }, { additionalProperties: false, title: 'ModelTrainingLayer' }),
      { description: 'Parameterised nodes in graph order: what records[].layers[].index refers to.' },
    ),
    records: Type.Array(ModelTrainingRecordSchema, { description: 'Recorded steps in order: 0, recordEvery, …, stepsCompleted.' }),
    initialLoss: Num('Batch loss at step 0.'),
    finalLoss: Num('Batch loss after the last update.'),
    lossReduction: Num('(initialLoss − finalLoss) / |initialLoss|.'),
    learns: Type.Boolean({ description: 'status === "learning".' }),
    status: TrainingOutcomeSchema,
    reasons: Type.Array(Type.String(), { description: 'Why the status was given, with the numbers.' }),
    nonFinite: NonFiniteSchema,
    checks: Type.Optional(ChecksSchema),
    passed: Type.Optional(Type.Boolean({ description: 'Whether every check passed (present when expect was given).' })),
  },
  { additionalProperties: false, title: 'ModelTrainingResult', description: 'A training run of an uploaded model: records and outcome (the losses are on the training batch).' },
);

export const ModelTrainingCostSchema = Type.Object(
  {
    parameters: Type.Integer({ description: 'Parameter entries of the model.' }),
    examples: Type.Integer({ description: 'Examples in the batch.' }),
    steps: Type.Integer({ description: 'Optimizer steps.' }),
    records: Type.Integer({ description: 'Records that will be taken.' }),
    flops: Type.Number({ description: '6 × parameters × examples × (steps + records): the forward and backward multiply-adds of every weight used once per example, checked against GRADLENS_MAX_TRAINING_FLOPS before queueing (a lower bound for convolutions, which use each weight at every position).' }),
  },
  { additionalProperties: false, title: 'ModelTrainingCost', description: 'The size of a model training.' },
);

/** POST /v1/trainings: a training spec of a network, or of an uploaded model (model in place of network). */
export const TrainingRequestSchema = Type.Object(
  {
    ...TrainingSpecSchema.properties,
    network: Type.Optional({ ...TrainingSpecSchema.properties.network, description: 'The network to build and train. Required unless model names an uploaded model.' }),
    model: Type.Optional({ ...ModelRefSchema, description: 'An uploaded model (POST /v1/models) to train instead of network: its own parameters (ONNX initializers) are trained on the one batch data gives (inline x in the model\'s layout, mnist, or gaussian_images of its input shape), every step; records name every parameter by its initializer name (ModelTrainingResult). loss categorical_crossentropy (on logits: torch.nn.functional.cross_entropy) or mse; include does not apply. A model id not stored is 400 naming model.id.' }),
    mode: Type.Optional(ModelModeSchema),
    thresholds: Type.Optional(ThresholdsSchema),
  },
  { additionalProperties: false, title: 'TrainingRequest', description: 'A training run of network, or of an uploaded model (model).' },
);
