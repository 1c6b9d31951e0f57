// JSON schemas (TypeBox) of the analysis spec: the request shape, with a description on every field.
import { Type, type Static } from 'typebox';
import {
  ANALYSIS_INCLUDE, DataSourceSchema, enumOf, TOKEN_TARGETS, FeatureNormalizationSchema, LOSS_NAMES, NETWORK_PRESETS, NORMALIZATION_KINDS, RESIDUAL_VARIANTS,
} from './vocabulary.js';
import { ActivationSchema, InitializerSchema } from './activation-init.js';
import { NetworkLayerSchema } from './layers.js';

export { ActivationSchema, InitializerSchema };

export const NetworkSchema = Type.Object(
  {
    depth: Type.Optional(Type.Integer({ minimum: 1, description: 'Number of dense (weight) layers, the output layer included. depth 20 = 19 hidden layers + output. Required unless layers or preset describes the network (a layer graph).' })),
    layers: Type.Optional(Type.Array(NetworkLayerSchema, {
      minItems: 1,
      description: 'A layer graph instead of the depth/width shorthand: the layers in order, input side first (see the Layer schema). Tensors are NHWC: an image input is [height, width, channels]. The last dense layer\'s units may be omitted (then the targets\' width). With layers, the shorthand fields depth, width, widths, activation, outputUnits, residual and normalization are not allowed; outputActivation, useBias and init are the defaults of the layers. One row per dense/conv2d layer (projection shortcuts included) comes back in result.layers.',
    })),
    input: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 3, description: 'Layer graphs: the shape of one example, [height, width, channels] (NHWC) or [features]; default the data\'s (mnist: [28, 28, 1]). Its size must equal the data\'s features.' })),
    preset: Type.Optional(enumOf(NETWORK_PRESETS, 'A layer graph written out as network.layers (the normalised spec returns the layers): resnet (He et al. 2016, CIFAR ResNets: conv3×3(stages[0])-BN-relu, then one stage per entry of stages with blocksPerStage basic blocks each (conv3×3-BN-relu-conv3×3-BN, plus the shortcut, relu after the addition; the first block of every stage but the first has stride 2 and a projection shortcut), global_avg_pool, dense(classes): 6n+2 weight layers for 3 stages of n blocks, so blocksPerStage 3 and 9 give ResNet-20 and ResNet-56), or plain_cnn (the same layers without the shortcuts, the paper\'s plain baseline). activation (default relu) and init (default he_normal) apply to every layer.')),
    stages: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 8, description: 'preset: channels of each stage (default [16, 32, 64]).' })),
    blocksPerStage: Type.Optional(Type.Integer({ minimum: 1, description: 'preset: basic blocks per stage n (default 3: ResNet-20).' })),
    width: Type.Optional(Type.Integer({ minimum: 1, description: 'Units of every hidden layer (default 32). Ignored when widths is given.' })),
    widths: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { description: 'Units of each hidden layer, input side first: exactly depth - 1 entries.' })),
    activation: Type.Optional(
      Type.Union([ActivationSchema, Type.Array(ActivationSchema)], {
        description: 'Hidden-layer activation, or one per hidden layer (depth - 1 entries). Default relu.',
      }),
    ),
    outputActivation: Type.Optional(ActivationSchema),
    outputUnits: Type.Optional(Type.Integer({ minimum: 1, description: 'Output size. Default: the width of the data\'s targets (classes for categorical targets, 1 for binary, 1 for loss "output" on inline data without y).' })),
    useBias: Type.Optional(Type.Boolean({ description: 'Whether dense layers have a bias (default true).' })),
    init: Type.Optional(
      Type.Object(
        {
          weights: Type.Optional(InitializerSchema),
          bias: Type.Optional(InitializerSchema),
        },
        { additionalProperties: false, description: 'Initialisers: weights default glorot_uniform (the Keras default), bias default zeros.' },
      ),
    ),
    residual: Type.Optional(
      Type.Object(
        {
          every: Type.Integer({ minimum: 0, description: 'Block length k: hidden-to-hidden layers are grouped in blocks of k, each computing x + scale·F(x) where F is its k dense+activation layers. 0 = no residual connections. Layers that do not fill a last block stay plain.' }),
          scale: Type.Optional(Type.Number({ description: 'Branch multiplier alpha. variant plain: a fixed number (default 1). rezero / skipinit: the initial value of the learnable per-block alpha (default 0). fixup: the initial value of the learnable per-block scalar multiplier (default 1).' })),
          variant: Type.Optional(
            enumOf(RESIDUAL_VARIANTS,
                'plain (default): x + scale·F(x) with a fixed scale. rezero (Bachlechner et al. 2020) and skipinit (De & Smith 2020): x + alpha·F(x) with a learnable scalar alpha per block, initialised to scale (default 0) — in a dense block without normalisation the two are the same computation; alpha\'s gradient is reported in auxParameters of the block\'s last layer. fixup (Zhang et al. 2019): the weights of every branch layer but the last are initialised as network.init.weights says and multiplied by L^(-1/(2m-2)) (L blocks, m = every layers per block), the last layer of every branch has no activation (the branch ends in the addition, as in Fixup\'s ResNets) and, like the output layer, is initialised to zero, and every branch layer gets learnable scalar biases (one added to its input, one before its activation, initial 0) and every block a learnable scalar multiplier (initial scale, default 1). rezero/skipinit at alpha 0 and fixup give exactly zero gradients to some layers at step 0 by construction: the verdict is then zero_by_design. Needs every >= 1.',
            ),
          ),
        },
        { additionalProperties: false, description: 'Residual connections: { every: k, scale: alpha, variant }. The input and output layers stay outside blocks.' },
      ),
    ),
    normalization: Type.Optional(
      enumOf(NORMALIZATION_KINDS,
          'Normalisation of every hidden layer, placed after the dense layer and before the activation: h = xW + b, n = gamma·(h − mean)/sqrt(var + 1e-5) + beta, output phi(n). batch: mean and variance per unit over the examples of the batch itself (training-mode batch norm, no running averages); layer: per example over the units. gamma (initial 1) and beta (initial 0) are learnable vectors whose gradients are reported in each layer\'s auxParameters. The output layer is never normalised. Default none.',
      ),
    ),
  },
  { additionalProperties: false, title: 'Network', description: 'A fully connected network (depth/width shorthand) or a layer graph (layers or preset). Input size comes from the data.' },
);

/** One value per entry: the rows of a matrix, the innermost arrays of a tensor. */
const NumberArray = Type.Array(Type.Number());

/**
 * One inline example: a row of numbers (feature vectors, the form inline data always had) or a nested array of up to
 * 4 dimensions, e.g. [height][width][channels] for an image (NHWC without the N). A union of fixed ranks rather than a
 * recursive schema, so that generated clients get plain nested array types.
 */
export const InlineExampleSchema = Type.Union(
  [NumberArray, Type.Array(NumberArray), Type.Array(Type.Array(NumberArray)), Type.Array(Type.Array(Type.Array(NumberArray)))],
  { description: 'One example: a row of numbers, or a nested array of up to 4 dimensions such as [height][width][channels]; every example of data.x has the shape of data.x[0].' },
);

export const DataSchema = Type.Object(
  {
    source: DataSourceSchema,
    batchSize: Type.Optional(Type.Integer({ minimum: 1, description: 'Examples per batch (default 64; inline data: all rows).' })),
    batches: Type.Optional(Type.Integer({ minimum: 1, description: 'Minibatches to average the statistics over (default 1); the spread across batches is reported too.' })),
    normalize: Type.Optional(FeatureNormalizationSchema),
    samples: Type.Optional(Type.Integer({ minimum: 1, description: 'Generated sets: number of points to generate (default 1000).' })),
    noise: Type.Optional(Type.Number({ minimum: 0, description: 'Generated sets: noise level, a Gaussian standard deviation (gaussian_images: on every value, default 1, with class templates of unit variance; shapes: on every value, default 0.1, with shapes of brightness 0.5 to 1 on 0).' })),
    classes: Type.Optional(Type.Integer({ minimum: 2, maximum: 100, description: 'spirals, blobs, gaussian_images (default 10), shapes (default and at most 4: square, circle, cross, triangle), memory (symbols, default 8): number of classes.' })),
    features: Type.Optional(Type.Integer({ minimum: 1, description: 'blobs: input dimension.' })),
    height: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'gaussian_images, shapes: image height in pixels (default 28; shapes at least 8).' })),
    width: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'gaussian_images, shapes: image width in pixels (default 28; shapes at least 8).' })),
    channels: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: 'gaussian_images, shapes: channels per pixel (default 1). An example is height × width × channels values (NHWC); samples × height × width × channels must not exceed 50 000 000.' })),
    length: Type.Optional(Type.Integer({ minimum: 2, maximum: 2000, description: 'adding (default 100), memory (default 50), sine_wave (default 50): time steps of every sequence; sequential_mnist: 28 (rows as steps, default) or 784 (pixels as steps).' })),
    permuted: Type.Optional(Type.Boolean({ description: 'sequential_mnist: the pixels in one fixed random permutation before they are cut into steps (permuted MNIST; default false).' })),
    tokens: Type.Optional(Type.Object({
      vocab: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000, description: 'Vocabulary size V (default 16): ids 0 … V−1.' })),
      length: Type.Optional(Type.Integer({ minimum: 2, maximum: 4096, description: 'Tokens per sentence T (default 32): network.input [T].' })),
      branching: Type.Optional(Type.Integer({ minimum: 1, description: 'Allowed successors per token in the grammar (default 2; at most V, for grammatical V − 1).' })),
      target: Type.Optional(enumOf(TOKEN_TARGETS, 'next_token (default; classification over V: the token the grammar gives after the last) or grammatical (binary: 1 for a grammatical sentence, 0 for one with a forbidden token at one step; half of each).')),
    }, { additionalProperties: false, description: 'tokens: sentences of integer token ids from a seeded random first-order grammar (every token has `branching` allowed successors); the ids are not normalised (data.normalize defaults to none).' })),
    x: Type.Optional(Type.Array(InlineExampleSchema, { description: 'inline: the examples, all of the same shape: rows of numbers ([n][features]), or nested arrays such as [n][height][width][channels]. The network sees each example flattened row-major; its shape is the data\'s inputShape.' })),
    y: Type.Optional(
      Type.Union([Type.Array(Type.Array(Type.Number())), Type.Array(Type.Integer({ minimum: 0 }))], {
        description: 'inline: targets as rows (regression) or class indices. Optional with loss "output".',
      }),
    ),
  },
  { additionalProperties: false, title: 'Data', description: 'Where the training batches come from.' },
);

export const LossSchema = Type.Enum(
  LOSS_NAMES,
  {
    title: 'Loss',
    description:
      'Loss, a mean over the batch (mse: over all elements). "output" is the batch mean of the sum of the network\'s outputs: the raw d(output)/d(weights) of textbook examples. Default: categorical_crossentropy for class data, binary_crossentropy for two-class generated sets, mse for regression.',
  },
);

export const ThresholdsSchema = Type.Object(
  {
    vanishingRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Verdict vanishing when the first layer\'s backprop signal (backpropNorm) is below this fraction of the output layer\'s (default 0.1: more than one order of magnitude lost).' })),
    explodingRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Verdict exploding when the first layer\'s backprop signal is above this multiple of the output layer\'s (default 10).' })),
    perLayerFactor: Type.Optional(Type.Number({ exclusiveMinimum: 1, description: 'Verdict vanishing (exploding) also when the fitted backprop log-slope shrinks (grows) the signal by more than this factor per layer, with fit r² >= minR2 over at least 3 layers, even if the total stays inside the ratio band (default 2).' })),
    minR2: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Fit quality the per-layer rule needs (default 0.9).' })),
    onsetFactor: Type.Optional(Type.Number({ exclusiveMinimum: 1, description: 'Onset layer: walking from the output toward the input, the first layer whose backprop signal is below (vanishing) or above (exploding) the largest (smallest) signal nearer the output by more than this factor (default 2).' })),
    deadFraction: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Flag dead when more than this fraction of a layer\'s units pass no gradient for any example of the batch (default 0.5, as SageMaker Debugger\'s DeadRelu rule).' })),
    saturatedFraction: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Flag saturated when more than this fraction of a layer\'s (example, unit) entries are saturated (default 0.5, as SageMaker Debugger\'s SaturatedActivation rule).' })),
    saturationDerivative: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'An entry counts as saturated where |phi\'(h)| is below this fraction of the activation\'s largest derivative (default 0.01); defines layers[].saturatedFraction.' })),
    minGradRms: Type.Optional(Type.Number({ minimum: 0, description: 'Absolute backstop: verdict vanishing when no layer\'s weightGradRms reaches this value (default 1e-7, as SageMaker Debugger\'s VanishingGradient rule). It depends on the loss\'s scale, so it only backs up the relative rules.' })),
  },
  {
    additionalProperties: false,
    title: 'Thresholds',
    description: 'Thresholds of the verdict and the per-layer flags, each optional with the default given (see docs/reading-the-results.md). They change the diagnosis, not the measurements (saturationDerivative also defines saturatedFraction).',
  },
);

export const AnalysisSpecSchema = Type.Object(
  {
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Seeds weights and batches: the same request gives the same numbers on the same backend (default 42).' })),
    network: NetworkSchema,
    data: DataSchema,
    loss: Type.Optional(LossSchema),
    include: Type.Optional(
      Type.Array(enumOf(ANALYSIS_INCLUDE, 'parameters or batch.'), {
        maxItems: 2,
        description: 'parameters: the initial weights ([inputUnits][units], the tfjs Dense layout; conv2d kernels as [kh][kw][c_in][c_out], the tfjs layout: PyTorch\'s Conv2d.weight [c_out][c_in][kh][kw] is its permutation (3, 2, 0, 1)), biases and auxiliary parameters (normalisation gamma/beta, residual gates, Fixup scalars) of every layer; batch: the batches used (image inputs as [example][height][width][channels], NHWC: PyTorch\'s NCHW is the permutation (0, 3, 1, 2)). Enough to reproduce the numbers in another framework.',
      }),
    ),
    thresholds: Type.Optional(ThresholdsSchema),
    whatIf: Type.Optional(
      Type.Boolean({
        description:
          'Also run the same spec (same seed, same batches) with each standard cure applied one at a time — hidden activation changed, the variance-preserving initialisation for the activation, residual blocks, batch or layer normalisation — and rank them by how close they bring the backprop signal to healthy (result.whatIf). For layer graphs the cures are the variance-preserving initialisation, identity shortcuts added (or every residual block removed) and batch normalisation added. Multiplies the compute: the summed cost of all runs is checked against the limits before any of them runs. Default false.',
      }),
    ),
  },
  { additionalProperties: false, title: 'AnalysisSpec', description: 'An analysis spec: the network, the data, the loss and a seed.' },
);

export type AnalysisSpecInput = Static<typeof AnalysisSpecSchema>;
export type NetworkInput = Static<typeof NetworkSchema>;
export type DataInput = Static<typeof DataSchema>;
export type { LossName } from './vocabulary.js';
export type ThresholdsInput = Static<typeof ThresholdsSchema>;
