// Per-layer log-scale bars (uPlot) of weight-grad and backprop norms by depth, with the theory line and layer marks.
import uPlot from 'uplot';
import { fmt, num, offAxisLabel } from './format.js';

export interface LayerMarks {
  dead: boolean;
  saturated: boolean;
  onset: boolean;
  zeroByDesign: boolean;
}

export interface BarsInput {
  /** Log-axis values (null: nothing drawable) of each series, one entry per layer, input side first. */
  weightGrad: (number | null)[];
  backprop: (number | null)[];
  /** Mean-field prediction of the backprop norm per layer, when the result has one. */
  theory: (number | null)[] | null;
  /** What the API sent, so zero and non-finite values can be labelled instead of silently missing. */
  rawWeightGrad: unknown[];
  rawBackprop: unknown[];
  marks: LayerMarks[];
}

export const COLORS = {
  weightGrad: '#3b6fb6',
  backprop: '#e07b39',
  theory: '#1d1d1d',
  dead: '#c8372d',
  saturated: '#d9a21b',
  onset: '#7a3db8',
  zero: '#8a8f98',
  nonFinite: '#b0127a',
  nonFiniteBand: 'rgba(255, 47, 179, 0.13)',
};

/** 1e-27 … 1e300 all fit: uPlot's own log scale only handles about ±16 decades, so the chart plots log10 values. */
const log10 = (v: number | null): number | null => (v === null ? null : Math.log10(v));

function decadeLabel(e: number): string {
  if (!Number.isInteger(e)) return '';
  return e === 0 ? '1' : e === 1 ? '10' : `1e${e}`;
}

/** Draws the labels and marks uPlot's series cannot show: off-axis values, dead/saturated strips, onset line. */
function overlayPlugin(input: BarsInput): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        const px = devicePixelRatio || 1;
        const n = input.marks.length;
        const step = n > 1 ? Math.abs(u.valToPos(1, 'x', true) - u.valToPos(0, 'x', true)) : width;
        ctx.save();
        ctx.font = `${Math.round(10 * px)}px system-ui, sans-serif`;
        ctx.textAlign = 'center';
        for (let i = 0; i < n; i++) {
          const x = u.valToPos(i, 'x', true);
          const m = input.marks[i]!;
          const strip = Math.max(2, step * 0.8);
          if (m.dead || m.saturated || m.zeroByDesign) {
            ctx.fillStyle = m.zeroByDesign ? COLORS.zero : m.dead ? COLORS.dead : COLORS.saturated;
            ctx.fillRect(x - strip / 2, top, strip, 5 * px);
          }
          if (m.onset) {
            ctx.strokeStyle = COLORS.onset;
            ctx.lineWidth = 1.5 * px;
            ctx.setLineDash([4 * px, 3 * px]);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.setLineDash([]);
            // On a light box, so the label stays readable over the bars.
            const label = 'onset';
            const tw = ctx.measureText(label).width + 8 * px;
            ctx.fillStyle = 'rgba(255,255,255,0.9)';
            ctx.fillRect(x - tw / 2, top + 7 * px, tw, 14 * px);
            ctx.fillStyle = COLORS.onset;
            ctx.fillText(label, x, top + 18 * px);
          }
          // Zero and non-finite norms have no place on a log axis: a tinted column (NaN, ±∞) or a baseline
          // tick (0, negative), named in words where the layers are wide enough to hold the text.
          const raws = [input.rawWeightGrad[i], input.rawBackprop[i]];
          const labels = raws.map(offAxisLabel);
          const nonFinite = raws.some((v) => { const n = num(v); return n !== null && !Number.isFinite(n); });
          if (nonFinite) {
            ctx.fillStyle = COLORS.nonFiniteBand;
            ctx.fillRect(x - step / 2, top, step, height);
          }
          const roomy = step >= 30 * px;
          labels.forEach((label, s) => {
            if (!label) return;
            const bx = x + (s === 0 ? -1 : 1) * step * 0.2;
            ctx.fillStyle = COLORS.nonFinite;
            if (roomy) ctx.fillText(label, bx, top + height - (4 + s * 12) * px);
            else if (!nonFinite) ctx.fillRect(bx - 1 * px, top + height - 6 * px, 2 * px, 6 * px);
          });
        }
        ctx.restore();
      },
    },
  };
}

export class BarsChart {
  private plot: uPlot | null = null;
  private observer: ResizeObserver | null = null;

  constructor(private readonly container: HTMLElement) {}

  render(input: BarsInput): void {
    this.destroy();
    const n = input.weightGrad.length;
    const xs = Array.from({ length: n }, (_, i) => i);
    const bars = uPlot.paths.bars!;
    // Two bars per layer side by side; the width factor keeps a gap between layers even at depth 200.
    const series: uPlot.Series[] = [
      { label: 'layer', value: (_u, v) => (v === null ? '' : String(v)) },
      {
        label: 'weight-grad norm ‖dL/dW‖',
        stroke: COLORS.weightGrad,
        fill: COLORS.weightGrad + 'cc',
        width: 0,
        paths: bars({ size: [0.4, 40, 1], align: -1 }),
        fillTo: (u) => u.scales.y!.min!,
        points: { show: false },
        value: (_u, _v, _s, idx) => (idx === null ? '' : fmt(input.rawWeightGrad[idx])),
      },
      {
        label: 'backprop norm ‖∂ℓ/∂h‖',
        stroke: COLORS.backprop,
        fill: COLORS.backprop + 'cc',
        width: 0,
        paths: bars({ size: [0.4, 40, 1], align: 1 }),
        fillTo: (u) => u.scales.y!.min!,
        points: { show: false },
        value: (_u, _v, _s, idx) => (idx === null ? '' : fmt(input.rawBackprop[idx])),
      },
    ];
    const data: uPlot.AlignedData = [xs, input.weightGrad.map(log10), input.backprop.map(log10)];
    if (input.theory) {
      series.push({
        label: 'mean-field prediction',
        stroke: COLORS.theory,
        width: 1.5,
        dash: [6, 4],
        points: { show: n <= 40, size: 4 },
        value: (_u, v) => (v === null ? '' : fmt(10 ** v)),
      });
      data.push(input.theory.map(log10));
    }
    const width = Math.max(320, this.container.clientWidth);
    const opts: uPlot.Options = {
      width,
      height: 320,
      series,
      scales: {
        x: { time: false, range: (_u, min, max) => [min - 0.6, max + 0.6] },
        // Whole decades, with a little room below the smallest bar so it stays visible.
        y: { range: (_u, min, max) => (min === null || max === null ? [-1, 1] : [Math.floor(min - 0.5), Math.max(Math.ceil(max + 0.25), Math.floor(min - 0.5) + 1)]) },
      },
      axes: [
        {
          label: 'layer  (0 = input side  →  output layer)',
          values: (_u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : '')),
          incrs: [1, 2, 5, 10, 20, 50, 100],
          grid: { show: false },
        },
        {
          label: 'norm (log scale)',
          values: (_u, splits) => splits.map((v) => (v === null || v === undefined ? '' : decadeLabel(v))),
          incrs: [1, 2, 3, 5, 10, 20, 50, 100],
          size: 60,
          grid: { stroke: '#e6e6e6', width: 1 },
        },
      ],
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      legend: { live: true },
      plugins: [overlayPlugin(input)],
    };
    this.plot = new uPlot(opts, data, this.container);
    this.observer = new ResizeObserver(() => {
      const w = Math.max(320, this.container.clientWidth);
      if (this.plot && Math.abs(this.plot.width - w) > 4) this.plot.setSize({ width: w, height: 320 });
    });
    this.observer.observe(this.container);
  }

  destroy(): void {
    this.observer?.disconnect();
    this.observer = null;
    this.plot?.destroy();
    this.plot = null;
  }
}
