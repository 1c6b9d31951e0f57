// The job life cycle over HTTP, on worker threads and a real SQLite file: create, poll with 304, list, SSE, sweeps and CSV, cancel, queue full.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ENDLESS_ANALYSIS, ENDLESS_TRAINING, SHORT_TRAINING, SMALL_ANALYSIS, getJob, poolApp, readEvents, tempDir, type SseEvent } from '../support/jobs.js';
import { until } from '../support/until.js';
import { DEPLOYMENT } from '../support/api-mode.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('jobs on two workers', () => {
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    app = await poolApp(tmp.db('lifecycle.db'), { jobs: { workers: 2 } }, { sseKeepAliveMs: 200 });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  const finished = (id: string) => until(() => getJob(app, id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status));

  it('stores a synchronous analysis as a job: its id gives the same result at GET /v1/jobs/{id}', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ kind: 'analysis', status: 'succeeded', progress: 1, attempts: 1 });
    expect(body.environment.backend).toBe('wasm');
    expect(res.headers['content-location']).toBe(`/v1/jobs/${body.id}`);
    const job = await getJob(app, body.id);
    expect(job.result).toEqual(body.result);
    expect(job.spec).toEqual(body.spec);
    expect(job.environment).toEqual(body.environment);
  });

  it('answers Prefer: respond-async with 202, Location and the queued job', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS, headers: { prefer: 'wait=10, respond-async' } });
    expect(res.statusCode).toBe(202);
    expect(res.headers['preference-applied']).toBe('respond-async');
    const body = res.json();
    expect(res.headers.location).toBe(`/v1/jobs/${body.id}`);
    expect(body).toMatchObject({ kind: 'analysis', status: 'queued', progress: 0, startedAt: null, links: { self: `/v1/jobs/${body.id}` } });
    const done = await finished(body.id);
    expect(done.status).toBe('succeeded');
    expect(done.result.layers).toHaveLength(3);
  });

  it('refuses bad or too costly work synchronously (400, 422) and stores nothing', async () => {
    const before = (await app.inject({ url: '/v1/jobs?limit=100' })).json().jobs.length;
    const bad = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...SHORT_TRAINING, network: { depth: 3, activation: 'nope' } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('INVALID_SPEC');
    const costly = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...SHORT_TRAINING, network: { depth: 50, width: 2048 }, steps: 1_000_000, recordEvery: 10_000 } });
    expect(costly.statusCode).toBe(422);
    const misplaced = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...SMALL_ANALYSIS, expect: { learns: true } } });
    expect(misplaced.statusCode).toBe(400);
    expect(misplaced.json().field).toBe('expect.learns');
    const sweep = await app.inject({ method: 'POST', url: '/v1/sweeps', payload: { base: SMALL_ANALYSIS, grid: { 'network.depth': Array.from({ length: 65 }, (_, i) => i + 1) } } });
    expect(sweep.statusCode).toBe(422);
    expect((await app.inject({ url: '/v1/jobs?limit=100' })).json().jobs.length).toBe(before);
  });

  it('runs a training: 202 + Location, polls with a strong ETag and 304, then the result with checks', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...SHORT_TRAINING, expect: { maxNonFinite: 0 } } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    expect(res.headers.location).toBe(`/v1/jobs/${id}`);
    const first = await app.inject({ url: `/v1/jobs/${id}` });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);

    const done = await finished(id);
    expect(done.status).toBe('succeeded');
    expect(done.progress).toBe(1);
    expect(done.result.records.map((r: { step: number }) => r.step)).toEqual([0, 10, 20, 30, 40]);
    expect(done.result.checks).toEqual([{ name: 'maxNonFinite', expected: 0, actual: 0, passed: true }]);
    expect(done.result.passed).toBe(true);
    expect(done.expect).toEqual({ maxNonFinite: 0 });
    expect(done.spec.steps).toBe(40);

    const now = await app.inject({ url: `/v1/jobs/${id}` });
    expect(now.headers.etag).not.toBe(etag);
    const again = await app.inject({ url: `/v1/jobs/${id}`, headers: { 'if-none-match': now.headers.etag as string } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const stale = await app.inject({ url: `/v1/jobs/${id}`, headers: { 'if-none-match': etag } });
    expect(stale.statusCode).toBe(200);
  });

  it('lists jobs newest first, filters by kind and status, and pages with a cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...SMALL_ANALYSIS, seed: i } })).json().id);
    }
    const page1 = (await app.inject({ url: '/v1/jobs?kind=analysis&status=succeeded&limit=2' })).json();
    expect(page1.jobs.map((j: { id: string }) => j.id)).toEqual([ids[2], ids[1]]);
    expect(page1.jobs[0].result).toBeUndefined();
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = (await app.inject({ url: `/v1/jobs?kind=analysis&status=succeeded&limit=2&cursor=${page1.nextCursor}` })).json();
    expect(page2.jobs[0].id).toBe(ids[0]);
    const trainings = (await app.inject({ url: '/v1/jobs?kind=training' })).json().jobs;
    expect(trainings.every((j: { kind: string }) => j.kind === 'training')).toBe(true);
    expect((await app.inject({ url: '/v1/jobs?kind=nope' })).statusCode).toBe(400);
    expect((await app.inject({ url: '/v1/jobs?cursor=bogus' })).statusCode).toBe(400);
  });

  it('answers 404 for unknown jobs; DELETE of a finished job deletes it and its result (204), then it is 404', async () => {
    expect((await app.inject({ url: '/v1/jobs/nope' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: '/v1/jobs/nope' })).statusCode).toBe(404);
    const { id } = (await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS })).json();
    const before = (await app.inject({ url: '/metrics' })).body;
    const res = await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect((await app.inject({ url: `/v1/jobs/${id}` })).statusCode).toBe(404);
    expect((await app.inject({ url: '/v1/jobs?limit=100' })).json().jobs.map((j: { id: string }) => j.id)).not.toContain(id);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).statusCode).toBe(404);
    const deleted = (text: string) => Number(/^gradlens_store_jobs_deleted_total\{reason="request"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    expect(deleted((await app.inject({ url: '/metrics' })).body) - deleted(before)).toBe(1);
  });

  it('DELETE with If-Match acts only on the representation seen: a job that finished since is neither canceled nor deleted (412)', async () => {
    const { id } = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: SHORT_TRAINING })).json();
    const seen = await app.inject({ url: `/v1/jobs/${id}` });
    const etag = seen.headers.etag as string;
    expect(seen.json().status).not.toBe('succeeded');
    await finished(id);
    const refused = await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: { 'if-match': etag } });
    expect(refused.statusCode).toBe(412);
    expect(refused.json()).toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect((await getJob(app, id)).status).toBe('succeeded');
    const current = (await app.inject({ url: `/v1/jobs/${id}` })).headers.etag as string;
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}`, headers: { 'if-match': current } })).statusCode).toBe(204);
  });

  it('streams a training as server-sent events, in order: state, records with progress, done; then closes', async () => {
    const spec = { ...SHORT_TRAINING, steps: 200, recordEvery: 20 };
    const { id } = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: spec })).json();
    const res = await fetch(`${base}/v1/jobs/${id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events: SseEvent[] = [];
    for await (const event of readEvents(res.body!)) events.push(event);

    expect(events[0]!.event).toBe('state');
    expect(events[0]!.data.id).toBe(id);
    expect(events.at(-1)!.event).toBe('done');
    expect(events.at(-1)!.data.status).toBe('succeeded');
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const records = events.filter((e) => e.event === 'record');
    expect(records.map((e) => e.data.record.step)).toEqual([0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
    expect(records[0]!.data.record.layers).toHaveLength(3);
    const progress = events.filter((e) => e.event === 'record' || e.event === 'progress').map((e) => e.data.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(1);
    expect(events.at(-1)!.data.result.records).toHaveLength(11);
  });

  it('sends the state and the final event of a finished job, then closes', async () => {
    const { id } = (await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS })).json();
    const res = await fetch(`${base}/v1/jobs/${id}/events`);
    const events: SseEvent[] = [];
    for await (const event of readEvents(res.body!)) events.push(event);
    expect(events.map((e) => e.event)).toEqual(['state', 'done']);
    expect(events[1]!.data.result.layers).toHaveLength(3);
    expect((await fetch(`${base}/v1/jobs/nope/events`)).status).toBe(404);
  });

  it('runs a sweep over activations × inits across the workers: full table, CSV and checks', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sweeps',
      payload: {
        base: { network: { depth: 6, width: 16 }, data: { source: 'moons', batchSize: 32 } },
        grid: { 'network.activation': ['relu', 'tanh', 'sigmoid'], 'network.init.weights.name': ['he_normal', 'glorot_uniform'] },
        expect: { maxNonFinite: 0 },
      },
    });
    expect(res.statusCode).toBe(202);
    const { id, links } = res.json();
    expect(links.csv).toBe(`/v1/jobs/${id}/result.csv`);
    expect((await app.inject({ url: links.csv })).statusCode).toBeGreaterThanOrEqual(200);
    const done = await finished(id);
    expect(done.status).toBe('succeeded');
    expect(done.progress).toBe(1);
    const { rows, paths, cellCount } = done.result;
    expect(paths).toEqual(['network.activation', 'network.init.weights.name']);
    expect(cellCount).toBe(6);
    expect(rows.map((r: { values: Record<string, string> }) => Object.values(r.values).join('/'))).toEqual([
      'relu/he_normal', 'relu/glorot_uniform', 'tanh/he_normal', 'tanh/glorot_uniform', 'sigmoid/he_normal', 'sigmoid/glorot_uniform',
    ]);
    for (const row of rows) expect(Number(row.firstToLastRatio)).toBeGreaterThan(0);
    expect(done.result.passed).toBe(true);
    expect(done.result.cells).toHaveLength(6);

    const csv = await app.inject({ url: `/v1/jobs/${id}/result.csv` });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split(/\r?\n/);
    expect(lines).toHaveLength(7);
    expect(lines[0]!.split(',').slice(0, 4)).toEqual(['index', 'network.activation', 'network.init.weights.name', 'verdict']);
    expect(lines[3]!.startsWith('2,tanh,he_normal,')).toBe(true);

    const analysis = (await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS })).json();
    expect((await app.inject({ url: `/v1/jobs/${analysis.id}/result.csv` })).statusCode).toBe(404);
  });
});

describe('cancellation and a full queue (one worker, queue limit 1)', () => {
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    app = await poolApp(tmp.db('cancel.db'), { jobs: { workers: 1, queueLimit: 1 } });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers 503 with Retry-After when the queue is full, and cancels queued and running jobs promptly', async () => {
    const a = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: ENDLESS_TRAINING })).json();
    await until(() => getJob(app, a.id), (j) => j.status === 'running');
    const b = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: ENDLESS_TRAINING })).json();
    expect(b.status).toBe('queued');

    for (const [url, payload] of [['/v1/trainings', SHORT_TRAINING], ['/v1/analyses', SMALL_ANALYSIS]] as const) {
      const full = await app.inject({ method: 'POST', url, payload });
      expect(full.statusCode).toBe(503);
      expect(full.json().code).toBe('QUEUE_FULL');
      expect(Number(full.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const health = (await app.inject({ url: '/health' })).json();
    expect(health.jobs).toEqual({ workers: 1, running: 1, queued: 1, queueLimit: 1, ...DEPLOYMENT, storeOk: true, queueOk: true });

    // Queued: removed from the queue at once (the dashboard's cancel, which can never delete).
    const cancelB = await app.inject({ method: 'POST', url: `/v1/jobs/${b.id}/cancel` });
    expect(cancelB.statusCode).toBe(200);
    expect(cancelB.json()).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });

    // Running: its event stream ends with `canceled`, and the only worker is free again soon after.
    const stream = await fetch(`${base}/v1/jobs/${a.id}/events`);
    const events: SseEvent[] = [];
    const reading = (async () => { for await (const e of readEvents(stream.body!)) events.push(e); })();
    await until(async () => events.length, (n) => n > 0);
    const t0 = performance.now();
    const cancelA = await app.inject({ method: 'DELETE', url: `/v1/jobs/${a.id}` });
    expect(cancelA.statusCode).toBe(200);
    expect(cancelA.json().status).toBe('canceled');
    await reading;
    expect(events[0]!.event).toBe('state');
    expect(events.at(-1)!.event).toBe('canceled');
    const next = await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS });
    expect(next.statusCode).toBe(200);
    // A training step here takes milliseconds; the bound only guards against waiting for the whole run.
    expect(performance.now() - t0).toBeLessThan(5000);

    expect((await getJob(app, a.id)).status).toBe('canceled');
    const canceled = () => app.inject({ url: '/v1/jobs?status=canceled' }).then((r) => r.json().jobs.map((j: { id: string }) => j.id));
    expect(await canceled()).toEqual([b.id, a.id]);
    // A late cancel of a finished job changes nothing (409) and deletes nothing; a second DELETE deletes.
    const late = await app.inject({ method: 'POST', url: `/v1/jobs/${a.id}/cancel` });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ code: 'JOB_FINISHED', status: 'canceled' });
    expect((await getJob(app, a.id)).status).toBe('canceled');
    expect((await app.inject({ method: 'POST', url: '/v1/jobs/nope/cancel' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${a.id}` })).statusCode).toBe(204);
    expect(await canceled()).toEqual([b.id]);
  });
});

describe('a job timeout (GRADLENS_JOB_TIMEOUT_MS)', () => {
  it('fails a job that runs too long with code TIMEOUT and frees its worker', async () => {
    const app = await poolApp(tmp.db('timeout.db'), { jobs: { workers: 1, timeoutMs: 500 } });
    try {
      const { id } = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: ENDLESS_TRAINING })).json();
      const job = await until(() => getJob(app, id), (j) => j.status === 'failed');
      expect(job.error.code).toBe('TIMEOUT');
      expect(job.error.message).toMatch(/GRADLENS_JOB_TIMEOUT_MS/);
      expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('answers a synchronous analysis past the timeout with 504 naming GRADLENS_JOB_TIMEOUT_MS, not 500', async () => {
    const app = await poolApp(tmp.db('timeout-sync.db'), { jobs: { workers: 1, timeoutMs: 300 } });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: ENDLESS_ANALYSIS });
      expect(res.statusCode).toBe(504);
      const body = res.json();
      expect(body).toMatchObject({ statusCode: 504, code: 'TIMEOUT', error: 'Gateway Timeout', limit: 'GRADLENS_JOB_TIMEOUT_MS' });
      expect(body.message).toMatch(/GRADLENS_JOB_TIMEOUT_MS \(300 ms\)/);
      expect(res.headers.location).toBe(`/v1/jobs/${body.jobId}`);
      expect((await getJob(app, body.jobId)).error.code).toBe('TIMEOUT');
    } finally {
      await app.close();
    }
  });
});

describe('Retry-After of a full queue', () => {
  /** A few hundred milliseconds on one native worker (about 4e9 FLOPs), so the drain of 9 takes seconds on every backend. */
  const MEDIUM_ANALYSIS = { network: { depth: 8, width: 256 }, data: { source: 'moons', batchSize: 256, batches: 4 } } as const;
  const LIMIT = 8;

  /** Fills the queue (one running, LIMIT waiting), reads the refusal's Retry-After, then times the real drain. */
  async function refusalAndDrain(app: FastifyInstance): Promise<{ retryAfter: number; drainSeconds: number }> {
    const ids: string[] = [];
    for (let i = 0; i <= LIMIT; i++) {
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...MEDIUM_ANALYSIS, seed: i }, headers: { prefer: 'respond-async' } });
      expect(res.statusCode).toBe(202);
      ids.push(res.json().id);
      // The first one runs before the others queue: at once in-process, after a worker's fetch through Redis.
      if (i === 0) await until(() => getJob(app, ids[0]!), (j) => j.status !== 'queued', 30_000, 10);
    }
    const refused = await app.inject({ method: 'POST', url: '/v1/analyses', payload: MEDIUM_ANALYSIS });
    const t0 = performance.now();
    expect(refused.statusCode).toBe(503);
    expect(refused.json().code).toBe('QUEUE_FULL');
    const retryAfter = Number(refused.headers['retry-after']);
    expect(refused.json().retryAfter).toBe(retryAfter);
    for (const id of ids) await until(() => getJob(app, id), (j) => j.status === 'succeeded', 120_000, 20);
    return { retryAfter, drainSeconds: (performance.now() - t0) / 1000 };
  }

  it('estimates the drain from measured run times: within a factor of 3 of the real drain (with the 1 s floor of whole seconds)', async () => {
    const app = await poolApp(tmp.db('retry-after.db'), { jobs: { workers: 1, queueLimit: LIMIT } });
    try {
      // A few jobs have run: the estimate has measurements to go on.
      for (let i = 0; i < 4; i++) expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: MEDIUM_ANALYSIS })).statusCode).toBe(200);
      const { retryAfter, drainSeconds } = await refusalAndDrain(app);
      expect(drainSeconds).toBeGreaterThan(1);
      expect(retryAfter).toBeGreaterThanOrEqual(Math.floor(drainSeconds / 3));
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil(3 * drainSeconds));
    } finally {
      await app.close();
    }
  });

  it('does not invent a long wait before any job has finished', async () => {
    const app = await poolApp(tmp.db('retry-after-cold.db'), { jobs: { workers: 1, queueLimit: LIMIT } });
    try {
      const { retryAfter, drainSeconds } = await refusalAndDrain(app);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil(3 * drainSeconds));
    } finally {
      await app.close();
    }
  });
});
