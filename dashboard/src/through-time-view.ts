// The through-time card of an analysis with recurrent layers (result.throughTime): a layer × time heatmap of
// ‖∂L/∂h_t‖ with its scale, and per layer the fitted factor per step, memory horizon, verdict and gate statistics.
import type { ThroughTimeEntryBody } from '../../src/schemas/through-time.js';
import { NONFINITE_COLOR, ZERO_COLOR } from './colors.js';
import { h } from './dom.js';
import { fmt, fmtPct, num, numEl } from './format.js';
import { TimeHeatmap, logRange, type TimeRow } from './time-heatmap.js';

export type { ThroughTimeEntryBody };

/** The card and what to release when the view goes. */
export interface ThroughTimeCard {
  el: HTMLElement;
  destroy(): void;
}

const nonFiniteCount = (rows: readonly TimeRow[]): number =>
  rows.reduce((s, r) => s + r.values.filter((v) => { const n = num(v); return n !== null && !Number.isFinite(n); }).length, 0);
const zeroCount = (rows: readonly TimeRow[]): number => rows.reduce((s, r) => s + r.values.filter((v) => num(v) === 0).length, 0);

function legend(rows: readonly TimeRow[]): HTMLElement {
  const range = logRange(rows);
  const bad = nonFiniteCount(rows);
  const zeros = zeroCount(rows);
  return h('div', { class: 'marks-legend', id: 'through-time-legend', 'data-nonfinite': bad, 'data-zero': zeros },
    h('span', {}, range
      ? `colour: log₁₀ ‖∂L/∂h_t‖ from ${fmt(10 ** range[0], 3)} (dark) to ${fmt(10 ** range[1], 3)} (yellow), ${fmt(range[1] - range[0], 3)} decades`
      : 'no finite positive norm to scale'),
    bad ? h('span', { class: 'nonfinite' }, h('i', { class: 'swatch', style: `background:${NONFINITE_COLOR}` }), `NaN / ∞: ${bad} cell(s)`) : null,
    zeros ? h('span', {}, h('i', { class: 'swatch', style: `background:${ZERO_COLOR}` }), `exactly 0: ${zeros} cell(s)`) : null,
    h('span', { class: 'muted' }, 'the last step is on the right; hover a cell for its value'),
  );
}

function gateText(e: ThroughTimeEntryBody): HTMLElement | string {
  if (!e.gates) return '—';
  return h('span', {}, `${e.gates.name} `, numEl(e.gates.overallMean), h('span', { class: 'muted' }, ` (saturated ${fmtPct(e.gates.overallSaturated)})`));
}

function table(entries: readonly ThroughTimeEntryBody[]): HTMLTableElement {
  const heads: [string, string?][] = [
    ['layer'], ['kind'], ['steps'], ['verdict'],
    ['factor / step', 'e^slope of the least-squares fit of ln ‖∂L/∂h_t‖ against the steps back from the last'],
    ['slope / step', 'fitted ln norm per step back in time (r² in brackets)'],
    ['memory horizon', 'steps back until the norm falls below horizonThreshold × the last step\'s'],
    ['first / last step', 'relative[0]: ‖∂L/∂h₀‖ over ‖∂L/∂h_T−1‖'],
    ['σ₁ / spectral radius', 'of the recurrent block, against Pascanu et al.\'s bound 1/γ'],
    ['gate (mean)', 'lstm: forget gate, gru: update gate, over examples, units and steps'],
  ];
  const rows = entries.map((e) => h('tr', { 'data-layer': e.layer, 'data-path': e.path, 'data-verdict': e.verdict },
    h('td', {}, e.path), h('td', {}, e.kind), h('td', { class: 'n' }, String(e.steps)),
    h('td', {}, h('span', { class: `badge verdict-badge verdict-${e.verdict}` }, e.verdict.replace(/_/g, ' '))),
    h('td', { class: 'n' }, e.fit ? numEl(e.fit.factorPerStep, 4) : '—'),
    h('td', { class: 'n' }, e.fit ? h('span', {}, numEl(e.fit.slope, 4), h('span', { class: 'muted' }, ` (r² ${fmt(e.fit.r2, 3)})`)) : '—'),
    h('td', { class: 'n' }, e.memoryHorizon === null ? 'none' : `${e.memoryHorizon} steps`),
    h('td', { class: 'n' }, numEl(e.relative[0])),
    h('td', { class: 'n', title: `${e.recurrentMatrix.block}; 1/γ = ${fmt(e.recurrentMatrix.bound)}` },
      numEl(e.recurrentMatrix.largestSingularValue), ' / ', e.recurrentMatrix.spectralRadius === null ? '—' : numEl(e.recurrentMatrix.spectralRadius)),
    h('td', {}, gateText(e)),
  ));
  return h('table', { class: 'data', id: 'through-time-table' },
    h('thead', {}, h('tr', {}, heads.map(([t, title]) => h('th', { title }, t)))),
    h('tbody', {}, rows));
}

/** Rows of the heatmap: one per recurrent layer, in graph order, labelled by path. */
export const timeRows = (entries: readonly ThroughTimeEntryBody[]): TimeRow[] => entries.map((e) => ({ label: e.path, values: e.norms }));

export function throughTimeCard(entries: readonly ThroughTimeEntryBody[]): ThroughTimeCard {
  const rows = timeRows(entries);
  const heat = new TimeHeatmap(rows, 'through-time-heatmap');
  const el = h('section', { class: 'card', id: 'through-time', 'data-layers': entries.length },
    h('h3', {}, 'Gradient through time'),
    h('p', { class: 'small muted' }, 'Rows: the recurrent layers in graph order. Columns: time steps t = 0 … T−1. Colour: log₁₀ of ‖∂L/∂h_t‖ (the RMS over examples of the total derivative of the loss with respect to the state after step t). A gradient that vanishes into the past fades toward the left.'),
    heat.el,
    legend(rows),
    h('div', { class: 'table-wrap' }, table(entries)),
  );
  return { el, destroy: () => heat.destroy() };
}
