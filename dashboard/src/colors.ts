// Colour scales: viridis for magnitudes (perceptually even, readable in grey), a diverging scale for ratios, verdict colours.

// Viridis sampled at 9 stops; interpolated linearly in between.
const VIRIDIS: [number, number, number][] = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

function lerp(stops: [number, number, number][], t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

const rgb = ([r, g, b]: [number, number, number]): string => `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;

export function viridis(t: number): string {
  return rgb(lerp(VIRIDIS, t));
}

/** Blue below 1 (the gradient shrinks toward the input), white at 1, red above; saturates at ±`decades`. */
export function ratioColor(log10Ratio: number, decades = 6): string {
  const t = Math.max(-1, Math.min(1, log10Ratio / decades));
  const white: [number, number, number] = [247, 247, 247];
  const blue: [number, number, number] = [33, 102, 172];
  const red: [number, number, number] = [178, 24, 43];
  return rgb(lerp(t < 0 ? [white, blue] : [white, red], Math.abs(t)));
}

export const VERDICT_COLORS: Record<string, string> = {
  vanishing: '#2f6db5',
  exploding: '#c0392b',
  healthy: '#2e8b57',
  zero_by_design: '#7d6bb3',
};

/** Cells the scale cannot place: NaN / infinite and exactly zero get their own, legend-listed colours. */
export const NONFINITE_COLOR = '#ff2fb3';
export const ZERO_COLOR = '#2a2a2a';
export const EMPTY_COLOR = '#f1f1f1';
