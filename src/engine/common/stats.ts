// Small numeric helpers for statistics: least-squares log-slope fits, means and spreads.

export interface LogSlopeFit {
  /** d ln(norm) per layer, moving from the output toward the input: < 0 shrinks, > 0 grows. */
  slope: number;
  /** exp(slope): the factor the norm is multiplied by per layer toward the input. */
  factorPerLayer: number;
  /** Coefficient of determination of the straight-line fit (1 = perfectly exponential). */
  r2: number;
  /** Layer indices used (those with a finite, positive norm). */
  layers: number[];
}

/** Fits ln(values[l]) against the distance from the last layer, over finite positive values. */
export function fitLogSlope(values: number[], indices?: number[]): LogSlopeFit | null {
  const idx = indices ?? values.map((_, i) => i);
  const last = values.length - 1;
  const points: [number, number, number][] = [];
  for (const l of idx) {
    const v = values[l]!;
    if (Number.isFinite(v) && v > 0) points.push([last - l, Math.log(v), l]);
  }
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
    syy += (y - my) ** 2;
  }
  const slope = sxy / sxx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, factorPerLayer: Math.exp(slope), r2, layers: points.map((p) => p[2]).sort((a, b) => a - b) };
}

export interface Spread {
  mean: number;
  std: number;
  min: number;
  max: number;
}

export function spreadOf(values: number[]): Spread {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

export function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}
