// GET /ready (each check, and checks other components add) and GET /metrics (per-app registry, HTTP and job metrics).
import { describe, it, expect, afterEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { tempDir } from '../support/jobs.js';
import { until } from '../support/until.js';
import { buildApp } from '../../src/app.js';
import { loadConfig, type ConfigOverrides } from '../../src/config.js';
import type { Runner } from '../../src/jobs/runner.js';
import { SqliteJobStore } from '../../src/jobs/store.js';
import type { BackendInfo } from '../../src/engine/backends/select.js';
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { encodeOutput } from '../../src/jobs/encoded.js';

/** A runner whose analyses wait until released, so tests can hold jobs running and queued. */
function heldRunner(): Runner & { release(): void } {
  const waiting: (() => void)[] = [];
  const backend: BackendInfo = { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: 'test', requested: 'cpu', skipped: [] };
  return {
    concurrency: 1,
    ready: async () => backend,
    analyze: (_input, options = {}) => new Promise((resolve, reject) => {
      options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
      waiting.push(() => resolve({ result: { layers: [] }, spec: {} } as never));
    }),
    // What a job runs (jobs/kinds.ts): the same, encoded as the worker would.
    analyzeEncoded: (_input, options = {}) => new Promise((resolve, reject) => {
      options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
      waiting.push(() => resolve(encodeOutput({ spec: {}, result: { layers: [] } })));
    }),
    train: () => Promise.reject(new Error('not used')),
    analyzeModel: () => Promise.reject(new Error('not used')),
    theory: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
    release: () => waiting.splice(0).forEach((f) => f()),
  };
}

async function appWith(runner: Runner, overrides: ConfigOverrides = {}, options: { store?: SqliteJobStore } = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, { backend: 'cpu', ...overrides, jobs: { workers: 0, db: ':memory:', ...overrides.jobs }, security: { rateLimitMax: 0, ...overrides.security } });
  const app = await buildApp(config, { logger: false, runner, ...options });
  await app.ready();
  return app;
}

const submit = (app: FastifyInstance, payload: object = TEXTBOOK_CHAIN) =>
  app.inject({ method: 'POST', url: '/v1/analyses', payload, headers: { prefer: 'respond-async' } });

/** Values of one metric from the exposition text, keyed by its label set. */
function metric(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});
const keep = (app: FastifyInstance) => (apps.push(app), app);

describe('GET /ready', () => {
  it('is ready when backend, database, queue, load and shutdown checks pass', async () => {
    const app = keep(await testApp({ backend: 'cpu' }));
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'ready',
      checks: {
        shutdown: { ok: true },
        backend: { ok: true, detail: 'cpu' },
        database: { ok: true, detail: 'writable (in memory)' },
        queue: { ok: true, detail: '0 of 100 waiting' },
        load: { ok: true },
      },
    });
  });

  it('is not ready while the queue is full, and ready again once it drains', async () => {
    const runner = heldRunner();
    const app = keep(await appWith(runner, { jobs: { queueLimit: 1 } }));
    expect((await submit(app)).statusCode).toBe(202); // running
    await new Promise((r) => setTimeout(r, 20));
    expect((await submit(app)).statusCode).toBe(202); // waiting
    const full = await app.inject({ url: '/ready' });
    expect(full.statusCode).toBe(503);
    expect(full.headers['retry-after']).toBe('5');
    expect(full.json().status).toBe('not_ready');
    expect(full.json().checks.queue).toEqual({ ok: false, detail: '1 of 1 waiting: full' });
    // A third submission is refused by the queue itself (503 QUEUE_FULL), as /ready predicted.
    const refused = await submit(app);
    expect(refused.statusCode).toBe(503);
    expect(refused.json().code).toBe('QUEUE_FULL');
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/gradlens_queue_depth 1/);
    runner.release();
    await new Promise((r) => setTimeout(r, 20));
    runner.release();
    await new Promise((r) => setTimeout(r, 20));
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
  });

  it('is not ready when the database cannot be read, without saying more than that', async () => {
    const store = new SqliteJobStore(':memory:');
    const app = keep(await appWith(heldRunner(), {}, { store }));
    await store.close();
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(503);
    expect(res.json().checks.database).toEqual({ ok: false, detail: 'the check failed (see the server log)' });
    // Liveness is a different question.
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('runs checks other components add; a string result is the reason', async () => {
    const app = keep(await testApp({ backend: 'cpu' }));
    let ok = false;
    app.readiness.add('warm-cache', () => (ok ? { ok: true, detail: 'warm' } : 'still loading'));
    expect((await app.inject({ url: '/ready' })).json().checks['warm-cache']).toEqual({ ok: false, detail: 'still loading' });
    ok = true;
    const res = await app.inject({ url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json().checks['warm-cache']).toEqual({ ok: true, detail: 'warm' });
  });

  it('says not ready once the server is closing', async () => {
    const config = loadConfig({}, { backend: 'cpu', jobs: { workers: 0, db: ':memory:' } });
    const app = await buildApp(config, { logger: false });
    let during: Awaited<ReturnType<FastifyInstance['readiness']['run']>> | undefined;
    app.addHook('preClose', async () => {
      during = await app.readiness.run();
    });
    await app.ready();
    expect((await app.readiness.run()).ready).toBe(true);
    await app.close();
    expect(during?.ready).toBe(false);
    expect(during?.checks.shutdown).toEqual({ ok: false, detail: 'the server is shutting down' });
  });
});

describe('GET /metrics', () => {
  it('is Prometheus text with HTTP, job, queue, worker, backend and process metrics', async () => {
    const app = keep(await testApp({ backend: 'cpu' }));
    expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: TEXTBOOK_CHAIN })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: { network: { depth: 0 } } })).statusCode).toBe(400);
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    // Every sample line is well formed.
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?(\d|NaN|\+Inf|-Inf)/);
    }
    expect(metric(text, 'gradlens_http_requests_total').get('{method="POST",route="/v1/analyses",status_code="200"}')).toBe(1);
    expect(metric(text, 'gradlens_http_requests_total').get('{method="POST",route="/v1/analyses",status_code="400"}')).toBe(1);
    expect(metric(text, 'gradlens_http_request_duration_seconds_count').get('{method="POST",route="/v1/analyses",status_code="200"}')).toBe(1);
    expect(metric(text, 'gradlens_jobs_submitted_total').get('{kind="analysis"}')).toBe(1);
    expect(metric(text, 'gradlens_jobs_started_total').get('{kind="analysis"}')).toBe(1);
    expect(metric(text, 'gradlens_jobs_finished_total').get('{kind="analysis",status="succeeded"}')).toBe(1);
    expect(metric(text, 'gradlens_job_duration_seconds_count').get('{kind="analysis",status="succeeded"}')).toBe(1);
    expect(metric(text, 'gradlens_queue_depth').get('')).toBe(0);
    expect(metric(text, 'gradlens_queue_limit').get('')).toBe(100);
    expect(metric(text, 'gradlens_jobs_running').get('')).toBe(0);
    expect(metric(text, 'gradlens_workers').get('')).toBe(1);
    expect(text).toMatch(/gradlens_backend_info\{backend="cpu",tfjs_backend="cpu",tfjs_version="[\d.]+",gradlens_version="[^"]+",simd=""\} 1/);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
  });

  it('counts failed and canceled jobs by status, with durations only for jobs that ran', async () => {
    const runner = heldRunner();
    const app = keep(await appWith(runner));
    const running = (await submit(app)).json();
    await new Promise((r) => setTimeout(r, 20));
    const queued = (await submit(app)).json();
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${queued.id}` })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${running.id}` })).statusCode).toBe(200);
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(metric(text, 'gradlens_jobs_finished_total').get('{kind="analysis",status="canceled"}')).toBe(2);
    // Only the running one had started.
    expect(metric(text, 'gradlens_job_duration_seconds_count').get('{kind="analysis",status="canceled"}')).toBe(1);
  });

  it('reports the store: bytes on disk, job data bytes and jobs by status, as the files and SQLite itself measure them', async () => {
    const tmp = tempDir();
    try {
      const db = tmp.db();
      const app = keep(await testApp({ backend: 'cpu', jobs: { db } }));
      for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: TEXTBOOK_CHAIN })).statusCode).toBe(200);
      const text = (await app.inject({ url: '/metrics' })).body;
      expect(metric(text, 'gradlens_store_jobs').get('{status="succeeded"}')).toBe(3);
      expect(metric(text, 'gradlens_store_jobs').get('{status="queued"}')).toBe(0);
      const onDisk = statSync(db).size + statSync(`${db}-wal`).size;
      expect(metric(text, 'gradlens_store_bytes').get('')).toBe(onDisk);
      const reader = new Database(db, { readonly: true });
      const sqlBytes = (reader.prepare('SELECT SUM(length(CAST(spec AS BLOB)) + length(CAST(output AS BLOB))) AS n FROM jobs').get() as { n: number }).n;
      reader.close();
      expect(metric(text, 'gradlens_store_data_bytes').get('')).toBe(sqlBytes);
      expect(metric(text, 'gradlens_store_writable').get('')).toBe(1);
      expect(metric(text, 'gradlens_store_unsaved_outcomes').get('')).toBe(0);
    } finally {
      tmp.remove();
    }
  });

  it('applies retention on its interval: the oldest finished jobs go, queued and running ones stay', async () => {
    const runner = heldRunner();
    const app = keep(await appWith(runner, { jobs: { retention: { maxAgeMs: 0, maxJobs: 2, maxBytes: 0, intervalMs: 100 } } }));
    const finished: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { id } = (await submit(app)).json();
      await new Promise((r) => setTimeout(r, 10));
      runner.release();
      await until(() => app.inject({ url: `/v1/jobs/${id}` }).then((r) => r.json().status), (s) => s === 'succeeded');
      finished.push(id);
    }
    const running = (await submit(app)).json().id;
    const queued = (await submit(app)).json().id;
    await until(() => app.inject({ url: '/metrics' }).then((r) => metric(r.body, 'gradlens_store_jobs_deleted_total').get('{reason="count"}')), (n) => n === 2);
    const listed = (await app.inject({ url: '/v1/jobs' })).json().jobs.map((j: { id: string; status: string }) => [j.id, j.status]);
    expect(listed).toEqual([[queued, 'queued'], [running, 'running'], [finished[3], 'succeeded'], [finished[2], 'succeeded']]);
    runner.release();
  });

  it('labels routes by pattern, so random paths cannot grow the label set', async () => {
    const app = keep(await testApp({ security: { rateLimitMax: 0 } }));
    for (let i = 0; i < 20; i++) await app.inject({ url: `/random/${i}/${Math.random()}` });
    for (let i = 0; i < 5; i++) await app.inject({ url: `/v1/jobs/${i}` });
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(metric(text, 'gradlens_http_requests_total').get('{method="GET",route="(not found)",status_code="404"}')).toBe(20);
    expect(metric(text, 'gradlens_http_requests_total').get('{method="GET",route="/v1/jobs/:id",status_code="404"}')).toBe(5);
    expect(text).not.toMatch(/random/);
  });

  it('keeps one registry per app: requests to one app do not show in another', async () => {
    const a = keep(await testApp({ backend: 'cpu' }));
    const b = keep(await testApp({ backend: 'cpu' }));
    for (let i = 0; i < 3; i++) await a.inject({ url: '/v1/jobs' });
    const textA = (await a.inject({ url: '/metrics' })).body;
    const textB = (await b.inject({ url: '/metrics' })).body;
    expect(metric(textA, 'gradlens_http_requests_total').get('{method="GET",route="/v1/jobs",status_code="200"}')).toBe(3);
    expect(metric(textB, 'gradlens_http_requests_total').get('{method="GET",route="/v1/jobs",status_code="200"}')).toBeUndefined();
    // The process metrics are shared, and present in both.
    expect(textB).toMatch(/^process_resident_memory_bytes /m);
  });
});
