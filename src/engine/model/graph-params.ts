// A layer graph's parameters drawn from the seed: every dense/conv2d row's weights and bias in graph order
// (conv kernels [kh][kw][c_in][c_out], the tfjs layout, with the conv fans), and batch/layer norm gamma and beta.
import { Rng, deriveSeed } from '../common/random.js';
import { initialize, orthogonal, type InitializerSpec } from './initializers.js';
import type { NormalizedGraph, RowPlan } from '../spec/graph-types.js';
import { fixupBranchScale, type AuxParameter } from './network.js';
import { drawRecurrent } from './recurrent-params.js';
import { isRecurrentNode } from '../spec/recurrent-types.js';
import { drawSequenceBias, drawSequenceWeights } from './attention-forward.js';

export interface GraphParameters {
  rows: RowPlan[];
  /** Per row: dense [inputs][units] or conv2d [kh][kw][c_in][c_out], row-major. */
  weights: Float32Array[];
  biases: (Float32Array | null)[];
  /**
   * gamma and beta of every batch_norm/layer_norm (one entry per channel), then the residual variants' scalars
   * (gate; fixup_bias_in, fixup_bias_act per branch row, fixup_scale), `layer` the row that reports them.
   */
  aux: AuxParameter[];
  /** Per aux entry the path it belongs to: the norm layer, the block (gate, fixup_scale) or the row (Fixup's biases). */
  auxPaths: string[];
}

/**
 * Xiao et al. 2018's delta-orthogonal kernel: an orthogonal c_in × c_out matrix (orthonormal rows or
 * columns, whichever side is shorter) at the centre tap, zeros at every other tap.
 */
export function deltaOrthogonal(kernel: number | [number, number], cin: number, cout: number, gain: number, rng: Rng): Float32Array {
  const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
  const out = new Float32Array(kh * kw * cin * cout);
  const m = orthogonal(cin, cout, gain, rng);
  out.set(m, (Math.floor(kh / 2) * kw + Math.floor(kw / 2)) * cin * cout);
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
  const recurrentAux: AuxParameter[] = [];
  for (const row of graph.rows) {
    const node = row.node;
    if (isRecurrentNode(node)) {
      const d = drawRecurrent(row, node, rng);
      weights.push(d.weights);
      biases.push(d.bias);
      recurrentAux.push(...d.aux);
      continue;
    }
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
  // Variants rewrite the draws above rather than drawing differently: every plain graph keeps its weights.
  applyFixup(graph, weights);
  for (const b of graph.blocks) {
    const scale = Float32Array.of(blockScale(graph, b.path));
    if (b.variant === 'fixup') {
      for (const r of b.branchRows) {
        aux.push({ layer: r, name: 'fixup_bias_in', values: Float32Array.of(0) }, { layer: r, name: 'fixup_bias_act', values: Float32Array.of(0) });
        auxPaths.push(graph.rows[r]!.node.path, graph.rows[r]!.node.path);
      }
    }
    aux.push({ layer: b.row, name: b.variant === 'fixup' ? 'fixup_scale' : 'gate', values: scale });
    auxPaths.push(b.path);
  }
  for (const a of recurrentAux) {
    aux.push(a);
    auxPaths.push(graph.rows[a.layer]!.node.path);
  }
  return { rows: graph.rows, weights, biases, aux, auxPaths };
}

/** The initial gate or multiplier of a block: its normalised scale. */
function blockScale(graph: NormalizedGraph, path: string): number {
  for (const node of graph.layers) if (node.kind === 'residual' && node.path === path) return node.scale;
  throw new RangeError(`no residual block ${path}`);
}

/**
 * Zhang et al. 2019 on a graph: in every fixup block the branch's dense/conv2d rows but the last are scaled by
 * L^(−1/(2m−2)) (L fixup blocks, m rows in the branch), the last is zeroed, and so is the head (the last row).
 */
function applyFixup(graph: NormalizedGraph, weights: Float32Array[]): void {
  const fixup = graph.blocks.filter((b) => b.variant === 'fixup');
  if (fixup.length === 0) return;
  for (const b of fixup) {
    const factor = fixupBranchScale(fixup.length, b.branchRows.length);
    b.branchRows.forEach((r, i) => {
      const w = weights[r]!;
      if (i === b.branchRows.length - 1) w.fill(0);
      else for (let k = 0; k < w.length; k++) w[k]! *= factor;
    });
  }
  weights[weights.length - 1]!.fill(0);
}
