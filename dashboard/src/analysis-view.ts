// One analysis: verdict and reasons, per-layer log bars with the mean-field line, layer marks, and the numbers table.
import { BarsChart, COLORS, type LayerMarks } from './bars-chart.js';
import { h, fill } from './dom.js';
import { fmt, fmtPct, logValue, num, numEl } from './format.js';
import { scalarList } from './generic.js';
import { setPath } from './presets.js';
import { describeSpec, isObject, type AnalysisResponse, type AnalysisResult, type LayerResult } from './shapes.js';
import { graphCard, graphRows, shapeText } from './graph-view.js';
import { throughTimeCard, type ThroughTimeCard } from './through-time-view.js';

/** "Most units" is the issue's wording for dead; used only when the server sends no per-layer flags. */
const FALLBACK_FRACTION = 0.5;

/** Per-layer flags as a set of lower-case names, whether the server sends ["dead", ...] or { dead: true, ... }. */
export function layerFlags(layer: LayerResult): Set<string> {
  const f = layer.flags;
  const out = new Set<string>();
  if (Array.isArray(f)) for (const x of f) {
    if (typeof x === 'string') out.add(x.toLowerCase());
    else if (isObject(x) && typeof x.kind === 'string') out.add(x.kind.toLowerCase());
    else if (isObject(x) && typeof x.flag === 'string') out.add(x.flag.toLowerCase());
  }
  else if (isObject(f)) for (const [k, v] of Object.entries(f)) if (v === true || (typeof v === 'number' && v > 0) || (typeof v === 'string' && v)) out.add(k.toLowerCase());
  return out;
}

export function layerMarks(result: AnalysisResult): LayerMarks[] {
  const serverFlags = result.layers.some((l) => l.flags !== undefined);
  return result.layers.map((l) => {
    const f = layerFlags(l);
    if (serverFlags) {
      return {
        dead: f.has('dead'),
        saturated: f.has('saturated'),
        onset: f.has('onset_vanishing') || f.has('onset_exploding'),
        zeroByDesign: f.has('zero_by_design'),
      };
    }
    return {
      dead: (num(l.deadFraction) ?? 0) >= FALLBACK_FRACTION,
      saturated: (num(l.saturatedFraction) ?? 0) >= FALLBACK_FRACTION,
      onset: false,
      zeroByDesign: false,
    };
  });
}

/**
 * The mean-field prediction of each layer's backprop norm: theory predicts it relative to the output
 * layer (the rate of decay, not the scale), so it is anchored at the measured output layer.
 */
export function theoryLine(result: AnalysisResult): (number | null)[] | null {
  const t = result.theory;
  if (!isObject(t) || t.applicable === false || !Array.isArray(t.layers) || t.layers.length !== result.layers.length) return null;
  const last = logValue(result.layers[result.layers.length - 1]?.backpropNorm);
  if (last === null) return null;
  const line = t.layers.map((x) => {
    const rel = isObject(x) ? num(x.predictedBackpropRelative) : null;
    return rel === null ? null : logValue(rel * last);
  });
  return line.some((v) => v !== null) ? line : null;
}

/** Per-layer theory rows by index, for the table. */
function theoryRows(result: AnalysisResult): Map<number, Record<string, unknown>> {
  const t = result.theory;
  const rows = new Map<number, Record<string, unknown>>();
  if (isObject(t) && Array.isArray(t.layers)) for (const x of t.layers) if (isObject(x) && typeof x.index === 'number') rows.set(x.index, x);
  return rows;
}

function verdictBadge(result: AnalysisResult): HTMLElement {
  const s = result.summary;
  const verdict = typeof s.verdict === 'string' ? s.verdict : null;
  const onset = typeof s.onsetLayer === 'number' ? s.onsetLayer : null;
  return h('div', { id: 'verdict', class: `verdict verdict-${verdict ?? 'none'}`, 'data-verdict': verdict ?? '', 'data-onset': onset ?? '' },
    verdict ? verdict.replace(/_/g, ' ') : 'no verdict',
    onset !== null && (verdict === 'vanishing' || verdict === 'exploding') ? h('span', { class: 'onset' }, ` from layer ${onset}`) : null,
  );
}

function reasonsBlock(result: AnalysisResult): HTMLElement {
  const s = result.summary;
  const reasons = Array.isArray(s.reasons) ? s.reasons.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))) : null;
  if (!reasons) return h('p', { class: 'muted small' }, 'This server sends no verdict: read the ratio and slope below.');
  return h('section', { class: 'card reasons-card' }, h('ul', { class: 'reasons', id: 'reasons' }, reasons.map((r) => h('li', {}, r))));
}

function stat(label: string, value: Node | string, title?: string): HTMLElement {
  return h('div', { class: 'stat', title }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
}

function summaryStats(res: AnalysisResponse): HTMLElement {
  const s = res.result.summary;
  const bp = s.backpropLogSlope;
  return h('div', { class: 'stats' },
    stat('first / last layer ‖dL/dW‖', numEl(s.firstToLastRatio), 'weightGradNorm of layer 0 divided by that of the output layer'),
    stat('first / last backprop', numEl(s.backpropFirstToLastRatio)),
    stat('backprop factor per layer', bp ? h('span', {}, numEl(bp.factorPerLayer), h('span', { class: 'muted' }, ` (r² ${fmt(bp.r2, 3)})`)) : '—',
      'exp(fitted slope of ln backprop norm per layer, output → input)'),
    stat('loss', numEl(res.result.loss)),
    stat('non-finite values', h('span', { class: res.result.nonFinite.count > 0 ? 'nonfinite' : '' }, String(res.result.nonFinite.count)),
      res.result.nonFinite.paths.slice(0, 10).join('\n')),
    stat('computed by', `${res.environment?.backend ?? '?'}${res.timings ? ` in ${fmt(res.timings.totalMs, 3)} ms` : ''}`),
  );
}

interface Column {
  head: string;
  title?: string;
  numeric?: boolean;
  cell(l: LayerResult, i: number): Node | string;
}

/** One column list for header and cells, so they cannot drift apart when optional columns come and go. */
function layerTable(result: AnalysisResult, marks: LayerMarks[], theory: (number | null)[] | null): HTMLTableElement {
  const last = num(result.layers[result.layers.length - 1]?.weightGradNorm);
  const trows = theoryRows(result);
  const flagsOf = (l: LayerResult, i: number): string[] => {
    const flags = [...layerFlags(l)];
    if (l.flags === undefined) {
      if (marks[i]!.dead) flags.push('dead');
      if (marks[i]!.saturated) flags.push('saturated');
    }
    return flags;
  };
  // A layer graph's rows carry kind, output shape and block: columns of their own (the shorthand's table is unchanged).
  const graph = graphRows(result.layers) !== null;
  const columns: (Column | null)[] = [
    { head: '#', numeric: true, cell: (l) => String(l.index) },
    { head: 'layer', cell: (l) => l.name },
    graph ? { head: 'kind', cell: (l) => String(l.kind) } : null,
    graph ? { head: 'output', title: 'output shape of one example ([h, w, c] or [units])', cell: (l) => (Array.isArray(l.outputShape) ? shapeText(l.outputShape as number[]) : '—') } : null,
    graph ? { head: 'block', cell: (l) => (typeof l.block === 'string' ? l.block : '—') + (l.shortcut === true ? ' (shortcut)' : '') } : null,
    graph ? { head: 'dead channels', title: 'conv2d: fraction of channels passing no gradient anywhere', numeric: true, cell: (l) => (l.kind === 'conv2d' ? fmtPct(l.channelDeadFraction) : '—') } : null,
    { head: 'units', numeric: true, cell: (l) => `${l.inputUnits}→${l.units}` },
    { head: 'activation', cell: (l) => l.activation + (l.residualBlock !== null && l.residualBlock !== undefined ? ` · block ${l.residualBlock}` : '') },
    { head: '‖dL/dW‖', title: 'Frobenius norm of dLoss/dW', numeric: true, cell: (l) => numEl(l.weightGradNorm) },
    { head: 'backprop', title: 'RMS over examples of the per-example gradient w.r.t. the pre-activation', numeric: true, cell: (l) => numEl(l.backpropNorm) },
    theory ? { head: 'predicted', title: 'mean-field prediction of the backprop norm, anchored at the output layer', numeric: true, cell: (_l, i) => (theory[i] === null || theory[i] === undefined ? '—' : numEl(theory[i])) } : null,
    theory ? { head: 'log₁₀ diff', title: 'log10(measured / predicted backprop)', numeric: true, cell: (l) => { const t = trows.get(l.index); return t ? numEl(t.log10Difference, 2) : '—'; } } : null,
    { head: 'vs last', title: '‖dL/dW‖ relative to the output layer', numeric: true, cell: (l) => { const w = num(l.weightGradNorm); return w !== null && last !== null && last !== 0 ? numEl(w / last) : '—'; } },
    { head: 'grad / weight', numeric: true, cell: (l) => numEl(l.gradToWeightRatio) },
    { head: 'pre-act RMS', numeric: true, cell: (l) => numEl(l.preActivationRms) },
    { head: 'dead', numeric: true, cell: (l) => fmtPct(l.deadFraction) },
    { head: 'saturated', numeric: true, cell: (l) => fmtPct(l.saturatedFraction) },
    { head: 'flags', cell: (l, i) => flagsOf(l, i).map((f) => f.replace(/_/g, ' ')).join(', ') },
  ];
  const cols = columns.filter((c): c is Column => c !== null);
  const rows = result.layers.map((l, i) => {
    const m = marks[i]!;
    const cls = [m.dead ? 'row-dead' : '', m.saturated ? 'row-saturated' : '', m.onset ? 'row-onset' : '', m.zeroByDesign ? 'row-zero' : ''].join(' ').trim();
    return h('tr', { 'data-index': l.index, 'data-flags': flagsOf(l, i).join(' '), class: cls || undefined },
      cols.map((c) => h('td', { class: c.numeric ? 'n' : undefined }, c.cell(l, i))));
  });
  return h('table', { class: 'data layers', id: 'layer-table', 'data-layers': result.layers.length },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { title: c.title, class: c.numeric ? 'n' : undefined }, c.head)))),
    h('tbody', {}, rows),
  );
}

/** Runs one what-if row's change on the analysed spec (the page shows it as an analysis of its own). */
export type RunCure = (spec: Record<string, unknown>, title: string) => void;

function whatIfBlock(whatIf: unknown, spec: Record<string, unknown>, runCure?: RunCure): HTMLElement | null {
  if (!isObject(whatIf)) return null;
  const ranking = Array.isArray(whatIf.ranking) ? whatIf.ranking.filter(isObject) : [];
  const skipped = Array.isArray(whatIf.skipped) ? whatIf.skipped.filter(isObject) : [];
  // Distances are orders of magnitude from a flat backprop signal: bars on one shared scale.
  const finite = ranking.map((r) => num(r.distance)).filter((d): d is number => d !== null && Number.isFinite(d));
  const maxD = Math.max(1, ...finite);
  const rows = ranking.map((r) => {
    const d = num(r.distance);
    const verdict = typeof r.verdict === 'string' ? r.verdict : '';
    const change = isObject(r.change) ? r.change : {};
    const description = typeof r.description === 'string' ? r.description : String(r.id ?? '');
    return h('tr', { 'data-id': String(r.id ?? ''), class: r.id === 'none' ? 'row-asis' : undefined },
      h('td', { class: 'idx' }, String(r.rank ?? '')),
      h('td', {}, description),
      h('td', {}, verdict ? h('span', { class: `badge verdict-badge verdict-${verdict}` }, verdict.replace(/_/g, ' ')) : '—'),
      h('td', { class: 'n' }, numEl(r.backpropFirstToLastRatio)),
      h('td', { class: 'n' }, numEl(r.backpropLogSlope)),
      h('td', { class: 'dist' },
        h('span', { class: 'dist-bar', style: `width:${d !== null && Number.isFinite(d) ? Math.max(2, (d / maxD) * 100) : 100}%` }),
        h('span', { class: 'dist-num' }, fmt(r.distance, 2))),
      h('td', {}, r.id !== 'none' && runCure && Object.keys(change).length
        ? h('button', { class: 'link small', onclick: () => {
          let next: Record<string, unknown> = { ...structuredClone(spec), whatIf: false };
          for (const [path, value] of Object.entries(change)) next = setPath(next, path, value);
          runCure(next, `What-if: ${description}`);
        } }, 'open')
        : null),
    );
  });
  return h('section', { class: 'card', id: 'what-if', 'data-rows': ranking.length },
    h('h3', {}, 'What-if: which single change restores the flow'),
    typeof whatIf.summary === 'string' ? h('p', { class: 'whatif-summary' }, whatIf.summary) : null,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data whatif' },
      h('thead', {}, h('tr', {},
        h('th', {}, '#'), h('th', {}, 'change'), h('th', {}, 'verdict'),
        h('th', { title: 'backpropNorm of the first measured layer / the output layer' }, 'first / last backprop'),
        h('th', { title: 'fitted ln backprop norm per layer toward the input' }, 'slope / layer'),
        h('th', { title: 'orders of magnitude from a flat backprop signal (0 = perfectly flat)' }, 'distance from healthy'),
        h('th', {}, ''),
      )),
      h('tbody', {}, rows),
    )),
    skipped.length ? h('p', { class: 'small muted' }, `Not tried: ${skipped.map((x) => `${String(x.id)} (${String(x.reason)})`).join('; ')}`) : null,
  );
}

function theoryBlock(theory: unknown): HTMLElement | null {
  if (!isObject(theory)) return null;
  if (theory.applicable === false) {
    const reason = typeof theory.reason === 'string' ? theory.reason.replace(/^no prediction:\s*/, '') : 'not applicable to this network';
    return h('p', { class: 'theory-note muted', id: 'theory-note' }, `Mean-field theory makes no prediction here: ${reason}.`);
  }
  const hidden = isObject(theory.hidden) ? theory.hidden : null;
  const slopes = isObject(theory.slopes) ? theory.slopes : null;
  const assumptions = Array.isArray(theory.assumptions) ? theory.assumptions.filter((a): a is string => typeof a === 'string') : [];
  return h('details', { class: 'theory', id: 'theory' },
    h('summary', {}, 'Mean-field theory (the dashed line)',
      hidden ? h('span', { class: 'muted' }, `  χ₁ = ${fmt(hidden.chi1)} · ${String(hidden.phase ?? '')} phase · depth scale ξ = ${fmt(hidden.depthScale)}`) : null),
    h('div', { class: 'theory-body' },
      hidden ? h('div', {}, h('h4', {}, 'Hidden layers'), scalarList(hidden)) : null,
      slopes ? h('div', {}, h('h4', {}, 'Slope per layer: measured vs predicted'), scalarList(slopes)) : null,
      h('div', {},
        typeof theory.weightVariance === 'string' ? h('p', { class: 'small' }, theory.weightVariance) : null,
        assumptions.length ? h('ul', { class: 'small' }, assumptions.map((a) => h('li', {}, a))) : null),
    ),
  );
}

/** A layer graph's rows in order with their blocks (graph-view.ts); nothing for the depth/width shorthand. */
function graphSection(result: AnalysisResult): HTMLElement | null {
  const rows = graphRows(result.layers);
  return rows ? graphCard(rows, 'graph-rows') : null;
}

export class AnalysisView {
  private chart: BarsChart | null = null;
  private throughTime: ThroughTimeCard | null = null;

  constructor(private readonly root: HTMLElement, private readonly runCure?: RunCure) {}

  render(res: AnalysisResponse, title = 'Analysis'): void {
    this.destroy();
    const result = res.result;
    this.throughTime = Array.isArray(result.throughTime) && result.throughTime.length ? throughTimeCard(result.throughTime) : null;
    const marks = layerMarks(result);
    const theory = theoryLine(result);
    const offAxis = result.layers.filter((l) => logValue(l.weightGradNorm) === null || logValue(l.backpropNorm) === null).length;
    const nonFiniteLayers = result.layers.filter((l) => [l.weightGradNorm, l.backpropNorm].some((v) => { const n = num(v); return n !== null && !Number.isFinite(n); })).length;
    const chartEl = h('div', {
      id: 'grad-chart', class: 'chart',
      'data-layers': result.layers.length,
      'data-off-axis': offAxis,
      'data-nonfinite-layers': nonFiniteLayers,
      'data-series': theory ? 'weightGradNorm,backpropNorm,theory' : 'weightGradNorm,backpropNorm',
    });
    const legendMarks = h('div', { class: 'marks-legend' },
      h('span', {}, h('i', { class: 'swatch', style: `background:${COLORS.dead}` }), 'dead'),
      h('span', {}, h('i', { class: 'swatch', style: `background:${COLORS.saturated}` }), 'saturated'),
      h('span', {}, h('i', { class: 'swatch line', style: `border-color:${COLORS.onset}` }), 'onset'),
      h('span', {}, h('i', { class: 'swatch', style: `background:${COLORS.zero}` }), 'zero by design'),
      nonFiniteLayers ? h('span', { class: 'nonfinite' }, h('i', { class: 'swatch', style: `background:${COLORS.nonFiniteBand}` }), `NaN / ∞ in ${nonFiniteLayers} layer(s): no bar, see the table`) : null,
      offAxis > nonFiniteLayers ? h('span', {}, `${offAxis - nonFiniteLayers} layer(s) with a zero norm (tick at the baseline)`) : null,
      h('span', { class: 'muted' }, result.layers.some((l) => l.flags !== undefined) ? 'marks from the server\'s flags' : `marks where ≥ ${FALLBACK_FRACTION * 100}% of units are dead / saturated`),
    );
    fill(this.root,
      h('div', { class: 'view-head' },
        h('div', {},
          h('h2', {}, title),
          h('p', { class: 'spec-line' }, describeSpec(res.spec)),
          h('p', { class: 'muted small' }, `id ${res.id}`),
        ),
        verdictBadge(result),
      ),
      reasonsBlock(result),
      summaryStats(res),
      h('section', { class: 'card' },
        h('h3', {}, 'Gradient norms by depth'),
        chartEl,
        legendMarks,
      ),
      graphSection(result),
      this.throughTime?.el,
      whatIfBlock(result.whatIf, res.spec, this.runCure),
      theoryBlock(result.theory),
      h('section', { class: 'card' }, h('h3', {}, 'Per-layer numbers'), h('div', { class: 'table-wrap' }, layerTable(result, marks, theory))),
    );
    this.root.dataset.state = 'ready';
    this.root.dataset.kind = 'analysis';
    this.chart = new BarsChart(chartEl);
    this.chart.render({
      weightGrad: result.layers.map((l) => logValue(l.weightGradNorm)),
      backprop: result.layers.map((l) => logValue(l.backpropNorm)),
      theory,
      rawWeightGrad: result.layers.map((l) => l.weightGradNorm),
      rawBackprop: result.layers.map((l) => l.backpropNorm),
      marks,
    });
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
    this.throughTime?.destroy();
    this.throughTime = null;
  }
}
