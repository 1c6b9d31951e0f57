// JSON schemas (TypeBox) of an activation and an initialiser: shared by the dense network spec and the layers of a layer graph.
import { Type } from 'typebox';
import { ActivationNameSchema, enumOf, FAN_MODES, InitializerNameSchema, SCALING_DISTRIBUTIONS } from './vocabulary.js';

export const ActivationSchema = Type.Union(
  [
    ActivationNameSchema,
    Type.Object(
      {
        name: ActivationNameSchema,
        alpha: Type.Optional(Type.Number({ description: 'Negative slope for leaky_relu (default 0.01), saturation value for elu (default 1).' })),
      },
      { additionalProperties: false, title: 'ParameterizedActivation', description: 'An activation with its parameter.' },
    ),
  ],
  { title: 'Activation', description: 'An activation: a name or { name, alpha }.' },
);

export const InitializerSchema = Type.Union(
  [
    InitializerNameSchema,
    Type.Object(
      {
        name: InitializerNameSchema,
        value: Type.Optional(Type.Number({ description: 'constant: the value (default 0).' })),
        mean: Type.Optional(Type.Number({ description: 'random_normal, truncated_normal: mean (default 0).' })),
        stddev: Type.Optional(Type.Number({ minimum: 0, description: 'random_normal, truncated_normal: standard deviation before truncation (default 0.05). truncated_normal redraws beyond ±2 stddev, as Keras\' TruncatedNormal.' })),
        min: Type.Optional(Type.Number({ description: 'random_uniform: lower bound (default -0.05).' })),
        max: Type.Optional(Type.Number({ description: 'random_uniform: upper bound (default 0.05).' })),
        gain: Type.Optional(Type.Number({ description: 'orthogonal, identity: multiplier (default 1).' })),
        scale: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'variance_scaling: Var(W) = scale / fan (default 1).' })),
        mode: Type.Optional(enumOf(FAN_MODES, 'variance_scaling: which fan (default fan_in).')),
        distribution: Type.Optional(
          enumOf(
            SCALING_DISTRIBUTIONS,
            'variance_scaling: normal (plain, exact variance), truncated_normal (Keras: ±2σ, corrected to the exact variance; the default), truncated_normal_uncorrected (tfjs-layers heNormal & co: variance 0.774 × nominal), uniform.',
          ),
        ),
      },
      { additionalProperties: false, title: 'ParameterizedInitializer', description: 'An initialiser with its parameters.' },
    ),
  ],
  { title: 'Initializer', description: 'An initialiser: a name or { name, ...parameters }.' },
);
