// JSON schemas (TypeBox) of a training run: the request (spec + steps + optimizer) and its recorded result.
import { Type, type Static } from 'typebox';
import { DataSchema, LossSchema, NetworkSchema, AnalysisSpecSchema } from './spec.js';
import { ExpectSchema, ChecksSchema } from './checks.js';
import { DataSummarySchema, NonFiniteSchema, Num, ParametersSchema } from './result.js';
import { enumOf, OPTIMIZER_NAMES, TRAINING_INCLUDE, TrainingOutcomeSchema } from './vocabulary.js';
import { GraphRowFields } from './graph-result.js';

export { OPTIMIZER_NAMES, TRAINING_INCLUDE };
export type { OptimizerName, TrainingInclude } from './vocabulary.js';

export const OptimizerSchema = Type.Object(
  {
    name: enumOf(OPTIMIZER_NAMES,
        'sgd: w ← w − lr·g. momentum (PyTorch form; the same trajectory as Keras\' v ← μv − lr·g for a constant lr): b ← μ·b + g, w ← w − lr·b, with nesterov w ← w − lr·(g + μ·b). adam: m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², w ← w − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β1^t), v̂ = v/(1−β2^t) (PyTorch\'s ε placement). rmsprop: v ← ρ·v + (1−ρ)·g², u = g/(√v + ε); with momentum μ > 0, b ← μ·b + u and u = b; w ← w − lr·u. Moment buffers start at zero; t counts from 1. Default sgd.',
    ),
    learningRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Step size lr. Defaults (Keras): sgd 0.01, momentum 0.01, adam 0.001, rmsprop 0.001.' })),
    momentum: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'momentum and rmsprop only: μ. Default 0.9 for momentum (the usual choice; Keras SGD\'s default 0 is plain sgd), 0 for rmsprop (Keras, PyTorch).' })),
    nesterov: Type.Optional(Type.Boolean({ description: 'momentum only: Nesterov momentum (default false).' })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only: β1 (default 0.9).' })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'adam only: β2 (default 0.999).' })),
    epsilon: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'adam and rmsprop only: ε added to the root of the second moment (default 1e-7, Keras\'; PyTorch uses 1e-8).' })),
    rho: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'rmsprop only: decay ρ of the mean square (default 0.9, Keras\'; PyTorch\'s alpha defaults to 0.99).' })),
  },
  { additionalProperties: false, title: 'Optimizer', description: 'The optimizer and its parameters; a parameter that the named optimizer does not use is rejected with 400.' },
);

/** Training data: as for analyses, without `batches` (every step draws one fresh batch). */
export const TrainingDataSchema = Type.Omit(DataSchema, ['batches'], {
  additionalProperties: false,
  title: 'TrainingData',
  description: 'Where the training batches come from. Every step draws a fresh batch of batchSize examples; the data is walked epoch by epoch (without replacement within an epoch) in a seeded order.',
});

export const MAX_TRAINING_RECORDS = 1000;
/** records × Σ T of the recurrent layers: the through-time norms a training keeps (about 10 MB of JSON). */
export const MAX_TRAINING_THROUGH_TIME_VALUES = 500_000;

/**
 * What include can add to a training result, and the most numbers it may add together (checked before
 * any compute): 2 M float32 values are about 40 MB of JSON. A 10 × 128 MNIST network's parameters,
 * initial and final, are 0.5 M; 200 steps of 128 MNIST rows touch all 10 000 images, 8 M.
 */
export const MAX_TRAINING_INCLUDED_VALUES = 2_000_000;

export const TrainingSpecSchema = Type.Object(
  {
    seed: AnalysisSpecSchema.properties.seed,
    network: NetworkSchema,
    data: TrainingDataSchema,
    loss: Type.Optional(LossSchema),
    steps: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Optimizer steps (updates), one fresh minibatch each. The estimated cost (FLOPs per step × steps, plus recording and evaluation) is checked against the limits before any compute.' }),
    optimizer: Type.Optional(OptimizerSchema),
    recordEvery: Type.Optional(Type.Integer({ minimum: 1, description: `Record the loss and per-layer gradient statistics (and, for recurrent layers, the gradient through time) every this many steps, plus at step 0 and after the last step. Default ceil(steps / 50), about 50 records. At most ${MAX_TRAINING_RECORDS} records, and at most ${MAX_TRAINING_THROUGH_TIME_VALUES} through-time norms (records × the recurrent layers' time steps).` })),
    expect: Type.Optional(ExpectSchema),
    include: Type.Optional(
      Type.Array(Type.Enum(TRAINING_INCLUDE), {
        maxItems: TRAINING_INCLUDE.length,
        uniqueItems: true,
        description: `What the result should carry to replay the training elsewhere (e.g. in PyTorch). parameters: result.parameters, the initial weights ([inputUnits][units], the tfjs Dense layout), biases and auxiliary parameters (normalisation gamma/beta, residual gates, Fixup scalars) of every layer, in the layout analyses use, and result.finalParameters, the same after the last update. batches: result.batches, per step the dataset rows of its minibatch, and every row used once (inputs after normalisation, targets as the loss saw them). Together: parameters + (2 per parameter) and rows × (inputs + targets + 1) numbers, at most ${MAX_TRAINING_INCLUDED_VALUES} (checked before any compute, 422 naming the limit).`,
      }),
    ),
  },
  { additionalProperties: false, title: 'TrainingSpec', description: 'A training run: the network and data of an analysis spec, trained for steps with an optimizer.' },
);

export type TrainingSpecInput = Static<typeof TrainingSpecSchema>;
export type OptimizerInput = Static<typeof OptimizerSchema>;

const NullableNum = (description: string) => Type.Union([Num(description), Type.Null()], { description });

export const TrainingThroughTimeRecordSchema = Type.Object(
  {
    layer: Type.Integer({ description: 'The recurrent layer\'s row in result.layers.' }),
    norms: Type.Array(Num('One step\'s norm.'), { description: 'norms[t], t = 0 … T−1: ‖∂L/∂h_t‖ on this record\'s minibatch, normalised as an analysis\'s result.throughTime[].norms (the RMS over the examples of ‖∂ℓ_i/∂h_t‖, √B·‖∂L/∂h_t‖_F), the total derivative through every later step. Records × layers × steps is the layer × time heatmap over training.' }),
    memoryHorizon: Type.Union([Type.Integer(), Type.Null()], { description: 'Steps back from the last step until norms[t] < thresholds.vanishingRatio (0.1) × norms[T − 1] for the first time; null when it never falls that low (as result.throughTime[].memoryHorizon).' }),
    gateMean: NullableNum('lstm: the forget gate f_t, gru: the update gate z_t, mean over the steps, examples and units; null for simple_rnn.'),
  },
  { additionalProperties: false, title: 'TrainingThroughTimeRecord', description: 'One recurrent layer\'s gradient through time at one recorded step.' },
);

export const TrainingRecordSchema = Type.Object(
  {
    step: Type.Integer({ description: 'Updates applied before this record was taken: 0 is the initialisation, the last record follows the last update.' }),
    loss: Num('Loss on this step\'s minibatch, before its update.'),
    accuracy: NullableNum('Fraction of this minibatch classified correctly (argmax, or output > 0.5 for one output unit); null when the data has no classes or the loss is "output".'),
    firstToLastRatio: Num('weightGradNorm of the first layer / that of the last layer, on this minibatch.'),
    backpropFirstToLastRatio: Num('backpropNorm of the first layer / that of the last layer, on this minibatch.'),
    layers: Type.Array(
      Type.Object({
        index: Type.Integer({ description: 'Layer index (0 reads the input).' }),
        weightNorm: Num('Frobenius norm of the weights before this step\'s update.'),
        weightGradNorm: Num('Frobenius norm of dLoss/dW on this minibatch.'),
        backpropNorm: Num('sqrt(batchSize)·‖dLoss/dH‖_F, as in analyses: the RMS per-example gradient w.r.t. the pre-activation.'),
        updateToWeightRatio: NullableNum('‖ΔW‖ / ‖W‖ of this step\'s update (≈1e-3 is the usual healthy order); null after the last step, where no update follows.'),
        deadFraction: NullableNum('Fraction of units passing no gradient for any example of the batch (a convolution: of channels, over every example and position); null for softmax, and for a layer graph\'s linear rows.'),
        saturatedFraction: NullableNum('Fraction of saturated (example, unit) entries; null for activations without a flat asymptote.'),
      }, { additionalProperties: false, title: 'TrainingLayerRecord', description: 'One layer at one recorded step.' }),
      { description: 'Per-layer statistics, input side first.' },
    ),
    throughTime: Type.Optional(Type.Array(TrainingThroughTimeRecordSchema, {
      description: 'Layer graphs with simple_rnn, lstm or gru layers only: one entry per recurrent layer, in graph order, measured on this record\'s minibatch before its update (one more forward and backward pass per record, counted in the cost).',
    })),
  },
  { additionalProperties: false, title: 'TrainingRecord', description: 'One recorded training step.' },
);

export const TrainingBatchesSchema = Type.Object(
  {
    indices: Type.Array(Type.Array(Type.Integer({ minimum: 0 })), {
      description: 'indices[s]: the dataset rows of step s\'s minibatch, in order, for s = 0 … stepsCompleted. Step s (s < stepsCompleted) computed its update on it, and the record of step s, if one was taken, its loss and statistics; the last entry is the minibatch of the final record (or of the step whose loss became non-finite).',
    }),
    examples: Type.Object(
      {
        index: Type.Array(Type.Integer({ minimum: 0 }), { description: 'Dataset row of each example, ascending.' }),
        x: Type.Array(Type.Array(Type.Number()), { description: 'Inputs as the network saw them (after data.normalize).' }),
        y: Type.Array(Type.Array(Type.Number()), { description: 'Targets as the loss saw them (one-hot for categorical, a 0/1 column for binary).' }),
      },
      { additionalProperties: false, description: 'Every row any minibatch used, once: look the rows of indices[s] up by index.' },
    ),
  },
  { additionalProperties: false, title: 'TrainingBatches', description: 'With include: ["batches"]: the minibatches of every step.' },
);

export const TrainingResultSchema = Type.Object(
  {
    steps: Type.Integer({ description: 'Steps asked for.' }),
    stepsCompleted: Type.Integer({ description: 'Updates applied: less than steps when the loss became non-finite and training stopped.' }),
    batchSize: Type.Integer({ description: 'Examples per step.' }),
    optimizer: { ...OptimizerSchema, description: 'The optimizer with every default filled in.' },
    layers: Type.Array(
      Type.Object({
        index: Type.Integer({ description: 'Layer index: 0 reads the input, the last is the output layer (layer graphs: the dense/conv2d row in graph order, as in analyses).' }),
        name: Type.String({ description: 'dense_<index>, or output (layer graphs: the row\'s path).' }),
        inputUnits: Type.Integer({ description: 'Units feeding the layer (layer graphs: the fan_in, kh·kw·c_in for a convolution).' }),
        units: Type.Integer({ description: 'Units of the layer (a convolution: its filters).' }),
        activation: Type.String({ description: 'Activation of the layer, with its parameter in brackets where it has one (layer graphs: the row\'s own or the first after it, as in analyses).' }),
        path: GraphRowFields.path,
        kind: GraphRowFields.kind,
        outputShape: GraphRowFields.outputShape,
        block: GraphRowFields.block,
        shortcut: GraphRowFields.shortcut,
      }, { additionalProperties: false, title: 'TrainingLayer', description: 'A layer of the trained network: for a layer graph one dense/conv2d row (projection shortcuts included), with the graph fields analyses\' rows have.' }),
      { description: 'The layers the records refer to by index.' },
    ),
    records: Type.Array(TrainingRecordSchema, { description: 'Recorded steps in order: 0, recordEvery, 2·recordEvery, …, and stepsCompleted.' }),
    evaluation: Type.Object(
      {
        examples: Type.Integer({ description: 'Examples in the evaluation set.' }),
        description: Type.String({ description: 'What the evaluation set is.' }),
      },
      { additionalProperties: false, description: 'initialLoss, finalLoss and the accuracies are measured on this fixed set of training examples (the whole dataset up to 2048 examples, a seeded sample beyond), not on a noisy minibatch.' },
    ),
    initialLoss: Num('Evaluation-set loss at initialisation.'),
    finalLoss: Num('Evaluation-set loss after the last update.'),
    lossReduction: Num('(initialLoss − finalLoss) / |initialLoss|: 0.9 means the loss fell by 90%.'),
    baselineLoss: NullableNum('Loss of the best constant prediction on the evaluation set (class frequencies for cross-entropy, target means for mse): the "chance level" a network that ignores its input reaches. null for loss "output".'),
    initialAccuracy: NullableNum('Evaluation-set accuracy at initialisation; null without classes.'),
    finalAccuracy: NullableNum('Evaluation-set accuracy after the last update; null without classes.'),
    chanceAccuracy: NullableNum('Fraction of the most frequent class in the evaluation set; null without classes.'),
    learns: Type.Boolean({ description: 'status === "learning".' }),
    status: TrainingOutcomeSchema,
    reasons: Type.Array(Type.String(), { description: 'Why the status was given, with the numbers.' }),
    nonFinite: NonFiniteSchema,
    data: DataSummarySchema,
    checks: Type.Optional(ChecksSchema),
    passed: Type.Optional(Type.Boolean({ description: 'Whether every check passed (present when expect was given).' })),
    parameters: Type.Optional({ ...ParametersSchema, description: 'With include: ["parameters"]: every layer\'s parameters before the first update, in the layout of analyses\' result.parameters.' }),
    finalParameters: Type.Optional({ ...ParametersSchema, description: 'With include: ["parameters"]: every layer\'s parameters after the last update applied (stepsCompleted of them).' }),
    batches: Type.Optional(TrainingBatchesSchema),
  },
  { additionalProperties: false, title: 'TrainingResult', description: 'A training run\'s records and outcome.' },
);

export type TrainingResultBody = Static<typeof TrainingResultSchema>;
