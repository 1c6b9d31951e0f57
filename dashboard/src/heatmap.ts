// Layers × steps heatmap on one canvas, log colour scale; a canvas because a long training is thousands of cells redrawn live.
import { viridis, NONFINITE_COLOR, ZERO_COLOR, EMPTY_COLOR } from './colors.js';
import { fmt, num } from './format.js';
import { h } from './dom.js';

const PAD = { left: 64, right: 84, top: 8, bottom: 34 };

export class Heatmap {
  readonly el: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLElement;
  private columns: unknown[][] = [];
  private steps: number[] = [];
  private rows = 0;
  private expectedCols = 0;
  private frame = 0;
  private observer: ResizeObserver;
  private lastWidth = 0;

  constructor(private readonly label: string) {
    this.canvas = h('canvas', { id: 'training-heatmap', class: 'heatmap', 'data-rows': 0, 'data-cols': 0, 'data-filled': 0, 'data-streamed': 0, role: 'img', 'aria-label': label });
    this.tip = h('div', { class: 'heatmap-tip', hidden: true });
    this.el = h('div', { class: 'heatmap-wrap' }, this.canvas, this.tip);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { this.tip.hidden = true; });
    // Only a width change needs a redraw; the height is ours and would otherwise loop.
    this.observer = new ResizeObserver(() => {
      if (this.el.clientWidth !== this.lastWidth) this.schedule();
    });
    this.observer.observe(this.el);
  }

  /** Rows are layers (input side at the top); `expectedCols` sizes the cells so the map fills left to right. */
  reset(rows: number, expectedCols: number): void {
    this.rows = rows;
    this.expectedCols = expectedCols;
    this.columns = [];
    this.steps = [];
    this.schedule();
  }

  setExpected(cols: number): void {
    this.expectedCols = cols;
    this.schedule();
  }

  push(step: number, values: unknown[]): void {
    if (values.length > this.rows) this.rows = values.length;
    this.columns.push(values);
    this.steps.push(step);
    this.schedule();
  }

  setAll(steps: number[], columns: unknown[][]): void {
    this.steps = steps;
    this.columns = columns;
    this.rows = Math.max(this.rows, ...columns.map((c) => c.length));
    this.schedule();
  }

  /** How many columns arrived live (from the event stream), for tests and the curious. */
  setStreamed(n: number): void {
    this.canvas.dataset.streamed = String(n);
  }

  destroy(): void {
    this.observer.disconnect();
    cancelAnimationFrame(this.frame);
  }

  // Records can arrive faster than frames; draw at most once per frame.
  private schedule(): void {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.draw());
  }

  private range(): [number, number] | null {
    let lo = Infinity;
    let hi = -Infinity;
    for (const col of this.columns) for (const v of col) {
      const n = num(v);
      if (n !== null && Number.isFinite(n) && n > 0) {
        const l = Math.log10(n);
        if (l < lo) lo = l;
        if (l > hi) hi = l;
      }
    }
    if (!Number.isFinite(lo)) return null;
    if (hi - lo < 1e-9) return [lo - 0.5, hi + 0.5];
    return [lo, hi];
  }

  private geometry(): { w: number; hgt: number; cols: number; cw: number; rh: number } {
    const w = Math.max(320, this.el.clientWidth);
    const rh = Math.max(6, Math.min(22, Math.floor(360 / Math.max(1, this.rows))));
    const hgt = PAD.top + PAD.bottom + rh * Math.max(1, this.rows);
    const cols = Math.max(this.expectedCols, this.columns.length, 1);
    const cw = (w - PAD.left - PAD.right) / cols;
    return { w, hgt, cols, cw, rh };
  }

  private draw(): void {
    const { w, hgt, cols, cw, rh } = this.geometry();
    this.lastWidth = this.el.clientWidth;
    const dpr = devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, hgt);
    ctx.fillStyle = EMPTY_COLOR;
    ctx.fillRect(PAD.left, PAD.top, cw * cols, rh * this.rows);
    const range = this.range();
    let filled = 0;
    this.columns.forEach((col, c) => {
      for (let r = 0; r < this.rows; r++) {
        const n = num(col[r]);
        if (n === null) continue;
        filled++;
        ctx.fillStyle = !Number.isFinite(n) ? NONFINITE_COLOR
          : n <= 0 ? ZERO_COLOR
          : range ? viridis((Math.log10(n) - range[0]) / (range[1] - range[0])) : viridis(0.5);
        // +0.5 px overlap hides hairline seams between cells at fractional widths.
        ctx.fillRect(PAD.left + c * cw, PAD.top + r * rh, cw + 0.5, rh + 0.5);
      }
    });

    ctx.fillStyle = '#333';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const rowEvery = Math.ceil(14 / rh);
    for (let r = 0; r < this.rows; r += rowEvery) ctx.fillText(`layer ${r}`, PAD.left - 6, PAD.top + r * rh + rh / 2);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const colEvery = Math.max(1, Math.ceil(48 / Math.max(cw, 1e-9)));
    for (let c = 0; c < this.columns.length; c += colEvery) ctx.fillText(String(this.steps[c] ?? c), PAD.left + c * cw + cw / 2, PAD.top + rh * this.rows + 4);
    ctx.fillText('step', PAD.left + (cw * cols) / 2, PAD.top + rh * this.rows + 18);

    // Colour bar with its log10 range.
    const bx = w - PAD.right + 16;
    const bh = rh * this.rows;
    for (let y = 0; y < bh; y++) {
      ctx.fillStyle = viridis(1 - y / Math.max(1, bh - 1));
      ctx.fillRect(bx, PAD.top + y, 12, 1);
    }
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    ctx.fillStyle = '#333';
    if (range) {
      ctx.fillText(fmt(10 ** range[1], 2), bx + 16, PAD.top);
      ctx.textBaseline = 'bottom';
      ctx.fillText(fmt(10 ** range[0], 2), bx + 16, PAD.top + bh);
    }

    this.canvas.dataset.rows = String(this.rows);
    this.canvas.dataset.cols = String(this.columns.length);
    this.canvas.dataset.filled = String(filled);
    // Where the cells are, in CSS pixels ("left top cellWidth rowHeight"): tests read the pixels there.
    this.canvas.dataset.grid = `${PAD.left} ${PAD.top} ${cw} ${rh}`;
  }

  private hover(e: MouseEvent): void {
    const { cw, rh } = this.geometry();
    const rect = this.canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - rect.left - PAD.left) / cw);
    const r = Math.floor((e.clientY - rect.top - PAD.top) / rh);
    const col = this.columns[c];
    if (!col || r < 0 || r >= this.rows) {
      this.tip.hidden = true;
      return;
    }
    this.tip.hidden = false;
    this.tip.textContent = `layer ${r} · step ${this.steps[c] ?? c}: ${this.label} ${fmt(col[r])}`;
    this.tip.style.left = `${e.clientX - rect.left + 12}px`;
    this.tip.style.top = `${e.clientY - rect.top + 12}px`;
  }
}
