// The contract: every operation answers each status it can give with a body that validates against the schema
// it declares for that status (the test apps' onSend check), and a planted mismatch is caught.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance, FastifyReply, LightMyRequestResponse } from 'fastify';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testApp, TEST_BACKEND } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { violations, enforceContract } from '../support/contract.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { JobSchema } from '../../src/schemas/jobs.js';
import { jobView } from '../../src/jobs/http.js';

const SMALL = { network: { depth: 3, width: 4 }, data: { source: 'xor', samples: 32, batchSize: 16 } };
const TRAINING = { ...SMALL, steps: 4, recordEvery: 2 };
const SWEEP = { base: SMALL, grid: { 'network.activation': ['relu', 'tanh'] } };

/** status → operations that answered it, so the test can say what it covered. */
const covered = new Map<string, Set<number>>();
function seen(op: string, res: LightMyRequestResponse, status: number): LightMyRequestResponse {
  expect(res.statusCode, `${op}: ${res.body.slice(0, 300)}`).toBe(status);
  if (!covered.has(op)) covered.set(op, new Set());
  covered.get(op)!.add(status);
  return res;
}

async function until(app: FastifyInstance, id: string, status: string): Promise<Record<string, any>> {
  for (let i = 0; i < 400; i++) {
    const job = (await app.inject({ url: `/v1/jobs/${id}` })).json();
    if (job.status === status) return job;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`job ${id} never became ${status}`);
}

describe('every operation × status against its declared schema', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    violations.length = 0;
    app = await testApp({ security: { rateLimitMax: 0 } });
  });
  afterAll(async () => app.close());

  it('operations: health, readiness, metrics, 413 before any body is read', async () => {
    seen('getHealth', await app.inject({ url: '/health' }), 200);
    const ready = await app.inject({ url: '/ready' });
    seen('getReadiness', ready, ready.statusCode === 200 ? 200 : 503);
    seen('getMetrics', await app.inject({ url: '/metrics' }), 200);
    seen('getHealth', await app.inject({ url: '/health', headers: { 'content-length': String(1 << 30) } }), 413);
  });

  it('analyses: 200 (a succeeded analysis job), 202 (pending), 400, 415, 422', async () => {
    const ok = seen('createAnalysis', await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...TEXTBOOK_CHAIN, expect: { verdict: 'vanishing' } } }), 200).json();
    expect(ok).toMatchObject({ kind: 'analysis', status: 'succeeded', result: { passed: true } });
    const queued = seen('createAnalysis', await app.inject({ method: 'POST', url: '/v1/analyses', headers: { prefer: 'respond-async' }, payload: SMALL }), 202);
    expect(queued.json().result).toBeUndefined();
    await until(app, queued.json().id, 'succeeded');
    seen('createAnalysis', await app.inject({ method: 'POST', url: '/v1/analyses', payload: { network: { depth: 2, activation: 'relux' }, data: { source: 'iris' } } }), 400);
    seen('createAnalysis', await app.inject({ method: 'POST', url: '/v1/analyses', headers: { 'content-type': 'application/xml' }, payload: '<spec/>' }), 415);
    seen('createAnalysis', await app.inject({ method: 'POST', url: '/v1/analyses', payload: { network: { depth: 150, width: 4096 }, data: { source: 'mnist', batchSize: 4096, batches: 64 } } }), 422);
  });

  it('trainings and sweeps: 202, 400, 422; their succeeded jobs carry typed results', async () => {
    const t = seen('createTraining', await app.inject({ method: 'POST', url: '/v1/trainings', payload: TRAINING }), 202).json();
    const s = seen('createSweep', await app.inject({ method: 'POST', url: '/v1/sweeps', payload: { ...SWEEP, expect: { maxNonFinite: 0 } } }), 202).json();
    seen('createTraining', await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...TRAINING, steps: 0 } }), 400);
    seen('createTraining', await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...TRAINING, network: { depth: 50, width: 2048 }, steps: 1_000_000, recordEvery: 10_000 } }), 422);
    seen('createSweep', await app.inject({ method: 'POST', url: '/v1/sweeps', payload: { base: SMALL, grid: {} } }), 400);
    seen('createSweep', await app.inject({ method: 'POST', url: '/v1/sweeps', payload: { base: SMALL, grid: { 'network.depth': Array.from({ length: 65 }, (_, i) => i + 1) } } }), 422);
    const training = await until(app, t.id, 'succeeded');
    expect(training.result.records[0].layers[0].weightGradNorm).toBeTypeOf('number');
    const sweep = await until(app, s.id, 'succeeded');
    expect(sweep.result.rows).toHaveLength(2);
    expect(sweep.result.cells).toHaveLength(2);
    seen('getJob', await app.inject({ url: `/v1/jobs/${t.id}` }), 200);
    seen('getSweepCsv', await app.inject({ url: `/v1/jobs/${s.id}/result.csv` }), 200);
    seen('getSweepCsv', await app.inject({ url: `/v1/jobs/${t.id}/result.csv` }), 404);
    seen('streamJobEvents', await app.inject({ url: `/v1/jobs/${s.id}/events` }), 200);
    seen('streamJobEvents', await app.inject({ url: '/v1/jobs/nope/events' }), 404);
  });

  it('jobs: list 200/400, get 200/304/404, cancel 200/409/404, delete 200/204/404/412, csv 409', async () => {
    seen('listJobs', await app.inject({ url: '/v1/jobs?limit=5&kind=analysis' }), 200);
    seen('listJobs', await app.inject({ url: '/v1/jobs?kind=Analysis' }), 400);
    const first = (await app.inject({ url: '/v1/jobs?limit=1' })).json().jobs[0];
    const got = seen('getJob', await app.inject({ url: `/v1/jobs/${first.id}` }), 200);
    seen('getJob', await app.inject({ url: `/v1/jobs/${first.id}`, headers: { 'if-none-match': String(got.headers.etag) } }), 304);
    seen('getJob', await app.inject({ url: '/v1/jobs/nope' }), 404);
    seen('cancelJob', await app.inject({ method: 'POST', url: `/v1/jobs/${first.id}/cancel` }), 409);
    seen('cancelJob', await app.inject({ method: 'POST', url: '/v1/jobs/nope/cancel' }), 404);
    seen('deleteJob', await app.inject({ method: 'DELETE', url: `/v1/jobs/${first.id}`, headers: { 'if-match': '"stale"' } }), 412);
    seen('deleteJob', await app.inject({ method: 'DELETE', url: `/v1/jobs/${first.id}` }), 204);
    seen('deleteJob', await app.inject({ method: 'DELETE', url: `/v1/jobs/${first.id}` }), 404);
    // A long training, canceled while queued or running: 200 with the canceled (unsuccessful) job.
    const long = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...TRAINING, steps: 100_000, recordEvery: 10_000 } })).json();
    const canceledSweep = (await app.inject({ method: 'POST', url: '/v1/sweeps', payload: SWEEP })).json();
    const sweepCanceled = seen('cancelJob', await app.inject({ method: 'POST', url: `/v1/jobs/${canceledSweep.id}/cancel` }), 200).json();
    expect(sweepCanceled).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });
    seen('getSweepCsv', await app.inject({ url: `/v1/jobs/${canceledSweep.id}/result.csv` }), 409);
    seen('deleteJob', await app.inject({ method: 'DELETE', url: `/v1/jobs/${long.id}` }), 200);
  });

  it('theory: 200 and 400', async () => {
    seen('getTheory', await app.inject({ url: '/v1/theory?activation=tanh&sigmaW2=1&depth=10' }), 200);
    seen('getTheory', await app.inject({ url: '/v1/theory?activation=tanh&sigmaW2=1&depth=abc' }), 400);
  });

  it('found no response outside its declared schema', () => {
    expect(violations).toEqual([]);
    expect(covered.size).toBe(13);
  });
});

describe('the plugins\' answers: 401 and 429 are declared and validate', () => {
  it('401 without a key, 429 past the rate limit', async () => {
    const app = await testApp({ security: { apiKeys: ['k'.repeat(32)], rateLimitMax: 2, rateLimitCreateMax: 0, authFailureMax: 0 } });
    try {
      seen('listJobs', await app.inject({ url: '/v1/jobs' }), 401);
      const auth = { authorization: `Bearer ${'k'.repeat(32)}` };
      await app.inject({ url: '/v1/jobs', headers: auth });
      await app.inject({ url: '/v1/jobs', headers: auth });
      const limited = seen('listJobs', await app.inject({ url: '/v1/jobs', headers: auth }), 429);
      expect(limited.headers['retry-after']).toBeDefined();
      expect(violations).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

describe('a planted mismatch', () => {
  it('fails with CONTRACT_VIOLATION: an extra result field, a missing field, an undeclared status', async () => {
    const config = loadConfig({}, { backend: TEST_BACKEND, jobs: { workers: 0, db: ':memory:' } });
    const app = await buildApp(config, { logger: false });
    let view: Record<string, any> = {};
    app.get('/v1/planted/:what', { schema: { response: { 200: JobSchema } } }, async (request, reply) => {
      const what = (request.params as { what: string }).what;
      if (what === 'extra') return { ...view, result: { ...view.result, surprise: 1 } };
      if (what === 'missing') { const { cost: _cost, ...rest } = view; return rest; }
      if (what === 'status') return (reply as FastifyReply).code(418).send({ statusCode: 418 });
      return view;
    });
    enforceContract(app);
    await app.ready();
    try {
      const good = (await app.inject({ method: 'POST', url: '/v1/analyses', payload: TEXTBOOK_CHAIN })).json();
      view = jobView((await app.jobs.get(good.id))!) as Record<string, any>;
      violations.length = 0;
      expect((await app.inject({ url: '/v1/planted/none' })).statusCode).toBe(200);
      for (const what of ['extra', 'missing', 'status']) {
        const res = await app.inject({ url: `/v1/planted/${what}` });
        expect(res.statusCode).toBe(500);
        expect(res.json().code).toBe('CONTRACT_VIOLATION');
      }
      expect(violations.map((v) => v.errors)).toEqual([
        expect.stringMatching(/must NOT have additional properties|must match a schema in anyOf/),
        expect.stringMatching(/must have required property 'cost'|must match a schema in anyOf/),
        expect.stringMatching(/status 418 is not declared/),
      ]);
    } finally {
      violations.length = 0;
      await app.close();
    }
  });
});

describe('Redocly', () => {
  it('reports 0 errors and 0 warnings with its recommended ruleset on the served document', async () => {
    const app = await testApp();
    const doc = (await app.inject({ url: '/openapi.json' })).body;
    await app.close();
    const dir = mkdtempSync(join(tmpdir(), 'gradlens-redocly-'));
    writeFileSync(join(dir, 'openapi.json'), doc);
    const bin = new URL('../../node_modules/.bin/redocly', import.meta.url).pathname;
    let output = '';
    try {
      output = execFileSync(bin, ['lint', '--extends=recommended', '--format=summary', join(dir, 'openapi.json')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`redocly lint failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    expect(output).not.toMatch(/warning|error/i);
  }, 60_000);
});
