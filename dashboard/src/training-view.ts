// One training: loss curve (uPlot) and a layers × steps heatmap of per-layer gradient norm, fed live by the job's events.
import uPlot from 'uplot';
import { h, fill } from './dom.js';
import { fmt, fmtPct, num, numEl } from './format.js';
import { Heatmap } from './heatmap.js';
import { NONFINITE_COLOR, ZERO_COLOR, EMPTY_COLOR } from './colors.js';
import { describeSpec, isObject, TERMINAL, type Job } from './shapes.js';
import { graphCard, graphRows } from './graph-view.js';

export type Metric = 'weightGradNorm' | 'backpropNorm' | 'updateToWeightRatio';

const METRIC_LABEL: Record<Metric, string> = {
  weightGradNorm: 'weight-grad norm',
  backpropNorm: 'backprop norm',
  updateToWeightRatio: 'update / weight',
};

/** A training record as the dashboard reads it, whatever the server's exact nesting. */
export interface TrainingRecord {
  step: number;
  loss: unknown;
  accuracy: unknown;
  layers: Record<string, unknown>[];
}

export function toRecord(raw: unknown, fallbackStep: number): TrainingRecord | null {
  if (!isObject(raw)) return null;
  const rec = isObject(raw.record) ? raw.record : raw;
  const layers = Array.isArray(rec.layers) ? rec.layers.filter(isObject) : [];
  return {
    step: typeof rec.step === 'number' ? rec.step : fallbackStep,
    loss: rec.loss,
    accuracy: rec.accuracy,
    layers,
  };
}

export function trainingRecords(result: unknown): TrainingRecord[] {
  if (!isObject(result)) return [];
  const raw = Array.isArray(result.records) ? result.records : Array.isArray(result.history) ? result.history : [];
  return raw.map((r, i) => toRecord(r, i)).filter((r): r is TrainingRecord => r !== null);
}

/** The training's outcome: learning / stalled / diverged with the server's reasons and the headline numbers. */
function outcome(r: Record<string, unknown>): HTMLElement {
  const status = typeof r.status === 'string' ? r.status : null;
  const reasons = Array.isArray(r.reasons) ? r.reasons.filter((x): x is string => typeof x === 'string') : [];
  const stat = (label: string, value: Node | string): HTMLElement => h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value));
  const arrow = (a: unknown, b: unknown, pct = false): HTMLElement => h('span', {}, pct ? fmtPct(a) : numEl(a), ' → ', pct ? fmtPct(b) : numEl(b));
  return h('section', { class: 'card outcome-block' },
    h('div', { class: 'outcome-head' },
      h('div', { id: 'training-outcome', class: `verdict outcome-${status ?? 'none'}`, 'data-outcome': status ?? '' }, status ?? 'no outcome'),
      h('ul', { class: 'reasons' }, reasons.map((x) => h('li', {}, x))),
    ),
    h('div', { class: 'stats' },
      stat('evaluation loss', arrow(r.initialLoss, r.finalLoss)),
      stat('loss reduction', fmtPct(r.lossReduction)),
      r.baselineLoss !== null && r.baselineLoss !== undefined ? stat('constant-prediction loss', numEl(r.baselineLoss)) : null,
      r.finalAccuracy !== null && r.finalAccuracy !== undefined ? stat('accuracy', arrow(r.initialAccuracy, r.finalAccuracy, true)) : null,
      r.chanceAccuracy !== null && r.chanceAccuracy !== undefined ? stat('chance accuracy', fmtPct(r.chanceAccuracy)) : null,
      typeof r.stepsCompleted === 'number' ? stat('steps', `${r.stepsCompleted} / ${String(r.steps ?? '?')}`) : null,
    ),
  );
}

function specOf(job: Job): Record<string, unknown> {
  return isObject(job.spec) ? job.spec : {};
}

export class TrainingView {
  private records: TrainingRecord[] = [];
  private heatmap: Heatmap | null = null;
  private loss: uPlot | null = null;
  private lossEl: HTMLElement | null = null;
  private lossNoteEl: HTMLElement | null = null;
  private statusEl: HTMLElement | null = null;
  private outcomeEl: HTMLElement | null = null;
  private graphEl: HTMLElement | null = null;
  private result: unknown = null;
  private metric: Metric = 'weightGradNorm';
  private observer: ResizeObserver | null = null;
  private expected = 0;
  private streamed = 0;

  constructor(private readonly root: HTMLElement) {}

  start(job: Job): void {
    this.destroy();
    this.records = [];
    this.streamed = 0;
    this.result = null;
    const spec = specOf(job);
    const steps = typeof spec.steps === 'number' ? spec.steps : 0;
    // Records at 0, every, 2·every, … and after the last step; the server's default is about 50 records.
    const every = typeof spec.recordEvery === 'number' && spec.recordEvery > 0 ? spec.recordEvery : Math.max(1, Math.ceil(steps / 50));
    this.expected = steps > 0 ? Math.ceil(steps / every) + 1 : 0;
    const net = isObject(spec.network) ? spec.network : {};
    const depth = typeof net.depth === 'number' ? net.depth : 0;

    this.statusEl = h('div', { class: 'job-status' });
    this.outcomeEl = h('div', { class: 'outcome' });
    this.graphEl = h('div', { class: 'training-graph' });
    this.lossEl = h('div', { id: 'loss-chart', class: 'chart', 'data-points': 0 });
    this.lossNoteEl = h('p', { class: 'nonfinite-note', hidden: true });
    this.heatmap = new Heatmap(METRIC_LABEL[this.metric]);
    this.heatmap.reset(depth, this.expected);
    const metricButtons = h('span', { class: 'seg-group' }, (Object.keys(METRIC_LABEL) as Metric[]).map((m) =>
      h('button', { class: m === this.metric ? 'seg on' : 'seg', 'data-metric': m, onclick: () => this.setMetric(m) }, METRIC_LABEL[m])));

    fill(this.root,
      h('div', { class: 'view-head' },
        h('div', {},
          h('h2', {}, 'Training'),
          h('p', { class: 'spec-line' }, describeSpec(spec) + (steps ? ` · ${steps} steps` : '')),
          h('p', { class: 'muted small' }, `job ${job.id}`),
        ),
        this.statusEl,
      ),
      this.outcomeEl,
      h('section', { class: 'card' }, h('h3', {}, 'Loss'), this.lossEl, this.lossNoteEl),
      h('section', { class: 'card' },
        h('div', { class: 'card-head' }, h('h3', {}, 'Per-layer gradient over steps'), metricButtons),
        this.heatmap.el,
        h('div', { class: 'marks-legend' },
          h('span', {}, 'log colour scale (viridis): dark = small, yellow = large'),
          h('span', {}, h('i', { class: 'swatch', style: `background:${NONFINITE_COLOR}` }), 'NaN / ∞'),
          h('span', {}, h('i', { class: 'swatch', style: `background:${ZERO_COLOR}` }), 'zero'),
          h('span', {}, h('i', { class: 'swatch', style: `background:${EMPTY_COLOR}` }), 'not yet recorded'),
        ),
      ),
      this.graphEl,
    );
    this.root.dataset.kind = 'training';
    this.root.dataset.state = 'ready';
    this.initLoss();
    this.update(job);
  }

  addRecord(raw: unknown): void {
    const rec = toRecord(raw, this.records.length);
    if (!rec) return;
    // SSE may replay records after a reconnect: keep one per step.
    if (this.records.some((r) => r.step === rec.step)) return;
    this.records.push(rec);
    this.heatmap?.push(rec.step, rec.layers.map((l) => l[this.metric]));
    this.heatmap?.setStreamed(++this.streamed);
    this.refreshLoss();
  }

  update(job: Job): void {
    if (this.statusEl) {
      const p = typeof job.progress === 'number' ? job.progress : job.status === 'succeeded' ? 1 : 0;
      fill(this.statusEl,
        h('span', { class: `badge status-${job.status}`, id: 'training-status', 'data-status': job.status }, job.status),
        h('progress', { max: 1, value: p }),
        h('span', { class: 'muted small' }, `${Math.round(p * 100)}%`),
      );
    }
    if ((job.status === 'failed' || job.status === 'canceled') && this.outcomeEl) {
      const done = typeof job.progress === 'number' ? ` at ${Math.round(job.progress * 100)}%` : '';
      // Failed and canceled jobs keep no result: what the charts show is what streamed to this page.
      fill(this.outcomeEl, h('div', { class: 'error-box', id: 'training-error', 'data-code': job.error?.code ?? job.status },
        h('strong', {}, `${job.status === 'canceled' ? 'Canceled' : 'Failed'}${done}`),
        h('p', {}, job.error?.message ?? ''),
        h('p', { class: 'small' }, this.records.length
          ? `The server keeps no records of ${job.status} runs; the ${this.records.length} shown streamed to this page while it ran.`
          : `The server keeps no records of ${job.status} runs.`)));
    }
    if (job.result !== undefined && job.result !== null) {
      // The stored result is authoritative: it fills any records the stream missed.
      const all = trainingRecords(job.result);
      if (all.length >= this.records.length) {
        this.records = all;
        this.redrawHeatmap();
        this.refreshLoss();
      }
      if (this.outcomeEl && isObject(job.result)) fill(this.outcomeEl, outcome(job.result));
      this.result = job.result;
      this.showGraph();
    }
    // A run that stopped early (diverged, canceled) has fewer records than planned: size the map to what exists.
    if (TERMINAL.includes(job.status) && this.records.length && this.heatmap) this.heatmap.setExpected(this.records.length);
    // Last, so that whoever waits for the status finds the charts already fed.
    this.root.dataset.status = job.status;
  }

  /** A layer graph's training: the heatmap's rows are its dense/conv2d rows; name them, with the last record's value. */
  private showGraph(): void {
    const rows = isObject(this.result) ? graphRows(this.result.layers) : null;
    if (!this.graphEl || !rows) return;
    const last = this.records[this.records.length - 1];
    fill(this.graphEl, graphCard(rows, 'training-graph', {
      head: `${METRIC_LABEL[this.metric]} at step ${last?.step ?? '?'}`,
      value: (r) => last?.layers[r.index]?.[this.metric],
    }));
  }

  private setMetric(m: Metric): void {
    this.metric = m;
    for (const b of this.root.querySelectorAll<HTMLButtonElement>('button[data-metric]')) b.classList.toggle('on', b.dataset.metric === m);
    this.redrawHeatmap();
    this.showGraph();
  }

  private redrawHeatmap(): void {
    this.heatmap?.setAll(this.records.map((r) => r.step), this.records.map((r) => r.layers.map((l) => l[this.metric])));
  }

  private initLoss(): void {
    if (!this.lossEl) return;
    const el = this.lossEl;
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: 220,
      series: [
        { label: 'step' },
        // Points only while they are few: a run that diverges at step 2 still shows its one finite loss.
        { label: 'loss', stroke: '#3b6fb6', width: 2, value: (_u, v) => fmt(v), points: { show: (u) => (u.data[0]?.length ?? 0) <= 30, size: 5 } },
        { label: 'accuracy', stroke: '#2e8b57', width: 1.5, scale: 'acc', value: (_u, v) => fmt(v), points: { show: (u) => (u.data[0]?.length ?? 0) <= 30, size: 4 } },
      ],
      scales: { x: { time: false }, acc: { range: [0, 1] } },
      axes: [
        { label: 'step', grid: { show: false }, incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] },
        { label: 'loss', size: 64, grid: { stroke: '#e6e6e6' }, values: (_u, splits) => splits.map((v) => fmt(v, 3)) },
        { side: 1, scale: 'acc', label: 'accuracy', grid: { show: false }, size: 50 },
      ],
      cursor: { drag: { x: false, y: false } },
    };
    this.loss = new uPlot(opts, [[], [], []], el);
    this.observer = new ResizeObserver(() => {
      const w = Math.max(320, el.clientWidth);
      if (this.loss && Math.abs(this.loss.width - w) > 4) this.loss.setSize({ width: w, height: 220 });
    });
    this.observer.observe(el);
  }

  private refreshLoss(): void {
    if (!this.loss || !this.lossEl) return;
    const finite = (v: unknown): number | null => {
      const n = num(v);
      return n !== null && Number.isFinite(n) ? n : null;
    };
    this.loss.setData([
      this.records.map((r) => r.step),
      this.records.map((r) => finite(r.loss)),
      this.records.map((r) => finite(r.accuracy)),
    ]);
    this.lossEl.dataset.points = String(this.records.length);
    const nonFinite = this.records.filter((r) => { const n = num(r.loss); return n !== null && !Number.isFinite(n); });
    this.lossEl.dataset.nonfinite = String(nonFinite.length);
    // A diverged loss must read as such, not as a gap in the curve.
    if (this.lossNoteEl) {
      this.lossNoteEl.hidden = nonFinite.length === 0;
      this.lossNoteEl.textContent = nonFinite.length
        ? `Loss is non-finite at ${nonFinite.length} recorded step(s): ${nonFinite.slice(0, 8).map((r) => `step ${r.step} = ${fmt(r.loss)}`).join(', ')}${nonFinite.length > 8 ? ', …' : ''}`
        : '';
    }
    const last = this.records[this.records.length - 1];
    if (last) this.lossEl.setAttribute('aria-label', `last loss ${fmt(last.loss)}`);
  }

  destroy(): void {
    this.heatmap?.destroy();
    this.heatmap = null;
    this.observer?.disconnect();
    this.loss?.destroy();
    this.loss = null;
  }
}

