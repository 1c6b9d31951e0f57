// Timing helpers for the benchmark: warm-up to steady state, then order statistics of the measured runs.

export interface Timing {
  /** Measured samples in ms, in run order. */
  samples: number[];
  warmup: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
  /**
   * Median CPU time of the whole process per run (user + system, all threads). On a machine shared with
   * other work, wall time measures the neighbours as much as the code; CPU time barely moves with them.
   */
  cpuMedianMs: number;
}

/** Process CPU time in ms (user + system, every thread). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export interface MeasurePlan {
  /** Warm-up runs: at least minWarmup, more until warmupMs has passed, never more than maxWarmup. */
  minWarmup: number;
  maxWarmup: number;
  warmupMs: number;
  /** Measured runs: at least minReps, more until budgetMs has passed, never more than maxReps. */
  minReps: number;
  maxReps: number;
  budgetMs: number;
}

/**
 * Runs `fn` through the plan. The warm-up is counted in runs and bounded in time because the native
 * path needs ~30 runs to reach steady state (JIT, allocator, OpenBLAS buffers) while a stock-cpu W3
 * step takes half a minute.
 */
export async function measure(fn: () => unknown, plan: MeasurePlan): Promise<Timing> {
  const t0 = performance.now();
  let warmup = 0;
  while (warmup < plan.maxWarmup && (warmup < plan.minWarmup || performance.now() - t0 < plan.warmupMs)) {
    await fn();
    warmup++;
  }
  const samples: number[] = [];
  const cpu: number[] = [];
  const t1 = performance.now();
  while (samples.length < plan.maxReps && (samples.length < plan.minReps || performance.now() - t1 < plan.budgetMs)) {
    const c = cpuMs();
    const s = performance.now();
    await fn();
    samples.push(performance.now() - s);
    cpu.push(cpuMs() - c);
  }
  return { samples, warmup, medianMs: quantile(samples, 0.5), p95Ms: quantile(samples, 0.95), minMs: Math.min(...samples), cpuMedianMs: quantile(cpu, 0.5) };
}

/** Plans scaled by the expected cost of one run: cheap runs get many repetitions, expensive ones a few. */
export function planFor(expectedMs: number, quick: boolean): MeasurePlan {
  const scale = quick ? 0.3 : 1;
  return {
    minWarmup: expectedMs > 3000 ? 1 : expectedMs > 500 ? 3 : 30,
    maxWarmup: 60,
    warmupMs: 4000 * scale,
    minReps: expectedMs > 3000 ? 3 : 5,
    maxReps: 300,
    budgetMs: Math.max(3000, Math.min(20000, expectedMs * 40)) * scale,
  };
}
