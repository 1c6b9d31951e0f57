// JSON schemas (TypeBox) of analysis results, errors and health: documentation for every field.
import { Type, type Static } from 'typebox';
import { AnalysisSpecSchema } from './spec.js';
import { AuxParameterSchema, DiagnosisSummaryFields, LayerFlagSchema, PerExampleSchema, TheorySchema, WhatIfSchema } from './diagnosis.js';
import { ChecksSchema } from './checks.js';
import { GraphRowFields } from './graph-result.js';
import { ThroughTimeSchema } from './through-time.js';
import { BlocksSchema } from './transformer-result.js';
import { BACKEND_NAMES, DATA_TASKS, DataSourceSchema, QUEUE_KINDS, STORE_KINDS, enumOf } from './vocabulary.js';

/** Paths listed in a result's nonFinite; beyond them only the count grows, and truncated says so. */
export const MAX_NON_FINITE_PATHS = 100;

/** A number, or one of the strings JSON needs for NaN and ±Infinity (listed in result.nonFinite). */
export const Num = (description: string) =>
  Type.Union([Type.Number(), Type.Literal('NaN'), Type.Literal('Infinity'), Type.Literal('-Infinity')], {
    description: `${description} Non-finite values are the strings "NaN", "Infinity" or "-Infinity".`,
  });

const NullableNum = (description: string) => Type.Union([Num(description), Type.Null()], { description });

export const SpreadSchema = Type.Object(
  {
    mean: Num('Mean over batches.'),
    std: Num('Sample standard deviation over batches.'),
    min: Num('Smallest value over batches.'),
    max: Num('Largest value over batches.'),
  },
  { additionalProperties: false, title: 'Spread', description: 'Spread of a statistic across the minibatches (present when data.batches > 1).' },
);

export const LogSlopeSchema = Type.Union(
  [
    Type.Object({
      slope: Num('Least-squares slope of ln(norm) per layer, moving from the output layer toward the input: < 0 the signal shrinks toward the input (vanishing), > 0 it grows (exploding). Mean-field theory predicts ½·ln χ₁ for the backprop signal.'),
      factorPerLayer: Num('exp(slope): the factor the norm is multiplied by per layer toward the input.'),
      r2: Num('Coefficient of determination of the fit (1 = perfectly exponential in depth).'),
      layers: Type.Array(Type.Integer(), { description: 'Layers used in the fit (finite, positive norms only).' }),
    }, { additionalProperties: false, title: 'LogSlopeFit', description: 'A least-squares fit of ln(norm) against depth.' }),
    Type.Null(),
  ],
  { description: 'Exponential fit of a norm against depth; null when fewer than two layers have a finite positive norm.' },
);

const ParameterValue = Type.Union([Type.Number(), Type.Literal('NaN'), Type.Literal('Infinity'), Type.Literal('-Infinity')], {
  description: 'A parameter value (float32); "NaN", "Infinity" or "-Infinity" where it is not finite (a diverged training), listed in nonFinite.',
});

/** Every parameter of a network, layer by layer: the layout include: ["parameters"] uses in analyses and trainings. */
export const ParametersSchema = Type.Array(
  Type.Object({
    index: Type.Integer({ description: 'Layer index (layer graphs: the row).' }),
    path: Type.Optional(Type.String({ description: 'Layer graphs: the row\'s path (as in layers[].path).' })),
    weights: Type.Union([Type.Array(Type.Array(ParameterValue)), Type.Array(Type.Array(Type.Array(Type.Array(ParameterValue))))], {
      description: 'Weights as [inputUnits][units] (the tfjs Dense kernel layout; transpose for PyTorch nn.Linear: weight = W.T), or for a conv2d row the kernel as [kh][kw][c_in][c_out] (the tfjs layout; PyTorch\'s nn.Conv2d.weight [c_out][c_in][kh][kw] = kernel.permute(3, 2, 0, 1), and back with .permute(2, 3, 1, 0)).',
    }),
    bias: Type.Union([Type.Array(ParameterValue), Type.Null()], { description: 'Bias, or null.' }),
    auxParameters: Type.Optional(Type.Array(
      Type.Object({
        name: AuxParameterSchema.properties.name,
        values: Type.Array(ParameterValue, { description: 'Values: one per unit for gamma and beta, a single entry for the scalars.' }),
      }),
      { description: 'The layer\'s learnable parameters besides W and b (normalisation gamma/beta, the ReZero/SkipInit gate, Fixup\'s scalars; see layers[].auxParameters); absent when it has none.' },
    )),
  }, { additionalProperties: false, title: 'LayerParameters', description: 'One layer\'s parameters.' }),
  { title: 'Parameters', description: 'Parameters of every layer, input side first.' },
);

export const NonFiniteSchema = Type.Object(
  {
    count: Type.Integer({ description: 'How many values in the result are NaN or ±Infinity.' }),
    paths: Type.Array(Type.String(), { description: `Paths of those values within result (the first ${MAX_NON_FINITE_PATHS}), e.g. layers[3].weightGradNorm or records[12].loss.` }),
    truncated: Type.Boolean({ description: `true when count is above ${MAX_NON_FINITE_PATHS} and paths lists only the first ${MAX_NON_FINITE_PATHS}.` }),
  },
  { additionalProperties: false, title: 'NonFinite', description: 'Non-finite values are reported, never dropped: they appear as strings and are listed here.' },
);

export const DataSummarySchema = Type.Object(
  {
    source: DataSourceSchema,
    examples: Type.Integer({ description: 'Examples in the dataset.' }),
    inputUnits: Type.Integer({ description: 'Input features.' }),
    task: enumOf(DATA_TASKS, 'classification, binary or regression.'),
    description: Type.String({ description: 'What the data is and how it was normalised.' }),
  },
  { additionalProperties: false, title: 'DataSummary', description: 'The dataset behind the batches.' },
);

export const LayerResultSchema = Type.Object({
  index: Type.Integer({ description: 'Layer index: 0 is the layer that reads the input, the last is the output layer.' }),
  name: Type.String({ description: 'dense_<index>, or output.' }),
  inputUnits: Type.Integer({ description: 'Units feeding the layer.' }),
  units: Type.Integer({ description: 'Units of the layer.' }),
  activation: Type.String({ description: 'Activation of the layer, with its parameter in brackets where it has one.' }),
  residualBlock: Type.Union([Type.Integer(), Type.Null()], { description: 'Residual block the layer belongs to, or null.' }),
  weightNorm: Num('Frobenius norm of the weight matrix at initialisation.'),
  weightGradNorm: Num('Frobenius norm of dLoss/dW (mean over batches).'),
  weightGradRms: Num('weightGradNorm / sqrt(inputUnits × units): the typical entry.'),
  weightGradMaxAbs: Num('Largest |dLoss/dW| entry (mean over batches).'),
  biasGradNorm: NullableNum('Norm of dLoss/db; null when the network has no bias.'),
  gradToWeightRatio: NullableNum('weightGradNorm / weightNorm; null when the weights are all zero.'),
  backpropNorm: Num('Backprop signal: RMS over the examples of ‖∂ℓ_i/∂h_i‖, the per-example loss gradient w.r.t. the layer\'s pre-activation; equals sqrt(batchSize)·‖dLoss/dH‖_F for the batch-mean loss, so it does not depend on the batch size.'),
  backpropRms: Num('backpropNorm / sqrt(units): the typical unit.'),
  preActivationRms: Num('RMS over batch and units of what the activation sees: the pre-activation h = xW + b (√q of mean-field theory), or its normalisation where network.normalization is batch or layer.'),
  activationMean: Num('Mean of the activation φ(h) over batch and units.'),
  activationStd: Num('Standard deviation of φ(h) over batch and units.'),
  outputRms: Num('RMS of what the layer passes on (φ(h), or x + α·F(x) at the end of a residual block).'),
  deadFraction: NullableNum('Fraction of units with φ\'(h) = 0 for every example of the batch (no gradient passes); null for softmax.'),
  saturatedFraction: NullableNum('Fraction of (example, unit) entries where |φ\'(h)| < 0.01 × the activation\'s peak derivative; only for activations with a flat asymptote (sigmoid, tanh, hard_sigmoid, softsign, relu6, elu, selu), null otherwise. ReLU-like "off" regions count toward deadFraction instead.'),
  spread: Type.Optional(
    Type.Object({ weightGradNorm: SpreadSchema, backpropNorm: SpreadSchema }, { description: 'Spread across batches (data.batches > 1).' }),
  ),
  flags: Type.Array(LayerFlagSchema, { description: 'Diagnostic flags of the layer (empty when none applies).' }),
  auxParameters: Type.Optional(Type.Array(AuxParameterSchema, { description: 'Learnable parameters of this layer besides W and b (normalisation gamma/beta, the ReZero/SkipInit gate, Fixup scalars), with their gradients; absent when there are none.' })),
  perExample: Type.Optional(PerExampleSchema),
  ...GraphRowFields,
}, {
  additionalProperties: false,
  title: 'LayerStats',
  description: 'Gradient statistics of one dense layer, or (layer graphs) of one dense/conv2d row in graph order: then name is the path, inputUnits the fan_in (kh·kw·c_in for a convolution), units the output units or filters, and the graph fields (path, kind, outputShape, block, shortcut; spatial and channelDeadFraction for convolutions) are present. For a convolution weightGradRms divides by √(kh·kw·c_in·c_out) and backpropRms by √(h·w·c_out) (every entry of the output); backpropNorm is the RMS over examples of ‖∂ℓ_i/∂(output of the layer, bias included, before any normalisation or activation)‖.',
});

export const AnalysisResultSchema = Type.Object(
  {
    loss: Num('Loss at initialisation (mean over batches).'),
    lossSpread: Type.Optional(SpreadSchema),
    batchSize: Type.Integer({ description: 'Examples per batch.' }),
    batches: Type.Integer({ description: 'Number of batches the statistics are averaged over.' }),
    layers: Type.Array(LayerResultSchema, { description: 'One entry per dense layer, ordered from the input side (index 0) to the output layer.' }),
    summary: Type.Object(
      {
        firstToLastRatio: Num('weightGradNorm of the first layer / that of the last layer.'),
        backpropFirstToLastRatio: Num('backpropNorm of the first layer / that of the last layer.'),
        weightGradLogSlope: LogSlopeSchema,
        backpropLogSlope: LogSlopeSchema,
        ...DiagnosisSummaryFields,
      },
      { additionalProperties: false, title: 'AnalysisSummary', description: 'Depth-wise summary of the gradient flow.' },
    ),
    theory: TheorySchema,
    whatIf: Type.Optional(WhatIfSchema),
    throughTime: Type.Optional(ThroughTimeSchema),
    nonFinite: NonFiniteSchema,
    data: DataSummarySchema,
    blocks: Type.Optional(BlocksSchema),
    parameters: Type.Optional({ ...ParametersSchema, description: 'With include: ["parameters"]: the initial parameters of every layer.' }),
    batch: Type.Optional(
      Type.Array(Type.Object({
        x: Type.Union([Type.Array(Type.Array(Type.Number())), Type.Array(Type.Array(Type.Array(Type.Array(Type.Number()))))], {
          description: 'Input rows of the batch, after normalisation: [example][feature], or for a layer graph with an image input [example][height][width][channel] (NHWC; PyTorch\'s NCHW is x.permute(0, 3, 1, 2)).',
        }),
        y: Type.Array(Type.Array(Type.Number()), { description: 'Target rows of the batch as the loss saw them (one-hot for categorical).' }),
      }, { additionalProperties: false, title: 'AnalysisBatch', description: 'One batch as the network saw it.' }), {
        description: 'With include: ["batch"]: every batch used, inputs after normalisation and targets as the loss saw them.',
      }),
    ),
    checks: Type.Optional(ChecksSchema),
    passed: Type.Optional(Type.Boolean({ description: 'Whether every check passed (present when expect was given).' })),
  },
  { additionalProperties: false, title: 'AnalysisResult', description: 'Per-layer statistics, summary, and what was measured; with expect, also checks and passed.' },
);

export const WebGpuAdapterSchema = Type.Object(
  {
    vendor: Type.String({ description: 'The adapter\'s vendor as Dawn reports it (nvidia, amd, intel, mesa, ...).' }),
    architecture: Type.String({ description: 'Its architecture (e.g. ada, rdna-3; software for lavapipe).' }),
    device: Type.String({ description: 'The device name (may be empty).' }),
    description: Type.String({ description: 'Dawn\'s longer description of the adapter (may be empty).' }),
    isFallbackAdapter: Type.Boolean({ description: 'A software (e.g. lavapipe) or otherwise fallback adapter: correct, not fast.' }),
  },
  { additionalProperties: false, title: 'WebGpuAdapter', description: 'webgpu only: the GPU adapter Dawn gave tfjs.' },
);

export const EnvironmentSchema = Type.Object(
  {
    backend: enumOf(BACKEND_NAMES, 'tensorflow, tensorflow-gpu, webgpu (Dawn), native (cpu backend with OpenBLAS kernels), wasm or cpu.'),
    tfjsBackend: Type.String({ description: 'The tfjs backend underneath.' }),
    tfjsVersion: Type.String({ description: 'Version of @tensorflow/tfjs.' }),
    gradlensVersion: Type.String({ description: 'Version of gradlens.' }),
    simd: Type.Optional(Type.Boolean({ description: 'wasm: whether the SIMD build runs.' })),
    adapter: Type.Optional(WebGpuAdapterSchema),
  },
  { additionalProperties: false, title: 'Environment', description: 'What computed the result.' },
);

export const TimingsSchema = Type.Object(
  {
    buildMs: Type.Number({ description: 'Initialising parameters, sampling batches, creating tensors.' }),
    computeMs: Type.Number({ description: 'Forward and backward passes plus statistics read-back.' }),
    totalMs: Type.Number({ description: 'The whole engine call.' }),
    diagnosisMs: Type.Optional(Type.Number({ description: 'Mean-field theory, structure and verdict.' })),
    whatIfMs: Type.Optional(Type.Number({ description: 'With whatIf: the extra runs and their ranking.' })),
  },
  { additionalProperties: false, title: 'Timings', description: 'Where the time went, in milliseconds.' },
);

export const AnalysisCostSchema = Type.Object(
      {
        parameters: Type.Integer({ description: 'Trainable parameters.' }),
        flopsPerStep: Type.Number({ description: 'Estimated FLOPs of one forward + backward pass over one batch.' }),
        flops: Type.Number({ description: 'Estimated FLOPs of the whole analysis, checked against the limit before running.' }),
        whatIfRuns: Type.Optional(Type.Integer({ description: 'With whatIf: the number of extra analyses.' })),
        totalFlops: Type.Optional(Type.Number({ description: 'With whatIf: estimated FLOPs of the analysis and every what-if run together, checked against the limit before any of them ran.' })),
      },
      { additionalProperties: false, title: 'AnalysisCost', description: 'Cost estimate of an analysis.' },
);

export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Machine-readable code, e.g. INVALID_SPEC, LIMIT_EXCEEDED, FST_ERR_VALIDATION.' }),
    error: Type.String({ description: 'HTTP reason phrase.' }),
    message: Type.String({ description: 'What is wrong, naming the field or limit.' }),
    field: Type.Optional(Type.String({ description: 'The offending field, when one is known.' })),
    limit: Type.Optional(Type.String({ description: 'The limit that was exceeded.' })),
    variable: Type.Optional(Type.String({ description: 'The environment variable that sets that limit (422), e.g. GRADLENS_MAX_TRAINING_FLOPS.' })),
    value: Type.Optional(Type.Number({ description: 'LIMIT_EXCEEDED: the value the request asked for.' })),
    max: Type.Optional(Type.Number({ description: 'LIMIT_EXCEEDED: the most the limit allows.' })),
    jobId: Type.Optional(Type.String({ description: 'A synchronous analysis that did not succeed: its stored job (see the Location header).' })),
    retryAfter: Type.Optional(Type.Integer({ description: '429 and 503: seconds to wait before retrying, as in the Retry-After header.' })),
    status: Type.Optional(Type.String({ description: 'JOB_FINISHED (409): the job\'s status now.' })),
  },
  { title: 'Error', description: 'Error in Fastify\'s shape.' },
);

export const HealthSchema = Type.Object(
  {
    status: Type.Literal('ok'),
    environment: EnvironmentSchema,
    uptimeSeconds: Type.Number(),
    jobs: Type.Optional(
      Type.Object(
        {
          workers: Type.Integer({ description: 'Tasks computed at the same time (compute workers; 1 in-process).' }),
          running: Type.Integer({ description: 'Jobs running now.' }),
          queued: Type.Integer({ description: 'Jobs waiting for a worker.' }),
          queueLimit: Type.Integer({ description: 'GRADLENS_QUEUE_LIMIT: beyond it new work gets 503 with Retry-After.' }),
          store: enumOf(STORE_KINDS, 'Where jobs are stored: sqlite (GRADLENS_DB) or postgres (GRADLENS_STORE).'),
          storeOk: Type.Boolean({ description: 'Whether the last write to the store succeeded (false during a disk or PostgreSQL outage).' }),
          queue: enumOf(QUEUE_KINDS, 'How jobs reach workers: memory (in this process) or bullmq (Redis, GRADLENS_QUEUE).'),
          queueOk: Type.Boolean({ description: 'Whether the queue answers (false while its Redis does not).' }),
        },
        { additionalProperties: false, description: 'The job queue.' },
      ),
    ),
  },
  { additionalProperties: false, title: 'Health', description: 'Liveness.' },
);

export type Environment = Static<typeof EnvironmentSchema>;
export type AnalysisResultBody = Static<typeof AnalysisResultSchema>;

/** What JSON cannot carry as a number: the strings the wire form uses for non-finite values. */
type NonFiniteText = 'NaN' | 'Infinity' | '-Infinity';
/**
 * A wire shape as the engine computes it, before encodeNonFinite: every "NaN"/"±Infinity" string
 * alternative dropped (those values are still plain numbers then).
 */
export type Measured<T> = T extends NonFiniteText ? never
  : T extends readonly (infer E)[] ? Measured<E>[]
  : T extends object ? { [K in keyof T]: Measured<T[K]> }
  : T;

/** One layer's statistics as the engine measures them: the wire LayerStats before the diagnosis adds flags. */
export type LayerStatsBody = Static<typeof LayerResultSchema>;
