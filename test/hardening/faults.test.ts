// Fault recovery with the real server: kill -9 and SIGTERM mid-job on a SQLite file, and a compute worker killed mid-job.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { json, startServer, stop, type Server } from '../support/server.js';
import { until } from '../support/until.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { WorkerPool, workerEntry } from '../../src/jobs/pool.js';

const ANALYSIS = { seed: 5, network: { depth: 4, width: 16, activation: 'tanh' }, data: { source: 'moons', batchSize: 32, batches: 2 } };
/** Several seconds on one wasm worker: long enough to be caught running, short enough to re-run. */
const TRAINING = { seed: 9, network: { depth: 6, width: 48 }, data: { source: 'moons', batchSize: 32 }, steps: 800, recordEvery: 100 };

let dir: string;
let server: Server | undefined;
const env = (extra: Record<string, string> = {}) => ({
  GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: join(dir, 'jobs.db'), GRADLENS_SHUTDOWN_GRACE_MS: '10000', ...extra,
});
const post = (path: string, body: object, headers: Record<string, string> = {}) =>
  json(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const job = (id: string) => json(`${server!.url}/v1/jobs/${id}`);
const running = (id: string) => until(() => job(id), (r) => r.body?.status === 'running' && r.body.progress > 0, 60_000, 20);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gradlens-faults-'));
});
afterEach(async () => {
  await stop(server);
  server = undefined;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the real server on a SQLite file', () => {
  it('kill -9 mid-training: stored results intact after restart, the interrupted job re-runs and succeeds', async () => {
    server = await startServer(env());
    const analysis = await post('/v1/analyses', ANALYSIS);
    expect(analysis.status).toBe(200);
    const storedText = (await job(analysis.body.id)).text;
    const training = await post('/v1/trainings', TRAINING);
    expect(training.status).toBe(202);
    const id = training.body.id as string;
    await running(id);

    expect(await stop(server, 'SIGKILL')).toBe('SIGKILL');
    server = await startServer(env());

    // Byte-identical: the same stored job, the same representation.
    expect((await job(analysis.body.id)).text).toBe(storedText);
    // Re-queued by the restart: it may already have run again by the time this reads it (a short training on
    // the native path); attempts below say that it ran twice.
    const after = await job(id);
    expect(['queued', 'running', 'succeeded']).toContain(after.body.status);
    const done = await until(() => job(id), (r) => r.body?.status === 'succeeded' || r.body?.status === 'failed', 90_000, 200);
    expect(done.body.status).toBe('succeeded');
    // The crash used up one attempt.
    expect(done.body.attempts).toBe(2);
    expect(done.body.result.records.length).toBeGreaterThan(1);
    const metrics = (await fetch(`${server.url}/metrics`).then((r) => r.text()));
    expect(metrics).toMatch(/gradlens_jobs_recovered_total\{outcome="requeued"\} 1/);
  }, 240_000);

  it('a job interrupted GRADLENS_JOB_MAX_ATTEMPTS times is failed as INTERRUPTED, not re-run forever', async () => {
    server = await startServer(env({ GRADLENS_JOB_MAX_ATTEMPTS: '1' }));
    const training = await post('/v1/trainings', { ...TRAINING, seed: 10 });
    const id = training.body.id as string;
    await running(id);
    await stop(server, 'SIGKILL');
    server = await startServer(env({ GRADLENS_JOB_MAX_ATTEMPTS: '1' }));
    const after = await job(id);
    expect(after.body.status).toBe('failed');
    expect(after.body.error.code).toBe('INTERRUPTED');
    expect(after.body.error.message.length).toBeGreaterThan(10);
    expect((await json(`${server.url}/ready`)).status).toBe(200);
  }, 240_000);

  it('SIGTERM mid-training: event streams end, the process exits 0 within the grace period, the job is re-queued and runs after restart', async () => {
    server = await startServer(env());
    const training = await post('/v1/trainings', { ...TRAINING, seed: 11 });
    const id = training.body.id as string;
    await running(id);
    const events = await fetch(`${server.url}/v1/jobs/${id}/events`);
    expect(events.status).toBe(200);
    const reader = events.body!.getReader();
    await reader.read(); // the stream is open
    const streamEnded = (async () => {
      for (;;) if ((await reader.read()).done) return true;
    })().catch(() => true);

    const t0 = Date.now();
    const code = await stop(server, 'SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await streamEnded).toBe(true);

    server = await startServer(env());
    const done = await until(() => job(id), (r) => r.body?.status === 'succeeded' || r.body?.status === 'failed', 90_000, 200);
    expect(done.body.status).toBe('succeeded');
    // A graceful stop gives the attempt back: only the run that finished counts.
    expect(done.body.attempts).toBe(1);
  }, 240_000);

  it('survives a burst of malformed HTTP from many connections and keeps answering', async () => {
    server = await startServer(env({ GRADLENS_RATE_LIMIT_MAX: '0' }));
    const { connect } = await import('node:net');
    const port = Number(new URL(server.url).port);
    const garbage = [
      'GARBAGE\r\n\r\n',
      'POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{',
      'POST /v1/analyses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n',
      `GET /v1/jobs/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
      'GET /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    await Promise.all(Array.from({ length: 70 }, (_, i) => new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(garbage[i % garbage.length]!));
      socket.on('data', () => undefined);
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.setTimeout(5000, () => socket.destroy());
    })));
    expect((await json(`${server.url}/health`)).status).toBe(200);
    expect((await post('/v1/analyses', ANALYSIS)).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  }, 120_000);
});

describe('a compute worker killed mid-job', () => {
  it('fails the job with WORKER_CRASHED and a reason, replaces the worker, and keeps serving', async () => {
    const config = loadConfig({}, { backend: 'wasm', logLevel: 'silent', jobs: { workers: 1, db: ':memory:' }, security: { rateLimitMax: 0 } });
    const app = await buildApp(config, { logger: false });
    await app.ready();
    try {
      const pool = app.runner as WorkerPool;
      expect(pool).toBeInstanceOf(WorkerPool);
      const submitted = await app.inject({ method: 'POST', url: '/v1/trainings', payload: TRAINING });
      const id = submitted.json().id as string;
      await until(async () => (await app.inject({ url: `/v1/jobs/${id}` })).json(), (j) => j.status === 'running' && j.progress > 0);

      // What an out-of-memory abort or a native crash looks like from the pool: the thread is gone.
      // The pool's slots are private; reaching them is the point of this fault injection.
      const slots = (pool as unknown as { slots: Set<{ worker: Worker; task?: unknown }> }).slots;
      const busy = [...slots].find((s) => s.task)!;
      expect(busy).toBeTruthy();
      await busy.worker.terminate();

      const failed = await until(async () => (await app.inject({ url: `/v1/jobs/${id}` })).json(), (j) => j.status !== 'running', 10_000);
      expect(failed.status).toBe('failed');
      expect(failed.error.code).toBe('WORKER_CRASHED');
      expect(failed.error.message).toMatch(/worker exited .* while running a training/);
      // A fresh worker takes its place and computes.
      await until(async () => pool.workers, (n) => n === 1, 10_000);
      const next = await app.inject({ method: 'POST', url: '/v1/analyses', payload: ANALYSIS });
      expect(next.statusCode).toBe(200);
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
      const metrics = (await app.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(/gradlens_jobs_finished_total\{kind="training",status="failed"\} 1/);
    } finally {
      await app.close();
    }
  }, 120_000);
});
