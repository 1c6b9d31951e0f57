// Sequence layers in the normalised spec (issue 14): transformer_block written out as residual blocks and
// layer norms (as presets are), and the embedding, positional encoding and attention nodes with their
// shapes checked before anything runs (a 400 naming the layer's path and the shapes).
import type { LayerInput, NetworkLayerInput, PlainLayerInput, TransformerBlockInput } from '../../schemas/layers.js';
import { SpecError } from '../common/errors.js';
import type { LayerInits, NormalizedGraph } from './graph-types.js';
import type { AttentionNode, EmbeddingNode, PositionalNode, TransformerBlockPlan } from './transformer-types.js';
import type { ActivationSpec } from '../model/activations.js';

/** A transformer_block's name and norm, kept from the expansion to find its rows after normalisation. */
export interface WrittenBlock {
  path: string;
  norm: 'pre' | 'post';
}

/**
 * One transformer_block as layers. post (Vaswani et al. 2017): residual(attention) → layer_norm → residual(dense
 * ffDim, dense dim) → layer_norm. pre (Xiong et al. 2020): residual(layer_norm, attention) → residual(layer_norm,
 * dense, dense): the norm is inside each branch and the shortcut carries x untouched.
 */
function writeOut(b: TransformerBlockInput, name: string): LayerInput[] {
  const norm = b.norm ?? 'post';
  const drop: PlainLayerInput[] = b.dropout ? [{ kind: 'dropout', name: 'dropout', rate: b.dropout }] : [];
  const init = b.init ? { init: b.init } : {};
  const attention: PlainLayerInput = { kind: 'attention', name: 'attention', heads: b.heads, ...(b.dim % b.heads === 0 ? { keyDim: b.dim / b.heads } : {}), causal: b.causal ?? false, ...init };
  const ff: PlainLayerInput[] = [
    { kind: 'dense', name: 'dense1', units: b.ffDim, activation: b.ffActivation ?? 'relu', ...init },
    { kind: 'dense', name: 'dense2', units: b.dim, ...init },
  ];
  const ln: PlainLayerInput = { kind: 'layer_norm', name: 'ln' };
  if (norm === 'pre') {
    return [
      { kind: 'residual', name: `${name}.attn`, layers: [ln, attention, ...drop] },
      { kind: 'residual', name: `${name}.ff`, layers: [ln, ...ff, ...drop] },
    ];
  }
  return [
    { kind: 'residual', name: `${name}.attn`, layers: [attention, ...drop] },
    { kind: 'layer_norm', name: `${name}.ln1` },
    { kind: 'residual', name: `${name}.ff`, layers: [...ff, ...drop] },
    { kind: 'layer_norm', name: `${name}.ln2` },
  ];
}

/** network.layers with every transformer_block written out; the blocks' paths (default transformer1, transformer2, …). */
export function expandTransformerBlocks(layers: readonly NetworkLayerInput[]): { layers: LayerInput[]; blocks: WrittenBlock[] } {
  const blocks: WrittenBlock[] = [];
  const out = layers.flatMap((l, i): LayerInput[] => {
    if (l.kind !== 'transformer_block') return [l];
    if (l.dim % l.heads !== 0) throw new SpecError(`network.layers[${i}].heads`, `network.layers[${i}].heads: ${l.heads} heads do not divide dim ${l.dim} (keyDim = dim/heads)`);
    const name = l.name ?? `transformer${blocks.length + 1}`;
    blocks.push({ path: name, norm: l.norm ?? 'post' });
    return writeOut(l, name);
  });
  return { layers: out, blocks };
}

/** The rows of each written-out block: its attention row and its feed-forward denses, found by path. */
export function transformerPlans(blocks: WrittenBlock[], graph: NormalizedGraph): TransformerBlockPlan[] {
  return blocks.map((b) => {
    const inBlock = graph.rows.filter((r) => r.node.path.startsWith(`${b.path}.`));
    return {
      path: b.path, norm: b.norm,
      attentionRow: inBlock.find((r) => r.node.kind === 'attention')!.index,
      feedForwardRows: inBlock.filter((r) => r.node.kind === 'dense').map((r) => r.index),
    };
  });
}

type SequenceInput = Extract<PlainLayerInput, { kind: 'embedding' | 'positional_encoding' | 'attention' }>;

/** What a sequence node needs of GraphBuilder (spec/graph-normalize.ts). */
export interface SequenceBuilder {
  fail(field: string, path: string, message: string): never;
  limit(field: string, path: string, what: string, value: number, max: number): void;
  inits(raw: { init?: PlainLayerInput['init'] }, f: string): LayerInits;
  useBias: boolean;
}

const shapeText = (s: number[]): string => `[${s.join(', ')}]`;

/** Most tokens in a vocabulary (the one-hot product's width) and steps in a sequence (attention is T × T per head). */
export const SEQUENCE_LIMITS = { maxVocab: 50_000, maxSteps: 4096, maxHeads: 64 };

/** An embedding, positional encoding or attention node with its output shape; throws SpecError on a shape it cannot read. */
export function sequenceNode(raw: SequenceInput, base: { path: string; name: string; activation: ActivationSpec; inputShape: number[] }, f: string, b: SequenceBuilder, maxWidth: number): EmbeddingNode | PositionalNode | AttentionNode {
  const shape = base.inputShape, path = base.path;
  switch (raw.kind) {
    case 'embedding': {
      if (shape.length !== 1) b.fail(f, path, `embedding reads a [time] sequence of token ids but gets ${shapeText(shape)}`);
      b.limit(f, path, 'vocab', raw.vocab, SEQUENCE_LIMITS.maxVocab);
      b.limit(f, path, 'dim', raw.dim, maxWidth);
      b.limit(f, path, 'time', shape[0]!, SEQUENCE_LIMITS.maxSteps);
      return { ...base, kind: 'embedding', vocab: raw.vocab, dim: raw.dim, units: raw.dim, useBias: false, init: b.inits(raw, f), outputShape: [shape[0]!, raw.dim] };
    }
    case 'positional_encoding':
      if (shape.length !== 2) b.fail(f, path, `positional_encoding reads a [time, features] sequence but gets ${shapeText(shape)}`);
      return { ...base, kind: 'positional_encoding', encoding: raw.encoding ?? 'sinusoidal', outputShape: [...shape] };
    case 'attention': {
      if (shape.length !== 2) b.fail(f, path, `attention reads a [time, features] sequence but gets ${shapeText(shape)}; put an embedding (token ids) or use network.input [time, features]`);
      const [T, D] = shape as [number, number];
      b.limit(f, path, 'time', T, SEQUENCE_LIMITS.maxSteps);
      b.limit(f, path, 'heads', raw.heads, SEQUENCE_LIMITS.maxHeads);
      if (raw.keyDim === undefined && D % raw.heads !== 0) b.fail(`${f}.heads`, path, `${raw.heads} heads do not divide the input's width ${D} (input ${shapeText(shape)}); give keyDim`);
      const keyDim = raw.keyDim ?? D / raw.heads;
      b.limit(f, path, 'keyDim', raw.heads * keyDim, maxWidth);
      return {
        ...base, kind: 'attention', heads: raw.heads, keyDim, causal: raw.causal ?? false, units: D,
        useBias: raw.useBias ?? b.useBias, init: b.inits(raw, f), outputShape: [T, D],
      };
    }
  }
}

/** Entries of an attention or embedding row's weight tensor and bias, its fans, and its forward multiply-add FLOPs per example. */
export function sequenceRowCounts(node: EmbeddingNode | AttentionNode): { weightCount: number; biasCount: number; fanIn: number; fanOut: number; flops: number } {
  if (node.kind === 'embedding') {
    const T = node.inputShape[0]!;
    // one_hot(ids)·E: a [T, V]·[V, D] product per example.
    return { weightCount: node.vocab * node.dim, biasCount: 0, fanIn: node.vocab, fanOut: node.dim, flops: 2 * T * node.vocab * node.dim };
  }
  const [T, D] = node.inputShape as [number, number];
  const hk = node.heads * node.keyDim;
  // Four projections, then QKᵀ and PV: 2·T²·H·k multiply-adds each.
  return { weightCount: 4 * D * hk, biasCount: node.useBias ? 3 * hk + D : 0, fanIn: D, fanOut: hk, flops: 2 * 4 * T * D * hk + 2 * 2 * T * T * hk };
}

/** An embedding reads integer ids: data normalised to z-scores or [0, 1] would embed as other tokens. */
export function checkTokenInput(graph: NormalizedGraph, normalization: string): void {
  const embedding = graph.rows.find((r) => r.node.kind === 'embedding');
  if (embedding && normalization !== 'none') {
    throw new SpecError('data.normalize', `data.normalize is ${normalization} but ${embedding.node.path} (embedding) reads integer token ids: use data.normalize "none" (the default for tokens and inline data)`);
  }
}
