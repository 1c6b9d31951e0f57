// JSON schemas (TypeBox) of the diagnosis: verdicts, flags, mean-field theory, what-if ranking, and GET /v1/theory.
import { Type, type Static } from 'typebox';
import { ThresholdsSchema } from './spec.js';
import { AUX_PARAMETER_NAMES, CURE_KINDS, ELEMENTWISE_ACTIVATION_NAMES, enumOf, FIXED_POINT_BEHAVIOURS, FLOW_VERDICTS, PHASES, VerdictSchema } from './vocabulary.js';

/** A number, or one of the strings JSON needs for NaN and ±Infinity (as Num in result.ts, which imports this file). */
const Num = (description: string) =>
  Type.Union([Type.Number(), Type.Literal('NaN'), Type.Literal('Infinity'), Type.Literal('-Infinity')], {
    description: `${description} Non-finite values are the strings "NaN", "Infinity" or "-Infinity".`,
  });
const NullableNum = (description: string) => Type.Union([Num(description), Type.Null()], { description });

export { VerdictSchema, LayerFlagSchema } from './vocabulary.js';

export const FlowVerdictSchema = Type.Union(
  [enumOf(FLOW_VERDICTS, 'A verdict.'), Type.Null()],
  { description: 'The verdict on the layers that are not zero by design (equal to verdict unless that is zero_by_design); null when fewer than two layers carry gradient.' },
);

export const AuxParameterSchema = Type.Object(
  {
    name: enumOf(AUX_PARAMETER_NAMES,
      'gamma, beta: normalisation scale and shift (vectors of the layer\'s units). gate: the learnable ReZero/SkipInit alpha of the block that ends at this layer. fixup_bias_in: Fixup\'s scalar bias added to the layer\'s input; fixup_bias_act: its scalar bias before the activation; fixup_scale: Fixup\'s scalar multiplier of the block\'s branch. recurrent_kernel: a recurrent layer\'s U [units][gates·units] (PyTorch weight_hh_l0ᵀ); recurrent_bias: a gru\'s bias_hh_l0.',
    ),
    size: Type.Integer({ description: 'Number of entries (units for gamma and beta, 1 for scalars).' }),
    initial: Num('Initial value of every entry.'),
    gradNorm: Num('Norm of dLoss/d(parameter) (mean over batches); for a scalar, |dLoss/d(parameter)|.'),
    layer: Type.Optional(Type.String({ description: 'Layer graphs: the path of the batch_norm or layer_norm layer whose gamma or beta this is (reported with the nearest dense/conv2d row before it).' })),
  },
  { description: 'A learnable parameter besides W and b.' },
);

export const PerExampleSchema = Type.Object(
  {
    mean: Num('Mean over every example of every batch of ‖∂ℓ_i/∂W‖ = ‖x_i‖·‖∂ℓ_i/∂h_i‖ (outer-product form of a dense layer\'s per-example weight gradient; x_i the layer\'s input row).'),
    std: Num('Sample standard deviation of the per-example norms.'),
    min: Num('Smallest per-example norm.'),
    max: Num('Largest per-example norm.'),
    rms: Num('Root mean square of the per-example norms.'),
    coherence: NullableNum('‖batch-mean gradient‖ / RMS of the per-example norms (mean over batches), in [0, 1]: 1 when every example pushes the same way, about 1/√batchSize when they point at random (gradient noise dominates); null when every per-example gradient is 0. With batch normalisation the examples are coupled and these are each example\'s contributions to the batch gradient.'),
  },
  { description: 'Spread of per-example weight-gradient norms over the batch (gradient noise): first and last layer only.' },
);

export const ZeroByDesignSchema = Type.Union(
  [
    Type.Object(
      {
        layers: Type.Array(Type.Integer(), { description: 'Layers whose weight gradient is exactly 0 at step 0 by construction.' }),
        causes: Type.Array(Type.String(), { description: 'The structural causes in words (a zero gate, a zero-initialised layer).' }),
      },
      { description: 'Which layers are zero by design and why.' },
    ),
    Type.Null(),
  ],
  { description: 'Layers with exactly zero gradient by the spec\'s structure; null when there are none.' },
);

/** Added to result.summary. */
export const DiagnosisSummaryFields = {
  verdict: VerdictSchema,
  reasons: Type.Array(Type.String(), {
    description: 'The verdict\'s reasons in plain words: the rule that decided it with its numbers, the onset layer, the fitted per-layer factor, what mean-field theory predicts, and any dead or saturated layers.',
  }),
  flowVerdict: FlowVerdictSchema,
  onsetLayer: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Walking from the output toward the input, the first layer whose backprop signal is below (vanishing) or above (exploding) the largest (smallest) level nearer the output by more than thresholds.onsetFactor; null when healthy.',
  }),
  zeroByDesign: ZeroByDesignSchema,
  thresholds: { ...ThresholdsSchema, description: 'The thresholds the verdict and flags used: the request\'s thresholds with every default filled in.' },
};

export const LayerTheorySchema = Type.Object(
  {
    index: Type.Integer({ description: 'Layer index.' }),
    sigmaW2: Num('σ_w² = fan_in·Var(W) the prediction uses: the variance the initialiser really draws with (0.7737 × nominal for uncorrected truncated normals).'),
    sigmaW2Nominal: Num('fan_in × the variance the initialiser\'s name promises; differs from sigmaW2 where truncation is not corrected.'),
    sigmaW2Sample: Num('fan_in × mean(W²) of the weights actually drawn.'),
    sigmaB2: Num('Variance of the bias entries.'),
    q: Num('Predicted q^l = E[h²] of the layer\'s pre-activation, from the actual input\'s mean square.'),
    qMeasured: Num('Measured mean of h² (preActivationRms²).'),
    chi1: NullableNum('Layer-local χ₁ = σ_w²(l+1)·E[φ_l\'(√q^l z)²]: the factor by which ‖δ‖² changes from layer l+1 to layer l in a plain chain; null for the output layer.'),
    predictedBackpropRelative: Num('Predicted backpropNorm relative to the output layer\'s.'),
    measuredBackpropRelative: Num('Measured backpropNorm relative to the output layer\'s.'),
    log10Difference: NullableNum('log10(measured / predicted); null where either is 0.'),
  },
  { description: 'Prediction and measurement for one layer.' },
);

export const HiddenFixedPointSchema = Type.Union(
  [
    Type.Object(
      {
        activation: Type.String({ description: 'The hidden activation.' }),
        sigmaW2: Num('σ_w² of the hidden-to-hidden layers.'),
        sigmaB2: Num('σ_b² of the hidden layers.'),
        qStar: NullableNum('Fixed point q* of q → σ_w² E[φ(√q z)²] + σ_b², reached from the first hidden layer\'s q; 0 when q decays to 0; null when every q is fixed (scale_free) or q grows without bound.'),
        fixedPointKind: enumOf(FIXED_POINT_BEHAVIOURS, 'How q^l behaves: converges to a positive q*, decays to 0, grows without bound, or scale_free (positively homogeneous φ such as ReLU with σ_b² = 0: q^l = (σ_w²E[φ(z)²])^l·q^0).'),
        note: Type.String({ description: 'The fixed point in words.' }),
        chi1: Num('χ₁ = σ_w² E[φ\'(√q* z)²] at the fixed point (the limit where q* is 0 or unbounded): the asymptotic per-layer factor of ‖δ‖².'),
        phase: enumOf(PHASES, 'ordered (χ₁ < 0.99: vanishing toward the input), critical (|χ₁ − 1| ≤ 0.01), chaotic (χ₁ > 1.01: exploding).'),
        depthScale: NullableNum('ξ = 1/|ln χ₁|: layers per e-fold of ‖δ‖²; null at χ₁ = 1.'),
        predictedSlope: Num('½·ln χ₁: predicted d ln‖δ‖ per layer toward the input, the convention of summary.backpropLogSlope.slope.'),
      },
      { description: 'Fixed-point theory of the hidden-to-hidden map.' },
    ),
    Type.Null(),
  ],
  { description: 'Fixed point, χ₁, phase and depth scale of the hidden layers; null when they differ in activation, σ_w² or σ_b², with residual blocks, or with fewer than two layers.' },
);

export const TheorySchema = Type.Object(
  {
    applicable: Type.Boolean({ description: 'Whether a prediction was made; false with the reason otherwise.' }),
    reason: Type.Union([Type.String(), Type.Null()], {
      description: 'Why there is no prediction ("no prediction: …"): normalisation layers, Fixup (zero layers), identity, constant or zero weights, non-zero-mean weights or biases, a non-elementwise hidden activation. null when applicable.',
    }),
    assumptions: Type.Array(Type.String(), { description: 'What the prediction assumes: infinite width, independent zero-mean weights, Gaussian pre-activations, and for orthogonal weights or residual blocks what is taken over from the Gaussian theory.' }),
    weightVariance: Type.String({ description: 'Where σ_w² comes from: the initialiser\'s variance formula, and whether a truncated normal is corrected (Keras) or not (tfjs-layers: realised variance 0.7737 × nominal, and the prediction uses the realised value).' }),
    inputMeanSquare: Num('Mean square of the input entries over the analysed batches (after data.normalize), the q⁰ the recursion starts from (q¹ = σ_w²·this + σ_b²).'),
    hidden: HiddenFixedPointSchema,
    layers: Type.Array(LayerTheorySchema, { description: 'Per layer, input side first; empty when not applicable.' }),
    slopes: Type.Union(
      [
        Type.Object(
          {
            layers: Type.Array(Type.Integer(), { description: 'Hidden layers of the half nearest the output, where q^l has settled.' }),
            measured: Num('Fitted log-slope of the measured backpropNorm over those layers.'),
            predicted: Num('The same fit of the predicted norms.'),
            difference: Num('measured − predicted.'),
            withinTolerance: Type.Boolean({ description: '|2·difference| ≤ 0.1·|2·predicted| + 0.02 (on the ln‖δ‖² scale): agreement as the reference defines it for wide layers. Narrow networks and single seeds scatter (O(depth/width)).' }),
          },
          { description: 'Measured against predicted slope.' },
        ),
        Type.Null(),
      ],
      { description: 'Slope comparison over the output-side half of the hidden layers; null with fewer than 2 such layers or no prediction.' },
    ),
  },
  {
    description:
      'Mean-field (infinite-width) prediction beside the measurement (Poole et al. 2016; Schoenholz et al. 2017): the q map from the actual input variance, layer-local χ₁, predicted backprop norms relative to the output layer and the difference from the measured ones. Residual blocks use the (1 + α²·χ_branch) rule.',
  },
);

export const WhatIfRowSchema = Type.Object(
  {
    id: Type.String({ description: 'Cure identifier: none (the original analysis), activation:<name>, init:variance_preserving, activation+init:relu+he_normal, activation+init:selu+lecun_normal, residual, normalization:batch, normalization:layer; for layer graphs init:variance_preserving (with the conv fans), residual (identity shortcuts around pairs of shape-keeping layers), residual:remove (the plain counterpart) and normalization:batch, each changing network.layers.' }),
    kind: enumOf(CURE_KINDS, 'What the cure changes.'),
    description: Type.String({ description: 'The cure in words, with the numbers it sets.' }),
    change: Type.Record(Type.String(), Type.Unknown(), { description: 'The spec fields the cure sets, by dotted path (request form); {} for none. Apply them to the returned spec to reproduce the run.' }),
    rank: Type.Integer({ description: '1 = closest to healthy.' }),
    verdict: VerdictSchema,
    flowVerdict: FlowVerdictSchema,
    backpropFirstToLastRatio: Num('backpropNorm of the first measured layer / that of the output layer, in this run.'),
    firstToLastRatio: Num('weightGradNorm of the first layer / that of the output layer, in this run.'),
    backpropLogSlope: NullableNum('Fitted log-slope of backpropNorm per layer toward the input, in this run.'),
    r2: NullableNum('r² of that fit.'),
    distance: Num('Orders of magnitude from a flat flow: ½(|log10 backpropFirstToLastRatio| + |slope|·(layers − 1)/ln 10). The ranking key (ascending).'),
    loss: Num('Loss at initialisation in this run.'),
  },
  { description: 'One what-if run.' },
);

export const WhatIfSchema = Type.Object(
  {
    ranking: Type.Array(WhatIfRowSchema, { description: 'Every run, best first, the unchanged network ("none", the original analysis) included.' }),
    skipped: Type.Array(
      Type.Object(
        {
          id: Type.String({ description: 'The cure.' }),
          reason: Type.String({ description: 'Why it does not apply to this spec.' }),
        },
        { description: 'A cure that was not run.' },
      ),
      { description: 'Cures that do not apply (already present, mixed activations, unequal widths…).' },
    ),
    summary: Type.String({ description: 'The best change in one sentence, with its numbers and those of the unchanged network.' }),
    runs: Type.Integer({ description: 'Extra analyses run (the original is not repeated).' }),
    computeMs: Type.Number({ description: 'Time the extra runs took.' }),
  },
  { description: 'With whatIf: true, the same spec (seed, batches) re-run with each standard cure applied alone, ranked by distance from a flat flow.' },
);

export const TheoryQuerySchema = Type.Object(
  {
    activation: enumOf(ELEMENTWISE_ACTIVATION_NAMES, `Hidden activation by name: ${ELEMENTWISE_ACTIVATION_NAMES.join(', ')} (softmax is not elementwise).`),
    alpha: Type.Optional(Type.Number({ minimum: -1000, maximum: 1000, description: 'leaky_relu negative slope (default 0.01) or elu alpha (default 1), between -1000 and 1000.' })),
    sigmaW2: Type.Number({ minimum: 0, maximum: 1e6, description: 'σ_w² = fan_in·Var(W): 2 for He, 1 for LeCun or Glorot with equal widths, 1/3 for PyTorch\'s nn.Linear default, 0.7737 × those for tfjs-layers\' uncorrected truncated normals.' }),
    sigmaB2: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, description: 'σ_b², the bias variance (default 0).' })),
    depth: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Number of layers to iterate (default 20, at most 1000).' })),
    q0: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, description: 'Mean square of the input entries (default 1: standardised data); q¹ = σ_w²·q0 + σ_b².' })),
  },
  { additionalProperties: false },
);

export const TheoryResponseSchema = Type.Object(
  {
    activation: Type.String({ description: 'The activation, with its parameter in brackets where it has one.' }),
    sigmaW2: Type.Number({ description: 'σ_w² used.' }),
    sigmaB2: Type.Number({ description: 'σ_b² used.' }),
    q0: Type.Number({ description: 'Input mean square used.' }),
    depth: Type.Integer({ description: 'Layers iterated.' }),
    qStar: Type.Union([Type.Number(), Type.Null()], { description: 'Fixed point q* reached from q¹; 0 when q decays to 0; null when scale_free or unbounded.' }),
    fixedPointKind: enumOf(FIXED_POINT_BEHAVIOURS, 'How q^l behaves with depth.'),
    note: Type.String({ description: 'The fixed point in words.' }),
    chi1: Type.Number({ description: 'χ₁ = σ_w² E[φ\'(√q* z)²] at the fixed point (its limit where q* is 0 or unbounded).' }),
    phase: enumOf(PHASES, 'ordered (χ₁ < 0.99), critical (|χ₁ − 1| ≤ 0.01), chaotic (χ₁ > 1.01).'),
    depthScale: Type.Union([Type.Number(), Type.Null()], { description: 'ξ_∇ = 1/|ln χ₁| (layers per e-fold of ‖δ‖²); null at χ₁ = 1.' }),
    predictedSlope: Type.Number({ description: '½·ln χ₁: d ln‖δ‖ per layer toward the input (fitLogSlope\'s convention).' }),
    factorPerLayer: Type.Number({ description: '√χ₁: the factor ‖δ‖ is multiplied by per layer toward the input at the fixed point.' }),
    criticalSigmaW2: Type.Union([Type.Number(), Type.Null()], { description: 'The σ_w² that puts this activation at χ₁ = 1 (with this σ_b² and q0): the variance-preserving initialisation; null if none in [1e-3, 1e4].' }),
    layers: Type.Array(
      Type.Object(
        {
          layer: Type.Integer({ description: 'Layer l = 1..depth.' }),
          q: Type.Union([Type.Number(), Type.Null()], { description: 'q^l, the pre-activation second moment; null once it overflows double precision (chaotic unbounded activations).' }),
          chi1: Type.Number({ description: 'Layer-local χ₁^(l) = σ_w² E[φ\'(√q^l z)²].' }),
          predictedBackpropRelative: Type.Number({ description: '‖δ^l‖ / ‖δ^depth‖ from the layer-local χ₁ (1 for the last layer).' }),
        },
        { description: 'One layer of the recursion.' },
      ),
      { description: 'The recursion layer by layer.' },
    ),
  },
  { description: 'Mean-field recursion for identical layers (Poole et al. 2016; Schoenholz et al. 2017).' },
);

export type TheoryQuery = Static<typeof TheoryQuerySchema>;
