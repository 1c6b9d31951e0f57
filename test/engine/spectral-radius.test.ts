// theory/recurrent-theory.ts's spectralRadius (Gelfand squaring, stopped early at a fixed point) against
// independent oracles: closed forms (scaled orthogonal and rotation blocks, triangular matrices) and
// numpy.linalg.eigvals in float64 for random matrices, whose dominant eigenvalue may be real or a complex pair.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { spectralRadius } from '../../src/engine/theory/recurrent-theory.js';
import { Rng } from '../../src/engine/common/random.js';

const PYTHON = process.env.GRADLENS_TEST_PYTHON ?? '/usr/bin/python3';

function numpyRadius(A: Float64Array, n: number): number {
  const code = 'import json,sys,numpy as np; a=np.array(json.load(sys.stdin)).reshape(N,N); print(repr(float(max(abs(np.linalg.eigvals(a))))))'.replace(/N/g, String(n));
  const run = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(Array.from(A)), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${PYTHON} with numpy failed: ${run.stderr}`);
  return Number(run.stdout.trim());
}

/** Block-diagonal 2×2 rotations r_i·R(θ_i): eigenvalues r_i·e^{±iθ_i}, all complex. */
function rotations(radii: number[], rng: Rng): Float64Array {
  const n = 2 * radii.length;
  const A = new Float64Array(n * n);
  radii.forEach((r, b) => {
    const th = 0.3 + 2 * rng.uniform();
    const i = 2 * b;
    A[i * n + i] = r * Math.cos(th); A[i * n + i + 1] = -r * Math.sin(th);
    A[(i + 1) * n + i] = r * Math.sin(th); A[(i + 1) * n + i + 1] = r * Math.cos(th);
  });
  return A;
}

describe('spectralRadius', () => {
  it('is max r_i for rotation blocks (complex eigenvalues, no fixed point unless the radii are equal)', () => {
    const rng = new Rng(3);
    expect(spectralRadius(rotations([0.5, 0.9, 0.7], rng), 6)).toBeCloseTo(0.9, 12);
    expect(spectralRadius(rotations([1.1, 1.1, 1.1, 1.1], rng), 8)).toBeCloseTo(1.1, 12);
  });

  it('is max |d_i| for a non-normal triangular matrix (large off-diagonal entries)', () => {
    const n = 12, rng = new Rng(4);
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) A[i * n + j] = i === j ? (i % 2 ? -1 : 1) * (0.2 + 0.05 * i) : 3 * rng.normal();
    expect(spectralRadius(A, n)).toBeCloseTo(0.2 + 0.05 * 11, 6);
  });

  it('agrees with numpy.linalg.eigvals on random Gaussian matrices', () => {
    for (const [seed, n] of [[1, 16], [2, 33], [5, 64], [6, 128]] as const) {
      const rng = new Rng(seed);
      const A = Float64Array.from({ length: n * n }, () => rng.normal() / Math.sqrt(n));
      const expected = numpyRadius(A, n);
      expect(Math.abs(spectralRadius(A, n) - expected) / expected, `seed ${seed}, n ${n}`).toBeLessThan(1e-9);
    }
  });
});
