// GET /v1/theory runs on a compute worker, not the HTTP thread: same answer as in-process, same 400s.
import { describe, it, expect, afterAll } from 'vitest';
import { poolApp, tempDir } from '../support/jobs.js';
import { testApp } from '../support/app.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('GET /v1/theory on a worker pool', () => {
  it('answers what the in-process runner answers, and a bad activation is still a 400 naming the field', async () => {
    const pool = await poolApp(tmp.db(), { jobs: { workers: 1 } });
    const local = await testApp({ security: { rateLimitMax: 0 } });
    try {
      const url = '/v1/theory?activation=tanh&sigmaW2=2&depth=30';
      const fromWorker = await pool.inject({ url });
      const inProcess = await local.inject({ url });
      expect(fromWorker.statusCode).toBe(200);
      expect(fromWorker.json()).toEqual(inProcess.json());
      // tanh with σ_w² = 2 is chaotic: χ₁ = 1.106 at q* = 0.618 (reference §3).
      expect(fromWorker.json().chi1).toBeCloseTo(1.106, 3);
      expect(fromWorker.json().qStar).toBeCloseTo(0.618, 3);
      const bad = await pool.inject({ url: '/v1/theory?activation=relux&sigmaW2=2' });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: 'INVALID_SPEC', field: 'activation' });
    } finally {
      await pool.close();
      await local.close();
    }
  });
});
