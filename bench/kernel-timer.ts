// Wraps every kernel registered for a tfjs backend with a timer: where a profile script's time goes, kernel by kernel.
import * as tf from '@tensorflow/tfjs';

export type KernelTable = Map<string, { calls: number; ms: number }>;

/** From now on every kernel of `backend` adds its calls and milliseconds to the returned table. */
export function timeKernels(backend: string): KernelTable {
  const table: KernelTable = new Map();
  for (const k of tf.getKernelsForBackend(backend)) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: ((args: Parameters<typeof inner>[0]) => {
        const t0 = performance.now();
        const out = inner(args);
        const row = table.get(k.kernelName) ?? { calls: 0, ms: 0 };
        row.calls++;
        row.ms += performance.now() - t0;
        table.set(k.kernelName, row);
        return out;
      }) as typeof inner,
    });
  }
  return table;
}

/** Prints the table per run (`runs` of them), largest first, rows under `minMs` left out; returns the kernel total per run. */
export function printKernelTable(table: KernelTable, runs: number, minMs = 0): number {
  let total = 0;
  for (const [name, r] of [...table].sort((a, b) => b[1].ms - a[1].ms)) {
    total += r.ms;
    if (r.ms / runs >= minMs) console.log(`  ${name.padEnd(24)} ${(r.calls / runs).toFixed(0).padStart(5)} calls ${(r.ms / runs).toFixed(2).padStart(9)} ms`);
  }
  return total / runs;
}
