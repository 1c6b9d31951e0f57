// The API suites run on the deployment GRADLENS_TEST_API_MODE names (test/support/api-mode.ts): this file proves
// it, so that the distributed pass of .ci/run cannot quietly fall back to the embedded queue and store.
import { describe, it, expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { poolApp, tempDir, SMALL_ANALYSIS, getJob } from '../support/jobs.js';
import { DEPLOYMENT, TEST_API_MODE } from '../support/api-mode.js';
import { until } from '../support/until.js';

const EXPECTED = { ...DEPLOYMENT, storeOk: true, queueOk: true };

/** /health's jobs block once the queue has connected (a Redis connection comes up just after the app is ready). */
const healthJobs = (app: FastifyInstance) =>
  until(async () => (await app.inject({ url: '/health' })).json().jobs, (jobs) => jobs.queueOk === true, 10_000, 50);

describe(`the API suite's deployment (${TEST_API_MODE})`, () => {
  it('testApp: /health names the queue and store of this mode, and a job runs through them', async () => {
    const app = await testApp();
    try {
      expect(await healthJobs(app)).toMatchObject(EXPECTED);
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS, headers: { prefer: 'respond-async' } });
      expect(res.statusCode).toBe(202);
      const job = await until(() => getJob(app, res.json().id), (j) => j.status === 'succeeded' || j.status === 'failed', 60_000, 50);
      expect(job.status).toBe('succeeded');
    } finally {
      await app.close();
    }
  });

  it('poolApp: the same on a worker pool', async () => {
    const tmp = tempDir();
    const app = await poolApp(tmp.db(), { jobs: { workers: 1 } });
    try {
      expect(await healthJobs(app)).toMatchObject(EXPECTED);
    } finally {
      await app.close();
      tmp.remove();
    }
  });
});
