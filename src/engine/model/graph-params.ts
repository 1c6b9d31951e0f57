// A layer graph's parameters drawn from the seed: every dense/conv2d row's weights and bias in graph order
// (conv kernels [kh][kw][c_in][c_out], the tfjs layout, with the conv fans), and batch/layer norm gamma and beta.
import { Rng, deriveSeed } from '../common/random.js';
import { initialize, orthogonal, type InitializerSpec } from './initializers.js';
import type { NormalizedGraph, RowPlan } from '../spec/graph-types.js';
import type { AuxParameter } from './network.js';
import { drawSequenceBias, drawSequenceWeights } from './attention-forward.js';

export interface GraphParameters {
  rows: RowPlan[];
  /** Per row: dense [inputs][units] or conv2d [kh][kw][c_in][c_out], row-major. */
  weights: Float32Array[];
  biases: (Float32Array | null)[];
  /** gamma and beta of every batch_norm/layer_norm (one entry per channel), `layer` the row that reports them. */
  aux: AuxParameter[];
  /** Path of the norm layer of each aux entry (pairs: gamma then beta). */
  auxPaths: string[];
}

/**
 * Xiao et al. 2018's delta-orthogonal kernel: an orthogonal c_in × c_out matrix (orthonormal rows or
 * columns, whichever side is shorter) at the centre tap, zeros at every other tap.
 */
export function deltaOrthogonal(kernel: number, cin: number, cout: number, gain: number, rng: Rng): Float32Array {
  const out = new Float32Array(kernel * kernel * cin * cout);
  const centre = Math.floor(kernel / 2);
  const m = orthogonal(cin, cout, gain, rng);
  out.set(m, (centre * kernel + centre) * cin * cout);
  return out;
}

function drawWeights(row: RowPlan, init: InitializerSpec, rng: Rng): Float32Array {
  const node = row.node;
  if (node.kind === 'embedding' || node.kind === 'attention') return drawSequenceWeights(node, init, rng);
  const cin = node.inputShape[node.inputShape.length - 1]!;
  if (node.kind === 'conv2d' && init.name === 'delta_orthogonal') return deltaOrthogonal(node.kernel, cin, node.filters, init.gain!, rng);
  const units = node.kind === 'conv2d' ? node.filters : node.units;
  // [kh·kw·c_in][c_out] row-major is exactly the [kh][kw][c_in][c_out] kernel.
  return initialize(init, row.fanIn, units, rng, false, { fanIn: row.fanIn, fanOut: row.fanOut });
}

/** Draws every row's weights then its bias, row by row in graph order, from the spec's seed. */
export function initGraphParameters(graph: NormalizedGraph, seed: number): GraphParameters {
  const rng = new Rng(deriveSeed(seed, 'weights'));
  const weights: Float32Array[] = [];
  const biases: (Float32Array | null)[] = [];
  for (const row of graph.rows) {
    const node = row.node;
    weights.push(drawWeights(row, node.init.weights, rng));
    const units = node.kind === 'conv2d' ? node.filters : node.units;
    if (node.kind === 'embedding' || node.kind === 'attention') biases.push(drawSequenceBias(node, node.init.bias, rng));
    else biases.push(node.useBias ? initialize(node.init.bias, 1, units, rng, true, { fanIn: row.fanIn, fanOut: row.fanOut }) : null);
  }
  const aux: AuxParameter[] = [];
  const auxPaths: string[] = [];
  for (const n of graph.norms) {
    aux.push({ layer: n.row, name: 'gamma', values: new Float32Array(n.channels).fill(1) }, { layer: n.row, name: 'beta', values: new Float32Array(n.channels) });
    auxPaths.push(n.path, n.path);
  }
  return { rows: graph.rows, weights, biases, aux, auxPaths };
}
