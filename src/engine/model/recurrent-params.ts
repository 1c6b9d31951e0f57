// A recurrent layer's parameters drawn from the graph's weight stream (issue 14), laid out as PyTorch's
// transposed: W = weight_ih_l0ᵀ [features][gates·units], U = weight_hh_l0ᵀ [units][gates·units], gate blocks
// in PyTorch's order (lstm [i, f, g, o], gru [r, z, n]); a gru's b_hh kept apart as recurrent_bias.
import type { Rng } from '../common/random.js';
import { initialize, type InitializerSpec } from './initializers.js';
import type { AuxParameter } from './network.js';
import type { RowPlan } from '../spec/graph-types.js';
import type { RecurrentNode } from '../spec/recurrent-types.js';

export interface RecurrentDraw {
  weights: Float32Array;
  bias: Float32Array | null;
  /** recurrent_kernel, and for a gru recurrent_bias, with the row's index. */
  aux: AuxParameter[];
}

/** Initialisers drawn block by block: each gate's [units][units] block is its own orthogonal (or identity) matrix. */
const PER_BLOCK = new Set(['orthogonal', 'identity']);

/** PyTorch draws every recurrent parameter from U(±1/√units): its fan is the hidden size, not the matrix's. */
const fansOf = (spec: InitializerSpec, rows: number, cols: number, units: number) =>
  (spec.name === 'pytorch_default' ? { fanIn: units, fanOut: units } : { fanIn: rows, fanOut: cols });

/** U [units][gates·units]: per gate block for orthogonal/identity (Saxe et al.; Le et al.'s IRNN), else as one matrix. */
function drawRecurrentKernel(node: RecurrentNode, rng: Rng): Float32Array {
  const { units, gates } = node;
  const spec = node.init.recurrent;
  const width = gates * units;
  if (!PER_BLOCK.has(spec.name)) return initialize(spec, units, width, rng, false, fansOf(spec, units, width, units));
  const out = new Float32Array(units * width);
  for (let g = 0; g < gates; g++) {
    const block = initialize(spec, units, units, rng);
    for (let i = 0; i < units; i++) out.set(block.subarray(i * units, (i + 1) * units), i * width + g * units);
  }
  return out;
}

/** Draws W, U, b (and a gru's b_hh), in that order; lstm's forgetBias is added to the f block of b. */
export function drawRecurrent(row: RowPlan, node: RecurrentNode, rng: Rng): RecurrentDraw {
  const { units, gates, features } = node;
  const width = gates * units;
  const weights = initialize(node.init.weights, features, width, rng, false, fansOf(node.init.weights, features, width, units));
  const recurrent = drawRecurrentKernel(node, rng);
  const biasFans = { fanIn: units, fanOut: units };
  const bias = node.useBias ? initialize(node.init.bias, 1, width, rng, true, biasFans) : null;
  if (bias && node.forgetBias !== 0) for (let j = units; j < 2 * units; j++) bias[j] = bias[j]! + node.forgetBias;
  const aux: AuxParameter[] = [{ layer: row.index, name: 'recurrent_kernel', values: recurrent }];
  if (node.kind === 'gru' && node.useBias) aux.push({ layer: row.index, name: 'recurrent_bias', values: initialize(node.init.bias, 1, width, rng, true, biasFans) });
  return { weights, bias, aux };
}
