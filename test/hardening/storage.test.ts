// Storage faults with the real server: a disk that fills mid-training, a result too large for the space left, the
// database file deleted under the server, and a read-only database at start.
import { describe, it, expect, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER_ARGS, json, startServer, stop, type Server } from '../support/server.js';
import { until } from '../support/until.js';
import { SqliteJobStore } from '../../src/jobs/store.js';
import { mountTmpfs, type Tmpfs } from '../support/tmpfs.js';

/** A few seconds on one wasm worker: long enough to fill the disk while it runs. */
const TRAINING = { seed: 9, network: { depth: 6, width: 48 }, data: { source: 'moons', batchSize: 32 }, steps: 800, recordEvery: 100 };
const ANALYSIS = { seed: 5, network: { depth: 4, width: 16, activation: 'tanh' }, data: { source: 'moons', batchSize: 32, batches: 2 } };
/** About a thousand records: a result of about a megabyte. */
const BIG_TRAINING = { seed: 3, network: { depth: 6, width: 16 }, data: { source: 'moons', batchSize: 16 }, steps: 990, recordEvery: 1 };

let server: Server | undefined;
let fs: Tmpfs | undefined;
let dir: string | undefined;
afterEach(async () => {
  await stop(server);
  server = undefined;
  fs?.unmount();
  fs = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const env = (db: string, extra: Record<string, string> = {}) => ({
  GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: db, GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0',
  GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0', GRADLENS_MAX_ANALYSIS_FLOPS: '1e15', LOG_LEVEL: 'warn', ...extra,
});
const post = (path: string, body: object) =>
  json(`${server!.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const job = (id: string) => json(`${server!.url}/v1/jobs/${id}`);
const metric = async (name: string): Promise<number> => {
  const text = await fetch(`${server!.url}/metrics`).then((r) => r.text());
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};
const alive = () => server!.child.exitCode === null && server!.child.signalCode === null;

/** Posts analyses until one is refused; every answer must be 200 (stored) or 503 naming the storage, never 500. */
async function postUntilRefused(acknowledged: string[]): Promise<{ status: number; body: any; headers: Headers }> {
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${server!.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ANALYSIS) });
    const body = await res.json();
    if (res.status === 200) {
      acknowledged.push(body.id);
      continue;
    }
    expect(res.status, JSON.stringify(body)).toBe(503);
    return { status: res.status, body, headers: res.headers };
  }
  throw new Error('50 analyses were accepted on a full disk');
}

describe('a disk that fills while the server runs', () => {
  it('keeps the process up, refuses writes with 503 naming the storage, says not ready, and resumes by itself once space returns; the finished training is stored, not lost', async () => {
    fs = mountTmpfs(8 * 1024 * 1024);
    const db = join(fs.dir, 'jobs.db');
    server = await startServer(env(db));
    const before = await post('/v1/analyses', ANALYSIS);
    expect(before.status).toBe(200);
    const training = await post('/v1/trainings', TRAINING);
    expect(training.status).toBe(202);
    const id = training.body.id as string;
    await until(() => job(id), (r) => r.body?.status === 'running', 60_000, 20);

    expect(fs.fill()).toBeGreaterThan(0);
    // The training ends on a full disk: its outcome cannot be stored and is kept in memory.
    await until(() => metric('gradlens_store_unsaved_outcomes'), (n) => n === 1, 90_000, 100);
    expect(alive()).toBe(true);
    expect((await job(id)).body.status).toBe('running');

    const acknowledged: string[] = [];
    const refused = await postUntilRefused(acknowledged);
    expect(refused.body).toMatchObject({ statusCode: 503, code: 'STORAGE_UNAVAILABLE', problem: 'full' });
    expect(refused.body.message).toMatch(/GRADLENS_DB/);
    expect(refused.body.message).toMatch(/full/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const training503 = await post('/v1/trainings', TRAINING);
    expect(training503.status).toBe(503);
    expect(training503.body.code).toBe('STORAGE_UNAVAILABLE');

    const notReady = await until(() => json(`${server!.url}/ready`), (r) => r.status === 503, 10_000, 100);
    expect(notReady.body.checks.database).toMatchObject({ ok: false });
    expect(notReady.body.checks.database.detail).toMatch(/full/);
    expect(await metric('gradlens_store_writable')).toBe(0);
    expect(server.output()).toMatch(/disk holding GRADLENS_DB is full/);
    expect(alive()).toBe(true);

    fs.free();
    await until(() => json(`${server!.url}/ready`), (r) => r.status === 200, 30_000, 200);
    // Stored from memory once writes succeed: the same run (one attempt), with its result.
    const done = await until(() => job(id), (r) => r.body?.status !== 'running', 30_000, 200);
    expect(done.body).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(done.body.result.records.length).toBe(9);
    expect(await metric('gradlens_store_unsaved_outcomes')).toBe(0);
    const after = await post('/v1/analyses', ANALYSIS);
    expect(after.status).toBe(200);

    // Everything acknowledged survives a restart.
    expect(await stop(server, 'SIGTERM')).toBe(0);
    server = await startServer(env(db));
    for (const ack of [before.body.id, id, after.body.id, ...acknowledged]) expect((await job(ack)).status, ack).toBe(200);
  }, 240_000);

  it('fails a finished job with RESULT_NOT_STORED and a reason when its result does not fit in the space left while small writes do', async () => {
    fs = mountTmpfs(8 * 1024 * 1024);
    const db = join(fs.dir, 'jobs.db');
    server = await startServer(env(db));
    const training = await post('/v1/trainings', BIG_TRAINING);
    expect(training.status).toBe(202);
    const id = training.body.id as string;
    await until(() => job(id), (r) => r.body?.status === 'running', 60_000, 20);
    // Leave about 200 KB: room for small writes, not for a result of about a megabyte.
    const reserve = join(fs.dir, 'reserve');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(reserve, Buffer.alloc(200 * 1024));
    fs.fill();
    unlinkSync(reserve);

    const failed = await until(() => job(id), (r) => r.body?.status !== 'running', 120_000, 200);
    expect(failed.body.status).toBe('failed');
    expect(failed.body.error.code).toBe('RESULT_NOT_STORED');
    expect(failed.body.error.message).toMatch(/result \(\d+ bytes\) could not be stored/);
    expect(failed.body.error.message).toMatch(/full/);
    expect(alive()).toBe(true);
    expect((await json(`${server.url}/ready`)).status).toBe(200);
  }, 240_000);
});

describe('the database file deleted while the server runs', () => {
  it('refuses new work with 503 naming the problem, fails readiness and logs an error, instead of acknowledging jobs a restart would lose', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradlens-deleted-'));
    const db = join(dir, 'jobs.db');
    server = await startServer(env(db));
    expect((await post('/v1/analyses', ANALYSIS)).status).toBe(200);

    unlinkSync(db);
    // Found by the timer, with no request to trip over it.
    await until(async () => server!.output(), (out) => /was deleted or replaced/.test(out), 10_000, 100);
    expect(server.output()).toMatch(/"level":50/);
    expect(server.output()).toContain(db);

    // /ready reuses its write probe for up to 500 ms (JobManager.storageHealth), so a probe taken just
    // before the deletion may still answer once; the next one must fail.
    const ready = await until(() => json(`${server!.url}/ready`), (r) => r.status !== 200, 5_000, 100);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toEqual({ ok: false, detail: 'the file at GRADLENS_DB was deleted or replaced while the server ran: restart the server' });
    const refused = await post('/v1/analyses', ANALYSIS);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'STORAGE_UNAVAILABLE', problem: 'replaced' });
    expect(refused.body.message).toMatch(/GRADLENS_DB was deleted while the server ran/);
    const training = await post('/v1/trainings', TRAINING);
    expect(training.status).toBe(503);
    expect(alive()).toBe(true);
  }, 120_000);
});

describe('a read-only database at start', () => {
  /** Runs the server to its exit; it must not get as far as listening. */
  async function startFails(db: string): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [...SERVER_ARGS], { env: { ...process.env, ...env(db), PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, output };
  }

  it('stops with exit code 2 and one line naming GRADLENS_DB, for an existing file and for one it cannot create, without a stack trace', async () => {
    fs = mountTmpfs(4 * 1024 * 1024);
    const existing = join(fs.dir, 'jobs.db');
    const store = new SqliteJobStore(existing);
    await store.create({ id: 'kept', kind: 'analysis', spec: {} });
    await store.close();
    mkdirSync(join(fs.dir, 'empty'));
    fs.remount('ro');

    for (const db of [existing, join(fs.dir, 'empty', 'new.db'), join(fs.dir, 'missing', 'dir', 'new.db')]) {
      const { code, output } = await startFails(db);
      expect(code, output).toBe(2);
      expect(output).toContain(`gradlens: cannot open the job database GRADLENS_DB=${db}: it is read-only or its directory is`);
      expect(output).toMatch(/Point GRADLENS_DB at a writable file/);
      expect(output).not.toMatch(/^\s+at /m);
    }
  }, 120_000);
});
