// A layer graph's rows in graph order, grouped by residual block: path, kind, output shape, and for convolutions
// the per-channel dead fraction. Shared by the analysis view and the training view (rows of a graph training).
import { h } from './dom.js';
import { fmtPct, numEl } from './format.js';
import { isObject } from './shapes.js';

/** One row as analyses (layers[]) and trainings (layers[]) of a layer graph return it. */
export interface GraphRow {
  index: number;
  path: string;
  kind: string;
  outputShape: number[];
  block: string | null;
  shortcut: boolean;
  channelDeadFraction?: unknown;
}

/** The rows when they carry the graph fields (a layer graph), else null (the depth/width shorthand). */
export function graphRows(layers: unknown): GraphRow[] | null {
  if (!Array.isArray(layers) || layers.length === 0) return null;
  const rows = layers.filter(isObject);
  if (!rows.every((l) => typeof l.path === 'string' && typeof l.kind === 'string' && Array.isArray(l.outputShape))) return null;
  return rows.map((l) => ({
    index: typeof l.index === 'number' ? l.index : 0,
    path: l.path as string,
    kind: l.kind as string,
    outputShape: (l.outputShape as unknown[]).filter((d): d is number => typeof d === 'number'),
    block: typeof l.block === 'string' ? l.block : null,
    shortcut: l.shortcut === true,
    ...('channelDeadFraction' in l ? { channelDeadFraction: l.channelDeadFraction } : {}),
  }));
}

export const shapeText = (shape: number[]): string => shape.join('×');

/** Consecutive rows of the same block (null: outside any block) as one group, in graph order. */
function groups(rows: GraphRow[]): { block: string | null; rows: GraphRow[] }[] {
  const out: { block: string | null; rows: GraphRow[] }[] = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last && last.block === r.block) last.rows.push(r);
    else out.push({ block: r.block, rows: [r] });
  }
  return out;
}

/**
 * The graph card: every row in order, a residual block's rows boxed under its path. `extra` adds one
 * value per row (a training: the last record's weight-gradient norm).
 */
export function graphCard(rows: GraphRow[], id: string, extra?: { head: string; value(row: GraphRow): unknown }): HTMLElement {
  const rowEl = (r: GraphRow): HTMLElement => h('div', {
    class: `graph-row${r.shortcut ? ' graph-shortcut' : ''}`, 'data-index': r.index, 'data-path': r.path, 'data-kind': r.kind,
    'data-shape': shapeText(r.outputShape), 'data-block': r.block ?? '',
  },
  h('span', { class: 'graph-path' }, r.path + (r.shortcut ? ' (shortcut)' : '')),
  h('span', { class: `badge graph-kind kind-${r.kind}` }, r.kind),
  h('span', { class: 'graph-shape' }, shapeText(r.outputShape)),
  r.kind === 'conv2d' && r.channelDeadFraction !== undefined
    ? h('span', { class: 'graph-dead', 'data-channel-dead': String(r.channelDeadFraction), title: 'fraction of channels that pass no gradient at any position of any example' }, `dead channels ${fmtPct(r.channelDeadFraction)}`)
    : null,
  extra ? h('span', { class: 'graph-extra' }, `${extra.head} `, numEl(extra.value(r))) : null);
  const gs = groups(rows);
  return h('section', { class: 'card', id, 'data-rows': rows.length, 'data-blocks': gs.filter((g) => g.block !== null).length },
    h('h3', {}, 'Layer graph'),
    h('p', { class: 'small muted' }, 'The dense and conv2d rows in graph order with their output shapes; a residual block\'s rows (its branch and projection shortcut) are boxed under its path.'),
    h('div', { class: 'graph-rows' }, gs.flatMap((g) => (g.block === null
      ? g.rows.map(rowEl)
      : [h('div', { class: 'graph-block', 'data-block': g.block }, h('div', { class: 'graph-block-head' }, `block ${g.block}`), g.rows.map(rowEl))]))),
  );
}
