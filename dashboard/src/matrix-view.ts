// Sweep matrix as a CSS grid of buttons: few cells, each clickable and labelled, so the DOM is the better tool than a canvas.
import { ratioColor, VERDICT_COLORS, NONFINITE_COLOR } from './colors.js';
import { h, fill } from './dom.js';
import { fmt, num } from './format.js';
import { valueLabel } from './presets.js';

export interface MatrixCell {
  /** Index into each axis' values. */
  coords: number[];
  status: 'pending' | 'running' | 'succeeded' | 'failed' | string;
  verdict?: string | null;
  /** Backprop first-to-last ratio: what the verdict judges (the weight-grad ratio also carries the input's scale). */
  ratio?: unknown;
  /** Extra detail for the cell's tooltip. */
  detail?: string;
  error?: string;
  /** Opens the cell's analysis; absent while there is none. */
  open?: () => void;
}

export interface MatrixAxis {
  path: string;
  values: unknown[];
}

type Mode = 'verdict' | 'ratio';

function product(axes: MatrixAxis[]): number[][] {
  return axes.reduce<number[][]>((acc, ax) => acc.flatMap((c) => ax.values.map((_, i) => [...c, i])), [[]]);
}

export class MatrixView {
  private mode: Mode = 'verdict';
  private axes: MatrixAxis[] = [];
  private cells: MatrixCell[] = [];

  constructor(private readonly root: HTMLElement) {}

  render(axes: MatrixAxis[], cells: MatrixCell[]): void {
    this.axes = axes;
    this.cells = cells;
    // Without verdicts on the server, colour by ratio so the matrix still says something.
    if (this.mode === 'verdict' && cells.some((c) => c.status === 'succeeded') && !cells.some((c) => c.verdict)) this.mode = 'ratio';
    this.draw();
  }

  private draw(): void {
    const rowsAxis = this.axes.length > 1 ? this.axes[0]! : { path: '', values: [''] };
    const colAxes = this.axes.length > 1 ? this.axes.slice(1) : this.axes;
    const colCoords = product(colAxes);
    const key = (c: number[]): string => c.join(',');
    const byCoords = new Map(this.cells.map((c) => [key(c.coords), c]));
    const hasVerdicts = this.cells.some((c) => c.verdict);

    const grid = h('div', {
      id: 'sweep-matrix',
      class: 'matrix',
      style: `grid-template-columns: minmax(7em, max-content) repeat(${colCoords.length}, minmax(8.5em, 1fr))`,
      'data-cells': this.cells.length,
      'data-done': this.cells.filter((c) => c.status === 'succeeded' || c.status === 'failed').length,
      'data-mode': this.mode,
    });
    grid.append(h('div', { class: 'matrix-corner' }, this.axes.length > 1 ? `${rowsAxis.path} ↓  ${colAxes.map((a) => a.path).join(' × ')} →` : colAxes[0]?.path ?? ''));
    for (const cc of colCoords) grid.append(h('div', { class: 'matrix-colhead' }, cc.map((v, i) => valueLabel(colAxes[i]!.values[v])).join(' · ')));
    rowsAxis.values.forEach((rv, ri) => {
      grid.append(h('div', { class: 'matrix-rowhead' }, valueLabel(rv)));
      for (const cc of colCoords) {
        const coords = this.axes.length > 1 ? [ri, ...cc] : cc;
        const cell = byCoords.get(key(coords));
        grid.append(this.cellEl(cell));
      }
    });

    fill(this.root,
      h('div', { class: 'matrix-toolbar' },
        h('span', { class: 'muted' }, 'colour by'),
        h('button', { class: this.mode === 'verdict' ? 'seg on' : 'seg', disabled: !hasVerdicts, title: hasVerdicts ? undefined : 'this server sends no verdicts', onclick: () => this.setMode('verdict') }, 'verdict'),
        h('button', { class: this.mode === 'ratio' ? 'seg on' : 'seg', onclick: () => this.setMode('ratio') }, 'backprop first-to-last ratio'),
        this.legend(),
      ),
      h('div', { class: 'matrix-wrap' }, grid),
    );
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    this.draw();
  }

  private legend(): HTMLElement {
    if (this.mode === 'verdict') {
      return h('span', { class: 'legend' }, Object.entries(VERDICT_COLORS).map(([v, c]) => h('span', {}, h('i', { class: 'swatch', style: `background:${c}` }), v.replace(/_/g, ' '))));
    }
    return h('span', { class: 'legend' },
      h('span', {}, h('i', { class: 'swatch', style: `background:${ratioColor(-6)}` }), '≤ 1e-6'),
      h('span', {}, h('i', { class: 'swatch', style: `background:${ratioColor(0)}` }), '1'),
      h('span', {}, h('i', { class: 'swatch', style: `background:${ratioColor(6)}` }), '≥ 1e6'),
      h('span', {}, h('i', { class: 'swatch', style: `background:${NONFINITE_COLOR}` }), 'NaN / ∞ / 0'),
    );
  }

  private cellEl(cell: MatrixCell | undefined): HTMLElement {
    if (!cell) return h('div', { class: 'matrix-cell empty' }, '');
    const ratio = num(cell.ratio);
    let bg = '';
    let dark = false;
    if (cell.status === 'succeeded') {
      if (this.mode === 'verdict' && cell.verdict) {
        bg = VERDICT_COLORS[cell.verdict] ?? '#888';
        dark = true;
      } else if (ratio !== null) {
        if (!Number.isFinite(ratio) || ratio <= 0) {
          bg = NONFINITE_COLOR;
          dark = true;
        } else {
          const l = Math.log10(ratio);
          bg = ratioColor(l);
          dark = Math.abs(l) > 3.5;
        }
      }
    }
    const body = cell.status === 'succeeded'
      ? [h('strong', {}, cell.verdict ? cell.verdict.replace(/_/g, ' ') : ''), h('span', {}, `backprop first/last ${fmt(cell.ratio, 2)}`)]
      : cell.status === 'failed'
        ? [h('strong', {}, 'failed'), h('span', { class: 'small' }, cell.error ?? '')]
        : [h('span', { class: 'spinner' }), h('span', {}, cell.status)];
    return h('button', {
      class: `matrix-cell status-${cell.status}${dark ? ' dark' : ''}`,
      style: bg ? `background:${bg}` : undefined,
      disabled: !cell.open,
      'data-verdict': cell.verdict ?? '',
      'data-ratio': ratio === null ? '' : String(cell.ratio),
      'data-status': cell.status,
      title: cell.error ?? [cell.detail, cell.open ? 'click to open this analysis' : ''].filter(Boolean).join('\n'),
      onclick: () => cell.open?.(),
    }, body);
  }
}
