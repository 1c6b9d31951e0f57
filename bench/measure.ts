// Timing helpers for the benchmark: warm-up to steady state, one timed sample (wall and CPU), order statistics.

/** One timed run of a workload's unit of work: wall time and the process's CPU time (all threads). */
export interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** Process CPU time in ms (user + system, every thread: HTTP, workers, GC). */
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

export interface WarmupPlan {
  /** At least minWarmup runs, more until warmupMs has passed, never more than maxWarmup. */
  minWarmup: number;
  maxWarmup: number;
  warmupMs: number;
}

/**
 * Counted in runs and bounded in time because the native path needs ~30 runs to reach steady state (JIT,
 * allocator, OpenBLAS buffers) while one W3 step on wasm takes a second. bench/torch_reference.py's
 * plan() is the same.
 */
export function planFor(expectedMs: number, quick: boolean): WarmupPlan {
  return {
    minWarmup: expectedMs > 3000 ? 1 : expectedMs > 200 ? 3 : 30,
    maxWarmup: 60,
    warmupMs: 4000 * (quick ? 0.3 : 1),
  };
}

/** Runs `fn` through the warm-up plan; returns how many runs it took. */
export async function warmUp(fn: () => unknown, plan: WarmupPlan): Promise<number> {
  const t0 = performance.now();
  let runs = 0;
  while (runs < plan.maxWarmup && (runs < plan.minWarmup || performance.now() - t0 < plan.warmupMs)) {
    await fn();
    runs++;
  }
  return runs;
}

export async function timeOnce(fn: () => unknown): Promise<Sample> {
  const c = cpuMs();
  const s = performance.now();
  await fn();
  return { wallMs: performance.now() - s, cpuMs: cpuMs() - c };
}
