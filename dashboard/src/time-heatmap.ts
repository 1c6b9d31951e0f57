// Recurrent layers × time steps heatmap of ‖∂L/∂h_t‖ (result.throughTime), log10 colour scale, on one canvas:
// sequential MNIST by pixels is 784 steps per row, too many cells for a DOM grid. Drawn once per result.
import { viridis, NONFINITE_COLOR, ZERO_COLOR, EMPTY_COLOR } from './colors.js';
import { fmt, num } from './format.js';
import { h } from './dom.js';

const PAD = { left: 110, right: 96, top: 8, bottom: 34 };

/** One row: a recurrent layer's path and its per-step norms (numbers, or the API's non-finite strings). */
export interface TimeRow {
  label: string;
  values: readonly unknown[];
}

/** log10 range of the finite positive values of every row; a flat map gets ±0.5 decades so it has a colour. */
export function logRange(rows: readonly TimeRow[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of rows) for (const v of r.values) {
    const n = num(v);
    if (n === null || !Number.isFinite(n) || n <= 0) continue;
    const l = Math.log10(n);
    lo = Math.min(lo, l);
    hi = Math.max(hi, l);
  }
  if (!Number.isFinite(lo)) return null;
  return hi - lo < 1e-9 ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

/** A cell's colour: viridis on log10 for a positive norm, the legend's own colours for zero and NaN / ±∞. */
export function cellColor(v: unknown, range: [number, number] | null): string {
  const n = num(v);
  if (n === null) return EMPTY_COLOR;
  if (!Number.isFinite(n)) return NONFINITE_COLOR;
  if (n <= 0) return ZERO_COLOR;
  return range ? viridis((Math.log10(n) - range[0]) / (range[1] - range[0])) : viridis(0.5);
}

export class TimeHeatmap {
  readonly el: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLElement;
  private readonly observer: ResizeObserver;
  private lastWidth = 0;
  private frame = 0;
  private readonly cols: number;
  private readonly range: [number, number] | null;

  constructor(private readonly rows: readonly TimeRow[], id: string, private readonly label = '‖∂L/∂h_t‖') {
    this.cols = Math.max(1, ...rows.map((r) => r.values.length));
    this.range = logRange(rows);
    this.canvas = h('canvas', {
      id, class: 'heatmap', role: 'img', 'aria-label': `${label} per recurrent layer and time step`,
      'data-rows': rows.length, 'data-cols': this.cols,
      'data-range': this.range ? `${this.range[0]} ${this.range[1]}` : '',
    });
    this.tip = h('div', { class: 'heatmap-tip', hidden: true });
    this.el = h('div', { class: 'heatmap-wrap' }, this.canvas, this.tip);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    this.observer = new ResizeObserver(() => {
      if (this.el.clientWidth !== this.lastWidth) this.schedule();
    });
    this.observer.observe(this.el);
    this.schedule();
  }

  destroy(): void {
    this.observer.disconnect();
    cancelAnimationFrame(this.frame);
  }

  private schedule(): void {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.draw());
  }

  private geometry(): { w: number; hgt: number; cw: number; rh: number } {
    const w = Math.max(360, this.el.clientWidth);
    const rh = Math.max(10, Math.min(28, Math.floor(240 / Math.max(1, this.rows.length))));
    return { w, hgt: PAD.top + PAD.bottom + rh * Math.max(1, this.rows.length), cw: (w - PAD.left - PAD.right) / this.cols, rh };
  }

  private draw(): void {
    const g = this.geometry();
    this.lastWidth = this.el.clientWidth;
    const dpr = devicePixelRatio || 1;
    this.canvas.width = Math.round(g.w * dpr);
    this.canvas.height = Math.round(g.hgt * dpr);
    this.canvas.style.width = `${g.w}px`;
    this.canvas.style.height = `${g.hgt}px`;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, g.w, g.hgt);
    this.rows.forEach((row, r) => {
      for (let t = 0; t < this.cols; t++) {
        ctx.fillStyle = cellColor(row.values[t], this.range);
        // +0.5 px overlap hides hairline seams between cells at fractional widths.
        ctx.fillRect(PAD.left + t * g.cw, PAD.top + r * g.rh, g.cw + 0.5, g.rh + 0.5);
      }
    });
    this.drawAxes(ctx, g);
    this.drawScale(ctx, g);
    // Where the cells are, in CSS pixels ("left top cellWidth rowHeight"): tests read the pixels there.
    this.canvas.dataset.grid = `${PAD.left} ${PAD.top} ${g.cw} ${g.rh}`;
  }

  private drawAxes(ctx: CanvasRenderingContext2D, g: { cw: number; rh: number }): void {
    ctx.fillStyle = '#333';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    this.rows.forEach((row, r) => ctx.fillText(row.label, PAD.left - 6, PAD.top + r * g.rh + g.rh / 2, PAD.left - 10));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const bottom = PAD.top + g.rh * this.rows.length;
    const every = Math.max(1, Math.ceil(40 / Math.max(g.cw, 1e-9)));
    for (let t = 0; t < this.cols; t += every) ctx.fillText(String(t), PAD.left + t * g.cw + g.cw / 2, bottom + 4);
    ctx.fillText('time step t', PAD.left + (g.cw * this.cols) / 2, bottom + 18);
  }

  /** The colour bar: its ends labelled with the norms they stand for (log10 scale in between). */
  private drawScale(ctx: CanvasRenderingContext2D, g: { w: number; rh: number }): void {
    const bx = g.w - PAD.right + 14;
    const bh = Math.max(g.rh * this.rows.length, 24);
    for (let y = 0; y < bh; y++) {
      ctx.fillStyle = viridis(1 - y / Math.max(1, bh - 1));
      ctx.fillRect(bx, PAD.top + y, 12, 1);
    }
    if (!this.range) return;
    ctx.fillStyle = '#333';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillText(fmt(10 ** this.range[1], 3), bx + 16, PAD.top);
    ctx.textBaseline = 'bottom';
    ctx.fillText(fmt(10 ** this.range[0], 3), bx + 16, PAD.top + bh);
  }

  private hover(e: MouseEvent): void {
    const { cw, rh } = this.geometry();
    const rect = this.canvas.getBoundingClientRect();
    const t = Math.floor((e.clientX - rect.left - PAD.left) / cw);
    const r = Math.floor((e.clientY - rect.top - PAD.top) / rh);
    const row = this.rows[r];
    if (!row || t < 0 || t >= row.values.length) {
      this.tip.hidden = true;
      return;
    }
    this.tip.hidden = false;
    this.tip.textContent = `${row.label} · t = ${t}: ${this.label} = ${fmt(row.values[t], 4)}`;
    this.tip.style.left = `${e.clientX - rect.left + 12}px`;
    this.tip.style.top = `${e.clientY - rect.top + 12}px`;
  }
}
