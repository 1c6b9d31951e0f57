// JSON schemas (TypeBox) of the recurrent layers of a layer graph (issue 14): simple_rnn, lstm and gru read a
// sequence [time, features] and give [time, units] (returnSequences) or the last step's [units]. Self-contained
// (layers.ts imports these into its unions, so this file cannot import layers.ts back).
import { Type, type Static } from 'typebox';
import { ActivationSchema, InitializerSchema } from './activation-init.js';

export const RecurrentInitSchema = Type.Object(
  {
    weights: Type.Optional(InitializerSchema),
    recurrent: Type.Optional(InitializerSchema),
    bias: Type.Optional(InitializerSchema),
  },
  {
    additionalProperties: false,
    description: 'A recurrent layer\'s initialisers: weights the input kernel W [features][gates·units] (default network.init.weights, glorot_uniform), recurrent the recurrent kernel U [units][gates·units], drawn gate block by gate block (default orthogonal, the Keras default; identity(gain) is Le et al. 2015\'s IRNN), bias (default network.init.bias, zeros). pytorch_default draws every one of them from U(±1/√units), PyTorch\'s nn.RNN/LSTM/GRU reset_parameters.',
  },
);

const common = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.]+$', description: 'The layer\'s name in its row\'s path (default rnn1, lstm1, gru1, …).' })),
  units: Type.Integer({ minimum: 1, description: 'Hidden units (the size of h_t).' }),
  returnSequences: Type.Optional(Type.Boolean({ description: 'true: the output is every step\'s h, [time, units] (for a stacked recurrent layer); false (default): the last step\'s h, [units].' })),
  useBias: Type.Optional(Type.Boolean({ description: 'Default network.useBias (true).' })),
  init: Type.Optional(RecurrentInitSchema),
  activation: Type.Optional({ ...ActivationSchema, description: 'The recurrence\'s nonlinearity (default tanh), as Keras\' activation: simple_rnn\'s φ in h_t = φ(x_t W + h_{t−1} U + b) (relu with an identity recurrent init is the IRNN); lstm\'s candidate g and cell output tanh(c_t); gru\'s candidate n. Unlike other layers it is not applied after the layer.' } as typeof ActivationSchema),
};

export const SimpleRnnLayerSchema = Type.Object({
  kind: Type.Literal('simple_rnn'),
  ...common,
}, { additionalProperties: false, title: 'Layer_simple_rnn', description: 'Elman RNN, PyTorch nn.RNN / Keras SimpleRNN: h_t = φ(x_t W + h_{t−1} U + b), h_{−1} = 0. W = weight_ih_l0ᵀ, U = weight_hh_l0ᵀ, b = bias_ih_l0 + bias_hh_l0.' });

export const LstmLayerSchema = Type.Object({
  kind: Type.Literal('lstm'),
  ...common,
  forgetBias: Type.Optional(Type.Number({ description: 'Added to the forget gate\'s bias after the bias initialiser (default 0; 1 is Jozefowicz et al. 2015\'s advice and Keras\' unit_forget_bias).' })),
}, { additionalProperties: false, title: 'Layer_lstm', description: 'LSTM, PyTorch nn.LSTM gate order [i, f, g, o] along the gates·units axis (Keras LSTM has the same order): i, f, o = σ(·), g = tanh(·), c_t = f·c_{t−1} + i·g, h_t = o·tanh(c_t). W = weight_ih_l0ᵀ [features][4·units], U = weight_hh_l0ᵀ [units][4·units], b = bias_ih_l0 + bias_hh_l0.' });

export const GruLayerSchema = Type.Object({
  kind: Type.Literal('gru'),
  ...common,
}, { additionalProperties: false, title: 'Layer_gru', description: 'GRU, PyTorch nn.GRU gate order [r, z, n]: r = σ(x W_r + b_r + h U_r + b̃_r), z likewise, n = tanh(x W_n + b_n + r·(h U_n + b̃_n)), h_t = (1 − z)·n + z·h_{t−1}. W = weight_ih_l0ᵀ, U = weight_hh_l0ᵀ, bias = bias_ih_l0, and the recurrent_bias auxParameter = bias_hh_l0 (kept apart because r multiplies it). Keras GRU (reset_after=True) stores [z, r, h]: permute the blocks.' });

export const RecurrentLayerSchemas = [SimpleRnnLayerSchema, LstmLayerSchema, GruLayerSchema] as const;
export type RecurrentLayerInput = Static<typeof SimpleRnnLayerSchema> | Static<typeof LstmLayerSchema> | Static<typeof GruLayerSchema>;
