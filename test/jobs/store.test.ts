// The job stores on real databases — SQLite files, and PostgreSQL where GRADLENS_TEST_POSTGRES is set (CI): versioned
// migrations, conditional transitions, pagination, crash recovery, deletes; SQLite's pragmas and file guards; PostgreSQL outages.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { renameSync } from 'node:fs';
import { SqliteJobStore, SCHEMA_VERSION, type StorageStatus } from '../../src/jobs/store.js';
import { StorageUnavailableError } from '../../src/jobs/errors.js';
import { MemoryJobQueue } from '../../src/jobs/queue.js';
import { JOB_KINDS, JOB_STATUSES } from '../../src/schemas/vocabulary.js';
import { tempDir } from '../support/jobs.js';
import { STORE_HARNESSES, TEST_POSTGRES, testSchema, dropSchema, type StoreHarness } from '../support/stores.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { PostgresJobStore, PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../../src/jobs/pg-store.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => { tmp = tempDir(); });
afterEach(() => tmp.remove());

describe.each(STORE_HARNESSES)('JobStore on %s', (_name, harness) => {
  let h: StoreHarness;
  beforeEach(() => { h = harness(); });
  afterEach(async () => { await h.dispose(); });

  it('records its migrations once and keeps the data across a reopen', async () => {
    const store = await h.open();
    await store.create({ id: 'a', kind: 'analysis', spec: { x: 1 } });
    await store.close();
    const again = await h.open();
    expect(await h.sql('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual(h.migrations);
    expect((await again.get('a'))?.spec).toEqual({ x: 1 });
    await again.close();
  });

  it("accepts every job kind and status of the vocabulary (its CHECK lists are migration text, so a new one needs a migration) and refuses others", async () => {
    const store = await h.open();
    for (const kind of JOB_KINDS) await store.create({ id: `k-${kind}`, kind, spec: {} });
    for (const status of JOB_STATUSES) await h.sql('UPDATE jobs SET status = ? WHERE id = ?', [status, `k-${JOB_KINDS[0]}`]);
    expect((await store.get(`k-${JOB_KINDS[0]}`))!.status).toBe(JOB_STATUSES[JOB_STATUSES.length - 1]);
    await expect(h.sql('UPDATE jobs SET kind = ? WHERE id = ?', ['not_a_kind', `k-${JOB_KINDS[0]}`])).rejects.toThrow(/check/i);
    await expect(h.sql('UPDATE jobs SET status = ? WHERE id = ?', ['not_a_status', `k-${JOB_KINDS[0]}`])).rejects.toThrow(/check/i);
    await store.close();
  });

  it('refuses a database written by a newer schema', async () => {
    await (await h.open()).close();
    await h.sql('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, ?)', ['future', new Date().toISOString()]);
    await expect(h.open()).rejects.toThrow(/schema version 99, newer/);
  });

  it('starts only queued jobs and finishes only unfinished ones, so a cancel and a completion cannot both win', async () => {
    const store = await h.open();
    await store.create({ id: 'j', kind: 'training', spec: {}, expect: { learns: true } });
    const running = await store.start('j');
    expect(running).toMatchObject({ status: 'running', attempts: 1, expect: { learns: true } });
    expect(running!.startedAt).not.toBeNull();
    expect(await store.start('j')).toBeUndefined();
    await store.progress('j', 0.25);
    expect((await store.get('j'))!.progress).toBe(0.25);
    const canceled = await store.finish('j', { status: 'canceled', error: { code: 'CANCELED', message: 'by test' } });
    expect(canceled).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });
    expect(await store.finish('j', { status: 'succeeded', output: { result: 1 } })).toBeUndefined();
    expect((await store.get('j'))!.output).toBeNull();
    await store.close();
  });

  it('lists newest first with kind and status filters and an opaque cursor', async () => {
    const store = await h.open();
    for (let i = 0; i < 7; i++) await store.create({ id: `j${i}`, kind: i % 2 ? 'training' : 'analysis', spec: { i } });
    await store.start('j6');
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ limit: 3, ...(cursor ? { cursor } : {}) });
      ids.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(ids).toEqual(['j6', 'j5', 'j4', 'j3', 'j2', 'j1', 'j0']);
    expect((await store.list({ limit: 10, kind: 'training' })).jobs.map((j) => j.id)).toEqual(['j5', 'j3', 'j1']);
    expect((await store.list({ limit: 10, status: 'running' })).jobs.map((j) => j.id)).toEqual(['j6']);
    expect((await store.list({ limit: 10, kind: 'analysis', status: 'queued' })).jobs.map((j) => j.id)).toEqual(['j4', 'j2', 'j0']);
    await expect(store.list({ limit: 3, cursor: 'not-a-cursor' })).rejects.toThrow(/cursor/);
    await store.close();
  });

  it('recovers after a crash: running jobs are re-queued, or failed with INTERRUPTED after maxAttempts starts', async () => {
    const store = await h.open();
    for (const id of ['once', 'thrice', 'waiting']) await store.create({ id, kind: 'analysis', spec: {} });
    await store.start('once');
    for (let i = 0; i < 3; i++) {
      await store.start('thrice');
      if (i < 2) await store.requeue('thrice', false);
    }
    // The process dies here: no finish, no requeue. Open the same data again.
    await h.crash(store);
    const reopened = await h.open();
    const { requeued, failed } = await reopened.recover(3);
    expect(requeued).toEqual(['once']);
    expect(failed).toEqual(['thrice']);
    expect(await reopened.get('once')).toMatchObject({ status: 'queued', attempts: 1, startedAt: null });
    expect(await reopened.get('thrice')).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'INTERRUPTED' } });
    expect(await reopened.queued()).toEqual(['once', 'waiting']);
    await reopened.close();
  });

  it('refunds the attempt of a job put back by a graceful shutdown', async () => {
    const store = await h.open();
    await store.create({ id: 'j', kind: 'analysis', spec: {} });
    await store.start('j');
    await store.requeue('j', true);
    expect(await store.get('j')).toMatchObject({ status: 'queued', attempts: 0 });
    await store.close();
  });

  it('deletes a finished job only, and forgets one never admitted', async () => {
    const store = await h.open();
    for (const id of ['done', 'running', 'queued']) await store.create({ id, kind: 'analysis', spec: {} });
    await store.start('running');
    await store.finish('done', { status: 'succeeded', output: { result: 1 } });
    expect(await store.deleteFinished('running')).toBe(false);
    expect(await store.deleteFinished('queued')).toBe(false);
    expect(await store.deleteFinished('done')).toBe(true);
    expect(await store.deleteFinished('done')).toBe(false);
    await store.remove('queued');
    expect((await h.sql('SELECT id FROM jobs ORDER BY seq')).map((r) => r.id)).toEqual(['running']);
    await store.close();
  });

  it('stores the output text exactly as given and answers a probe write', async () => {
    const store = await h.open();
    await store.create({ id: 'j', kind: 'analysis', spec: { note: 'ü' } });
    await store.start('j');
    const text = JSON.stringify({ result: { loss: 0.25, name: 'ß', big: 1e300 } });
    // encodeOutput(x).json is JSON.stringify(x): what the worker hands over, stored without a second encoding.
    const encoded = { json: text };
    const finished = await store.finish('j', { status: 'succeeded', output: encoded });
    expect(finished).toMatchObject({ status: 'succeeded', progress: 1 });
    expect((await store.get('j'))!.outputJson).toBe(text);
    expect((await store.get('j'))!.output).toEqual(JSON.parse(text));
    expect(await store.health({ probe: true })).toMatchObject({ ok: true });
    await store.close();
  });
});

describe('SqliteJobStore', () => {
  it('creates the file in WAL mode with synchronous=NORMAL', async () => {
    const path = tmp.db('nested/dir/jobs.db');
    const store = new SqliteJobStore(path);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(store.db.pragma('busy_timeout', { simple: true })).toBeLessThanOrEqual(1000);
    await store.create({ id: 'a', kind: 'analysis', spec: { x: 1 } });
    await store.close();

    const again = new SqliteJobStore(path);
    const versions = again.db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(versions).toEqual([{ version: 1, name: 'jobs' }, { version: 2, name: 'retention' }]);
    expect(SCHEMA_VERSION).toBe(2);
    expect((await again.get('a'))?.spec).toEqual({ x: 1 });
    await again.close();
  });
});

describe('SqliteJobStore when its file is swapped', () => {
  it('refuses writes once another file is at its path (and keeps refusing), still reads, and tells listeners once', async () => {
    const path = tmp.db();
    const store = new SqliteJobStore(path, { identityCheckMs: 0 });
    const seen: StorageStatus[] = [];
    store.onHealthChange((s) => seen.push(s));
    await store.create({ id: 'before', kind: 'analysis', spec: {} });
    expect(await store.health({ probe: true })).toMatchObject({ ok: true });

    // What a restore from backup or a careless `mv` does: a different file under the same name.
    const other = new SqliteJobStore(tmp.db('other.db'), { identityCheckMs: 0 });
    await other.close();
    renameSync(tmp.db('other.db'), path);

    await expect(store.create({ id: 'after', kind: 'analysis', spec: {} })).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE', problem: 'replaced', message: expect.stringMatching(/GRADLENS_DB was replaced by another file while the server ran/),
    });
    await expect(store.create({ id: 'again', kind: 'analysis', spec: {} })).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(await store.health({ probe: true })).toMatchObject({ ok: false, problem: 'replaced' });
    expect((await store.get('before'))?.id).toBe('before');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ ok: false, problem: 'replaced', cause: expect.stringMatching(/dev:inode .* is now \d+:\d+/) });
    await store.close();
  });
});

describe('MemoryJobQueue', () => {
  it('puts a job back in front when asked', async () => {
    const q = new MemoryJobQueue(3);
    await q.add('a');
    await q.add('b');
    const first = await q.take();
    expect(await q.add(first!, { force: true, front: true })).toBe(true);
    expect([await q.take(), await q.take(), await q.take()]).toEqual(['a', 'b', undefined]);
  });

  it('is FIFO, bounded (unless forced) and removes cancelled ids', async () => {
    const q = new MemoryJobQueue(2);
    expect(await q.add('a')).toBe(true);
    expect(await q.add('b')).toBe(true);
    expect(await q.add('c')).toBe(false);
    expect(await q.add('r', { force: true })).toBe(true);
    expect(await q.size()).toBe(3);
    expect(await q.remove('b')).toBe(true);
    expect(await q.remove('b')).toBe(false);
    expect([await q.take(), await q.take(), await q.take()]).toEqual(['a', 'r', undefined]);
  });
});

describe.runIf(TEST_POSTGRES)('PostgresJobStore', () => {
  const url = TEST_POSTGRES!;
  const schemas: string[] = [];
  afterEach(async () => {
    for (const schema of schemas.splice(0)) await dropSchema(url, schema);
  });

  it('migrates once when several processes open the same schema at the same time', async () => {
    const schema = testSchema();
    schemas.push(schema);
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresJobStore.open({ url, schema, poolSize: 2 })));
    const rows = (await stores[0]!.pool.query('SELECT version FROM schema_migrations')).rows;
    expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    for (const s of stores) await s.close();
  });

  it('turns a lost server into StorageUnavailableError (503, Retry-After), tells listeners once, and recovers when it is back', async () => {
    const schema = testSchema();
    schemas.push(schema);
    const target = new URL(url);
    const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const store = await PostgresJobStore.open({ url: viaProxy.toString(), schema, poolSize: 2 });
    const seen: StorageStatus[] = [];
    store.onHealthChange((s) => seen.push(s));
    await store.create({ id: 'before', kind: 'analysis', spec: {} });

    await proxy.stop();
    const refused = await store.create({ id: 'during', kind: 'analysis', spec: {} }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(StorageUnavailableError);
    expect(refused).toMatchObject({ code: 'STORAGE_UNAVAILABLE', problem: 'unreachable', retryAfterSeconds: 5, message: expect.stringMatching(/GRADLENS_STORE/) });
    await expect(store.get('before')).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(await store.health({ probe: true })).toMatchObject({ ok: false, problem: 'unreachable' });
    expect(seen).toEqual([expect.objectContaining({ ok: false, problem: 'unreachable' })]);

    await proxy.start();
    expect(await store.health({ probe: true })).toMatchObject({ ok: true });
    expect(seen.map((s) => s.ok)).toEqual([false, true]);
    await store.create({ id: 'after', kind: 'analysis', spec: {} });
    expect(await store.queued()).toEqual(['before', 'after']);
    await store.close();
    await proxy.close();
  });

  it('refuses to open an unreachable server with a message naming GRADLENS_STORE and no password', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: 5432 });
    await proxy.stop();
    const err = await PostgresJobStore.open({ url: `postgres://someone:secret@127.0.0.1:${proxy.port}/test` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as Error).message).toMatch(/GRADLENS_STORE=postgres:\/\/someone:\*\*\*@127\.0\.0\.1/);
    expect((err as Error).message).not.toMatch(/secret/);
  });
});
