// The SQLite job store on real files: pragmas, versioned migrations, conditional transitions, pagination and crash recovery.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { renameSync } from 'node:fs';
import { SqliteJobStore, SCHEMA_VERSION, type StorageStatus } from '../../src/jobs/store.js';
import { StorageUnavailableError } from '../../src/jobs/errors.js';
import { MemoryJobQueue } from '../../src/jobs/queue.js';
import { tempDir } from '../support/jobs.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => { tmp = tempDir(); });
afterEach(() => tmp.remove());

describe('SqliteJobStore', () => {
  it('creates the file in WAL mode with synchronous=NORMAL and records its migrations once', async () => {
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

  it('refuses a database written by a newer schema', async () => {
    const path = tmp.db();
    await new SqliteJobStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, ?)').run('future', new Date().toISOString());
    db.close();
    expect(() => new SqliteJobStore(path)).toThrow(/schema version 99, newer/);
  });

  it('starts only queued jobs and finishes only unfinished ones, so a cancel and a completion cannot both win', async () => {
    const store = new SqliteJobStore(tmp.db());
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
    const store = new SqliteJobStore(tmp.db());
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
    const path = tmp.db();
    const store = new SqliteJobStore(path);
    for (const id of ['once', 'thrice', 'waiting']) await store.create({ id, kind: 'analysis', spec: {} });
    await store.start('once');
    for (let i = 0; i < 3; i++) {
      await store.start('thrice');
      if (i < 2) await store.requeue('thrice', false);
    }
    // The process dies here: no finish, no requeue. Reopen the same file.
    store.db.close();
    const reopened = new SqliteJobStore(path);
    const { requeued, failed } = await reopened.recover(3);
    expect(requeued).toEqual(['once']);
    expect(failed).toEqual(['thrice']);
    expect(await reopened.get('once')).toMatchObject({ status: 'queued', attempts: 1, startedAt: null });
    expect(await reopened.get('thrice')).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'INTERRUPTED' } });
    expect(await reopened.queued()).toEqual(['once', 'waiting']);
    await reopened.close();
  });

  it('refunds the attempt of a job put back by a graceful shutdown', async () => {
    const store = new SqliteJobStore(tmp.db());
    await store.create({ id: 'j', kind: 'analysis', spec: {} });
    await store.start('j');
    await store.requeue('j', true);
    expect(await store.get('j')).toMatchObject({ status: 'queued', attempts: 0 });
    await store.close();
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
