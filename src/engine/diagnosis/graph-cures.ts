// What-if cures for a layer graph, each a change to its request-form layers: the variance-preserving
// initialisation for its activation, residual shortcuts added (or removed) and batch normalisation added.
import type { LayerInput, PlainLayerInput } from '../../schemas/layers.js';
import type { NormalizedSpec } from '../spec/normalize.js';
import { rowActivations } from '../measure/graph-analysis.js';
import { normalizeInitializer, type InitializerInput } from '../model/initializers.js';
import type { ActivationSpec } from '../model/activations.js';

/** A what-if cure (the shape of what-if.ts's Cure, which passes its variance-preserving rule in). */
export interface GraphCure {
  id: string;
  kind: 'init' | 'residual' | 'normalization';
  description: string;
  change: Record<string, unknown>;
}

export type VariancePreserving = (act: ActivationSpec, sigmaB2: number) => { init: InitializerInput; sigmaW2: number; why: string } | null;

type Segment = PlainLayerInput[];

/** A layer's activation name as written (a string or { name }). */
const actName = (a: unknown): string | undefined => (typeof a === 'string' ? a : (a as { name?: string } | undefined)?.name);

/** The layers without their own weight initialisers, so that network.init.weights decides. */
function withoutWeightInits(layers: LayerInput[]): LayerInput[] {
  const strip = <T extends { init?: { weights?: unknown; bias?: unknown } }>(l: T): T => {
    if (!l.init?.weights) return l;
    const { weights: _w, ...rest } = l.init;
    void _w;
    return { ...l, init: rest } as T;
  };
  return layers.map((l) => (l.kind === 'residual' ? { ...strip(l), layers: l.layers.map(strip) } : strip(l)));
}

/**
 * Top-level runs that keep their input's shape — a stride-1 "same" conv2d with as many filters as input
 * channels (or a dense layer as wide as its input) with the batch_norm/activation/dropout layers after it —
 * paired into residual blocks, the second run's last activation moved after the addition (He et al. 2016).
 */
function addShortcuts(spec: NormalizedSpec, layers: LayerInput[]): LayerInput[] | null {
  const graph = spec.network.graph!;
  const out: LayerInput[] = [];
  let pending: Segment | null = null;
  let blocks = 0;
  let i = 0;
  while (i < layers.length) {
    const raw = layers[i]!;
    const node = graph.layers[i]!;
    const keeps = (raw.kind === 'conv2d' && node.kind === 'conv2d' && node.stride === 1 && node.padding === 'same' && node.dilation === 1
      && node.filters === node.inputShape[2]) || (raw.kind === 'dense' && node.kind === 'dense' && node.units === node.inputShape[0] && i < layers.length - 1);
    if (!keeps) {
      if (pending) out.push(...pending);
      pending = null;
      out.push(raw);
      i++;
      continue;
    }
    const seg: Segment = [raw as PlainLayerInput];
    i++;
    while (i < layers.length && ['batch_norm', 'activation', 'dropout', 'layer_norm'].includes(layers[i]!.kind)) seg.push(layers[i++] as PlainLayerInput);
    if (!pending) {
      pending = seg;
      continue;
    }
    const branch = [...pending, ...seg];
    const last = branch[branch.length - 1]!;
    const activation = last.activation;
    branch[branch.length - 1] = { ...last, activation: undefined } as PlainLayerInput;
    out.push({ kind: 'residual', name: `whatif_block${++blocks}`, layers: branch.map((l) => JSON.parse(JSON.stringify(l)) as PlainLayerInput), shortcut: 'identity', ...(activation !== undefined ? { activation } : {}) });
    pending = null;
  }
  if (pending) out.push(...pending);
  return blocks > 0 ? out : null;
}

/** Every residual block unwrapped: its branch in place, its activation after it (shapes are the branch's). */
function removeShortcuts(spec: NormalizedSpec, layers: LayerInput[]): LayerInput[] {
  const nodes = spec.network.graph!.layers;
  return layers.flatMap((l, i): LayerInput[] => {
    const node = nodes[i]!;
    if (l.kind !== 'residual' || node.kind !== 'residual') return [l];
    // The layers keep their paths: the block's path, a dot, their name (given or default).
    const prefix = node.path;
    const branch = l.layers.map((b, j) => ({ ...b, name: `${prefix}.${node.layers[j]!.name}` }) as PlainLayerInput);
    return l.activation !== undefined ? [...branch, { kind: 'activation', name: `${prefix}.act`, activation: l.activation }] : branch;
  });
}

/** A batch_norm after every dense/conv2d layer but the head, taking over that layer's activation. */
function addBatchNorm(layers: LayerInput[]): LayerInput[] {
  const insert = (list: PlainLayerInput[], isTop: boolean): PlainLayerInput[] => list.flatMap((l, j): PlainLayerInput[] => {
    if ((l.kind !== 'conv2d' && l.kind !== 'dense') || (isTop && j === list.length - 1)) return [l];
    const { activation, ...rest } = l;
    return [rest as PlainLayerInput, activation !== undefined ? { kind: 'batch_norm', activation } : { kind: 'batch_norm' }];
  });
  const top: LayerInput[] = [];
  layers.forEach((l, j) => {
    if (l.kind === 'residual') top.push({ ...l, layers: insert(l.layers, false) });
    else top.push(...(j === layers.length - 1 ? [l] : insert([l], false)));
  });
  return top;
}

/** The cures that apply to a layer graph (request-form changes) and those that do not. */
export function graphCures(spec: NormalizedSpec, layers: LayerInput[], variancePreservingInit: VariancePreserving): { cures: GraphCure[]; skipped: { id: string; reason: string }[] } {
  const graph = spec.network.graph!;
  const cures: GraphCure[] = [];
  const skipped: { id: string; reason: string }[] = [];
  const acts = rowActivations(graph).slice(0, -1).filter((a) => a.name !== 'linear');
  const act = acts.length > 0 && acts.every((a) => a.name === acts[0]!.name && a.alpha === acts[0]!.alpha) ? acts[0]! : null;
  if (!act) skipped.push({ id: 'init:variance_preserving', reason: 'the rows mix activations (or have none): no single variance-preserving initialiser' });
  else {
    const vp = variancePreservingInit(act, 0);
    const current = graph.rows.every((r) => JSON.stringify(r.node.init.weights) === JSON.stringify(vp ? normalizeInitializer(vp.init, 'w') : null));
    if (!vp) skipped.push({ id: 'init:variance_preserving', reason: `no σ_w² puts ${act.name} at χ₁ = 1` });
    else if (current) skipped.push({ id: 'init:variance_preserving', reason: `every layer already has the variance-preserving initialiser for ${act.name}` });
    else {
      cures.push({
        id: 'init:variance_preserving', kind: 'init', description: `variance-preserving initialisation for ${act.name} with the layers' own fans (k²·c_in for convolutions): ${vp.why}`,
        change: { 'network.init.weights': vp.init, 'network.layers': withoutWeightInits(layers) },
      });
    }
  }
  if (graph.layers.some((l) => l.kind === 'residual')) {
    cures.push({ id: 'residual:remove', kind: 'residual', description: 'every residual block unwrapped: the same layers without shortcuts (the plain counterpart)', change: { 'network.layers': removeShortcuts(spec, layers) } });
  } else {
    const added = addShortcuts(spec, layers);
    if (added) cures.push({ id: 'residual', kind: 'residual', description: 'identity shortcuts around consecutive pairs of shape-keeping layers, the activation after the addition (He et al. 2016)', change: { 'network.layers': added } });
    else skipped.push({ id: 'residual', reason: 'no two consecutive layers keep their input\'s shape: nothing to wrap in an identity shortcut' });
  }
  if (graph.norms.length > 0) skipped.push({ id: 'normalization:batch', reason: 'the graph already has normalisation layers' });
  else cures.push({ id: 'normalization:batch', kind: 'normalization', description: 'batch normalisation after every dense/conv2d layer but the head, before its activation', change: { 'network.layers': addBatchNorm(layers) } });
  return { cures, skipped };
}
