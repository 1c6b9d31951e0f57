// PyTorch float64 oracles for the gradchecks: a reference script in test/support run by Debian's PyTorch
// (/usr/bin/python3; the python3 on PATH may lack torch) with the request on stdin and its JSON answer on
// stdout, and the relative-error check the gradchecks share.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const TORCH_PYTHON = '/usr/bin/python3';

/** Runs test/support/<script> on `body`: its parsed answer, or an error carrying its stderr. */
export function torchOracle<T>(script: string, body: unknown): T {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const run = spawnSync(TORCH_PYTHON, [path], { input: JSON.stringify(body), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`${script} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** |actual − expected| / |expected| below rtol, the message naming both numbers. */
export function expectRelClose(actual: number, expected: number, rtol: number, what: string): void {
  expect(Math.abs(actual - expected) / Math.abs(expected), `${what}: gradlens ${actual} vs PyTorch float64 ${expected}`).toBeLessThan(rtol);
}
