// JSON schema (TypeBox) of result.throughTime (issue 14): one entry per recurrent layer of a layer graph.
import { Type, type Static } from 'typebox';
import { enumOf, FLOW_VERDICTS, RECURRENT_LAYER_KINDS } from './vocabulary.js';

const Num = (description: string) => Type.Union([Type.Number(), Type.Literal('NaN'), Type.Literal('Infinity'), Type.Literal('-Infinity')], { description: `${description} Non-finite values come as strings, listed in nonFinite.` });
const Nums = (description: string) => Type.Array(Num('One step\'s value.'), { description });

export const THROUGH_TIME_CURES = ['lstm', 'gru', 'orthogonal_recurrent', 'identity_recurrent', 'forget_bias', 'gradient_clipping'] as const;

export const ThroughTimeEntrySchema = Type.Object({
  layer: Type.Integer({ description: 'The layer\'s row in result.layers.' }),
  path: Type.String({ description: 'The layer\'s path.' }),
  kind: enumOf(RECURRENT_LAYER_KINDS, 'simple_rnn, lstm or gru.'),
  steps: Type.Integer({ description: 'Time steps T.' }),
  norms: Nums('norms[t], t = 0 … T−1: the RMS over the examples of ‖∂ℓ_i/∂h_t‖ (ℓ_i one example\'s loss, h_t the layer\'s state after step t), averaged over the batches — √B·‖∂L/∂h_t‖_F for the batch-mean loss L, the same normalisation as layers[].backpropNorm. It is the total derivative: through h_t\'s own output and every later step.'),
  relative: Nums('norms[t] / norms[T − 1].'),
  fit: Type.Union([Type.Object({
    slope: Num('Least-squares slope of ln norms[t] against the steps back from the last step: < 0 the gradient shrinks into the past.'),
    factorPerStep: Num('e^slope: the factor per step back in time.'),
    r2: Num('Fit quality (1 = exactly exponential in time).'),
  }, { additionalProperties: false }), Type.Null()], { description: 'Exponential fit over the steps; null with fewer than two finite positive norms.' }),
  horizonThreshold: Type.Number({ description: 'thresholds.vanishingRatio: the fraction of the last step\'s norm that defines the horizon.' }),
  memoryHorizon: Type.Union([Type.Integer(), Type.Null()], { description: 'Steps back from the last step until norms[t] < horizonThreshold × norms[T − 1] for the first time; null when it never falls that low.' }),
  gates: Type.Union([Type.Object({
    name: Type.Union([Type.Literal('forget'), Type.Literal('update')], { description: 'forget: lstm\'s f_t; update: gru\'s z_t (h_t = (1 − z)·n + z·h_{t−1}, so z near 1 keeps memory).' }),
    mean: Nums('Per step: the gate\'s mean over examples and units.'),
    saturated: Nums('Per step: the fraction of entries where σ′ = g(1 − g) is below thresholds.saturationDerivative × 1/4 (the gate stuck near 0 or 1).'),
    overallMean: Num('mean over the steps.'),
    overallSaturated: Num('saturated over the steps.'),
  }, { additionalProperties: false }), Type.Null()], { description: 'lstm and gru: the gate that carries memory, over time; null for simple_rnn.' }),
  recurrentMatrix: Type.Object({
    block: Type.String({ description: 'The block of U examined: U (simple_rnn), U_g (lstm\'s candidate), U_n (gru\'s candidate).' }),
    spectralRadius: Type.Union([Num('max |λ|.'), Type.Null()], { description: 'max |λ| of the block (Gelfand\'s formula by repeated squaring); null above 256 units (float64 squaring on the host).' }),
    largestSingularValue: Num('σ₁ of the block.'),
    gamma: Num('γ = sup|φ′| of the recurrence\'s activation: 1 for tanh and relu, 1/4 for sigmoid.'),
    bound: Num('1/γ.'),
    vanishingSufficient: Type.Boolean({ description: 'σ₁ < 1/γ: Pascanu et al. 2013\'s sufficient condition for vanishing gradients.' }),
    explodingNecessary: Type.Boolean({ description: 'σ₁ > 1/γ: their necessary (not sufficient) condition for exploding gradients.' }),
    note: Type.String({ description: 'What the condition covers for this kind of layer.' }),
  }, { additionalProperties: false }),
  verdict: enumOf(FLOW_VERDICTS, 'Through time: exploding when a norm is not finite or some norms[t] > thresholds.explodingRatio × norms[T − 1]; vanishing when memoryHorizon is not null (vanishing after ~memoryHorizon steps); healthy otherwise.'),
  reasons: Type.Array(Type.String(), { description: 'Why, with the numbers.' }),
  cures: Type.Array(Type.Object({
    id: enumOf(THROUGH_TIME_CURES, 'lstm / gru instead of a simple RNN, orthogonal_recurrent or identity_recurrent (IRNN, relu) init, forget_bias 1 for an lstm, gradient_clipping for trainings.'),
    description: Type.String(),
    change: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'What to merge into the layer as written in network.layers; null for gradient clipping (a training option).' }),
  }, { additionalProperties: false }), { description: 'The cures that apply to the verdict (none when healthy).' }),
}, { additionalProperties: false, title: 'ThroughTime', description: 'Gradient flow through time of one recurrent layer.' });

export const ThroughTimeSchema = Type.Array(ThroughTimeEntrySchema, { description: 'Layer graphs with simple_rnn, lstm or gru layers: one entry per recurrent layer, in graph order.' });

export type ThroughTimeEntryBody = Static<typeof ThroughTimeEntrySchema>;
