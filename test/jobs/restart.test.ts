// Restarts on the same SQLite file: after a graceful stop and after a killed process, running and queued jobs run; streams close on shutdown.
import { describe, it, expect, afterAll } from 'vitest';
import { SERVER_ARGS, freePort } from '../support/server.js';
import { ENDLESS_TRAINING, SHORT_TRAINING, SMALL_ANALYSIS, getJob, poolApp, readEvents, tempDir, type SseEvent } from '../support/jobs.js';
import { until } from '../support/until.js';
import { spawn } from 'node:child_process';
import { SqliteJobStore } from '../../src/jobs/store.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

/** Well under a second of training on a wasm worker. */
const MEDIUM_TRAINING = { network: { depth: 4, width: 32 }, data: { source: 'moons', batchSize: 32 }, steps: 200, recordEvery: 50 } as const;


const settled = (app: Parameters<typeof getJob>[0], id: string) =>
  until(() => getJob(app, id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status), 60_000);

describe('restart on the same database file', () => {
  it('runs again what a graceful stop left running (attempt refunded) and what was queued', async () => {
    const db = tmp.db('graceful.db');
    const first = await poolApp(db, { jobs: { workers: 1 } });
    const running = (await first.inject({ method: 'POST', url: '/v1/trainings', payload: MEDIUM_TRAINING })).json();
    const queued = (await first.inject({ method: 'POST', url: '/v1/analyses', payload: SMALL_ANALYSIS, headers: { prefer: 'respond-async' } })).json();
    await until(() => getJob(first, running.id), (j) => j.status === 'running');
    await first.close();

    const store = new SqliteJobStore(db);
    expect(await store.get(running.id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(await store.get(queued.id)).toMatchObject({ status: 'queued', attempts: 0 });
    await store.close();

    const second = await poolApp(db, { jobs: { workers: 1 } });
    try {
      const a = await settled(second, running.id);
      const b = await settled(second, queued.id);
      expect(a).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(a.result.records).toHaveLength(5);
      expect(b).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(b.result.layers).toHaveLength(3);
    } finally {
      await second.close();
    }
  });

  it('after the process is killed mid-job: the interrupted job is re-queued and runs, the queued one too; one that kept crashing fails', async () => {
    const db = tmp.db('killed.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [...SERVER_ARGS], {
      env: {
        ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent', GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: db,
        GRADLENS_MAX_ANALYSIS_FLOPS: '1e15', GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS: '1e15', GRADLENS_MAX_TRAINING_FLOPS: '1e15', GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0', GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0',
      },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let running: { id: string };
    let queued: { id: string };
    try {
      await until(() => fetch(`${url}/health`).then((r) => r.ok, () => false), (ok) => ok, 60_000, 100);
      const post = async (path: string, body: unknown) =>
        (await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
      running = await post('/v1/trainings', ENDLESS_TRAINING);
      queued = await post('/v1/trainings', SHORT_TRAINING);
      await until(() => fetch(`${url}/v1/jobs/${running.id}`).then((r) => r.json()), (j) => j.status === 'running');
    } finally {
      child.kill('SIGKILL');
      await exited;
    }

    // A job that has already been started as often as allowed, each start ended by a crash.
    const store = new SqliteJobStore(db);
    expect(await store.get(running.id)).toMatchObject({ status: 'running', attempts: 1 });
    await store.create({ id: 'doomed', kind: 'analysis', spec: SMALL_ANALYSIS });
    for (let i = 0; i < 3; i++) {
      if (i > 0) await store.requeue('doomed', false);
      await store.start('doomed');
    }
    await store.close();

    // The endless training is replaced by a short one under the same id, so the re-run ends.
    const raw = new SqliteJobStore(db);
    raw.db.prepare('UPDATE jobs SET spec = ? WHERE id = ?').run(JSON.stringify(MEDIUM_TRAINING), running.id);
    await raw.close();

    const app = await poolApp(db, { jobs: { workers: 2, maxAttempts: 3 } });
    try {
      const a = await settled(app, running.id);
      const b = await settled(app, queued.id);
      expect(a).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(a.result.records).toHaveLength(5);
      expect(b).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(await getJob(app, 'doomed')).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'INTERRUPTED' } });
    } finally {
      await app.close();
    }
  });

  it('closes open event streams on app.close() instead of hanging, and keeps their job for the next start', async () => {
    const db = tmp.db('streams.db');
    const app = await poolApp(db, { jobs: { workers: 1 } });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const { id } = (await app.inject({ method: 'POST', url: '/v1/trainings', payload: ENDLESS_TRAINING })).json();
    await until(() => getJob(app, id), (j) => j.status === 'running');
    const res = await fetch(`${base}/v1/jobs/${id}/events`);
    const events: SseEvent[] = [];
    const reading = (async () => { for await (const e of readEvents(res.body!)) events.push(e); })();
    await until(async () => events.length, (n) => n > 0);
    const t0 = performance.now();
    await app.close();
    await reading;
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(events[0]!.event).toBe('state');
    const store = new SqliteJobStore(db);
    expect(await store.get(id)).toMatchObject({ status: 'queued' });
    await store.close();
  });
});
