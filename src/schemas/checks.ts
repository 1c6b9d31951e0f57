// JSON schemas (TypeBox) of CI expectations (`expect`) and the checks evaluated from them.
import { Type, type Static } from 'typebox';
import { AnalysisSpecSchema, NetworkSchema } from './spec.js';
import { ModelModeSchema, ModelRefSchema } from './models.js';
import { TRAINING_OUTCOMES, TrainingOutcomeSchema as StatusSchema, VERDICTS, VerdictSchema, type TrainingOutcome, type Verdict } from './vocabulary.js';

/** Kept for the engine's imports: the lists live in vocabulary.ts. */
export { VERDICTS, TRAINING_OUTCOMES as TRAINING_STATUSES };
export type { Verdict, TrainingOutcome as TrainingStatus };

const num = (description: string) => Type.Optional(Type.Number({ description }));

export const ExpectSchema = Type.Object(
  {
    verdict: Type.Optional(
      Type.Union([VerdictSchema, Type.Array(VerdictSchema, { minItems: 1 })], {
        description: 'Analyses and sweeps (every cell): result.summary.verdict must be this verdict, or one of these.',
      }),
    ),
    minFirstToLastRatio: num('Analyses, sweeps (every cell) and trainings (at step 0): summary.firstToLastRatio (first layer weightGradNorm / last layer\'s) must be at least this. Guards against vanishing gradients.'),
    maxFirstToLastRatio: num('Analyses, sweeps (every cell) and trainings (at step 0): firstToLastRatio must be at most this. Guards against exploding gradients.'),
    minBackpropFirstToLastRatio: num('Analyses, sweeps (every cell) and trainings (at step 0): backpropFirstToLastRatio must be at least this.'),
    maxBackpropFirstToLastRatio: num('Analyses, sweeps (every cell) and trainings (at step 0): backpropFirstToLastRatio must be at most this.'),
    maxLoss: num('Analyses and sweeps (every cell): the loss at initialisation must be at most this.'),
    maxDeadFraction: num('Analyses and sweeps (every cell): the largest deadFraction of any layer must be at most this (layers without one are skipped).'),
    maxSaturatedFraction: num('Analyses and sweeps (every cell): the largest saturatedFraction of any layer must be at most this (layers without one are skipped).'),
    maxNonFinite: Type.Optional(Type.Integer({ minimum: 0, description: 'Every kind: at most this many NaN/±Infinity values in the result (result.nonFinite.count; per cell for sweeps). 0 demands a fully finite result.' })),
    learns: Type.Optional(Type.Boolean({ description: 'Trainings: result.learns must equal this (true: the network must learn; false: e.g. to pin down that a bad setup stalls).' })),
    status: Type.Optional(
      Type.Union([StatusSchema, Type.Array(StatusSchema, { minItems: 1 })], {
        description: 'Trainings: result.status must be this status, or one of these.',
      }),
    ),
    maxFinalLoss: num('Trainings: finalLoss (loss on the evaluation set after the last step) must be at most this.'),
    minLossReduction: num('Trainings: lossReduction ((initialLoss − finalLoss) / initialLoss) must be at least this, e.g. 0.5 for "halves the loss".'),
    minAccuracy: num('Trainings on class data: finalAccuracy (fraction 0..1 on the evaluation set) must be at least this.'),
  },
  {
    additionalProperties: false,
    title: 'Expect',
    description:
      'CI expectations. Each field given becomes one check (name, expected, actual, passed) in result.checks, and result.passed is true when all pass. A field that does not apply to the kind of work is rejected with 400. A non-finite actual value fails every min/max check except a min check met by +Infinity.',
  },
);

export const CheckSchema = Type.Object(
  {
    name: Type.String({ description: 'The expectation\'s field name, e.g. minFirstToLastRatio.' }),
    expected: Type.Unknown({ description: 'The value asked for in expect.' }),
    actual: Type.Unknown({ description: 'The value found: a number ("NaN", "Infinity", "-Infinity" when non-finite), a string, a boolean, null when the result has no such value, or for sweeps a count of passing cells.' }),
    passed: Type.Boolean({ description: 'Whether the actual value meets the expectation.' }),
  },
  { additionalProperties: false, title: 'Check', description: 'One evaluated expectation.' },
);

export const ChecksSchema = Type.Array(CheckSchema, { description: 'One check per field of expect, in the order of ExpectSchema.' });

/**
 * An analysis request: the analysis spec plus optional CI expectations, of a network gradlens builds (network)
 * or of an uploaded model (model, with mode): exactly one of the two, checked when the job is admitted.
 */
export const AnalysisRequestSchema = Type.Object(
  {
    ...AnalysisSpecSchema.properties,
    network: Type.Optional({ ...NetworkSchema, description: 'The network to build and analyse. Required unless model names an uploaded model.' }),
    model: Type.Optional({ ...ModelRefSchema, description: 'An uploaded model (POST /v1/models) to analyse instead of network: data is then inline (x in the model\'s own layout, NCHW for a PyTorch export, y class indices or targets), mnist (a model input of 1×28×28, 28×28×1 or 784 values) or gaussian_images (N(0, noise²) inputs of the model\'s declared shape, uniform class targets); loss categorical_crossentropy (on logits: torch.nn.functional.cross_entropy) or mse; one batch (data.batches 1); include and whatIf do not apply. The result (ModelAnalysisResult) names every parameter by its ONNX initializer name (PyTorch: the state_dict name). A model id not stored is 400 naming model.id.' }),
    mode: Type.Optional(ModelModeSchema),
    expect: Type.Optional(ExpectSchema),
  },
  { additionalProperties: false, title: 'AnalysisRequest', description: 'An analysis spec, optionally with CI expectations (expect): of network, or of an uploaded model (model).' },
);

export type ExpectInput = Static<typeof ExpectSchema>;
export type CheckResult = Static<typeof CheckSchema>;
