// Retention on real databases (SQLite files; PostgreSQL where GRADLENS_TEST_POSTGRES is set): age, count and byte limits delete only finished jobs, the file shrinks, old files are migrated.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { SqliteJobStore, type JobStore, type RetentionPolicy } from '../../src/jobs/store.js';
import { RetentionTask } from '../../src/jobs/retention.js';
import { tempDir } from '../support/jobs.js';
import { STORE_HARNESSES, type StoreHarness } from '../support/stores.js';
import { ConfigError, loadConfig } from '../../src/config.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => { tmp = tempDir(); });
afterEach(() => tmp.remove());

const OFF: RetentionPolicy = { maxAgeMs: 0, maxJobs: 0, maxBytes: 0 };

/** Creates `n` jobs and finishes them succeeded with an output of about `outputBytes`; ids f0, f1, … oldest first. */
async function finishedJobs(store: JobStore, n: number, outputBytes = 100, prefix = 'f'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`;
    await store.create({ id, kind: 'analysis', spec: { i } });
    await store.start(id);
    await store.finish(id, { status: 'succeeded', output: { result: 'x'.repeat(outputBytes) } });
    ids.push(id);
  }
  return ids;
}

/** One queued and one running job: retention must never touch them. */
async function activeJobs(store: JobStore): Promise<void> {
  await store.create({ id: 'queued', kind: 'training', spec: { big: 'q'.repeat(5000) } });
  await store.create({ id: 'running', kind: 'training', spec: { big: 'r'.repeat(5000) } });
  await store.start('running');
}

const ids = (store: SqliteJobStore): string[] =>
  (store.db.prepare('SELECT id FROM jobs ORDER BY seq').all() as { id: string }[]).map((r) => r.id);

describe('retention', () => {
  it('gives the space back: the file shrinks after pruning (incremental vacuum + checkpoint)', async () => {
    const path = tmp.db();
    const store = new SqliteJobStore(path);
    await finishedJobs(store, 300, 20_000);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const before = statSync(path).size;
    expect(before).toBeGreaterThan(300 * 20_000);
    const result = await store.prune({ ...OFF, maxJobs: 10 });
    expect(result.deleted.count).toBe(290);
    const after = statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    // 10 of 300 jobs remain: the files hold little more than those (and the schema).
    expect(after).toBeLessThan(before / 10);
    expect(result.reclaimedBytes).toBeGreaterThan(before * 0.8);
    expect((await store.stats()).fileBytes).toBe(after);
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
    await store.close();
  });

  it('deleteFinished removes a finished job only', async () => {
    const store = new SqliteJobStore(tmp.db());
    await finishedJobs(store, 1);
    await activeJobs(store);
    expect(await store.deleteFinished('running')).toBe(false);
    expect(await store.deleteFinished('queued')).toBe(false);
    expect(await store.deleteFinished('f0')).toBe(true);
    expect(await store.deleteFinished('f0')).toBe(false);
    expect(ids(store)).toEqual(['queued', 'running']);
    await store.close();
  });

  it('migrates a version-1 file: sizes filled in from the stored JSON, converted to incremental auto-vacuum', async () => {
    const path = tmp.db('v1.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // The schema gradlens 0.1 wrote (migration 1), with one finished job.
    db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
      CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('analysis', 'training', 'sweep')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
        progress REAL NOT NULL DEFAULT 0, spec TEXT NOT NULL, expect TEXT, output TEXT, error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, updated_at TEXT NOT NULL);
      CREATE INDEX jobs_status_seq ON jobs (status, seq);
      CREATE INDEX jobs_kind_status_seq ON jobs (kind, status, seq);
      INSERT INTO schema_migrations VALUES (1, 'jobs', '2024-01-01T00:00:00.000Z');`);
    const spec = JSON.stringify({ network: { depth: 3, activation: 'tanh' }, note: 'ü' });
    const output = JSON.stringify({ result: { loss: 0.25, name: 'ß' } });
    db.prepare(`INSERT INTO jobs (id, kind, status, spec, output, created_at, finished_at, updated_at)
      VALUES ('old', 'analysis', 'succeeded', ?, ?, '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z', '2024-01-01T00:00:01.000Z')`).run(spec, output);
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(0);
    db.close();

    const store = new SqliteJobStore(path);
    expect(store.db.pragma('auto_vacuum', { simple: true })).toBe(2); // INCREMENTAL
    expect((await store.stats()).dataBytes).toBe(Buffer.byteLength(spec) + Buffer.byteLength(output));
    expect((await store.get('old'))!.output).toEqual({ result: { loss: 0.25, name: 'ß' } });
    expect((await store.prune({ ...OFF, maxAgeMs: 86_400_000 })).deleted.age).toBe(1);
    await store.close();
  });

  it('runs at start and on its interval, one pass at a time', async () => {
    const store = new SqliteJobStore(tmp.db());
    await finishedJobs(store, 5);
    const log = { info: () => {}, error: () => {} };
    const task = new RetentionTask({ store, policy: { ...OFF, maxJobs: 2 }, intervalMs: 100, log });
    task.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(ids(store)).toEqual(['f3', 'f4']);
    await finishedJobs(store, 3, 100, 'g');
    await new Promise((r) => setTimeout(r, 250));
    expect(ids(store)).toEqual(['g1', 'g2']);
    const [a, b] = [task.runOnce(), task.runOnce()];
    expect(a).toBe(b);
    await task.stop();
    await store.close();
  });
});

async function activeOnlyBytes(h: StoreHarness): Promise<number> {
  return Number((await h.sql(`SELECT SUM(${h.byteLength('spec')}) AS n FROM jobs WHERE status IN ('queued', 'running')`))[0]!.n);
}

/** The ids in the order stored, read by the harness's own SQL. */
const storedIds = async (h: StoreHarness): Promise<string[]> => (await h.sql('SELECT id FROM jobs ORDER BY seq')).map((r) => r.id as string);

/** The stored JSON's byte length as the database itself measures it: the oracle for the store's size_bytes bookkeeping. */
async function storedBytes(h: StoreHarness): Promise<number> {
  const len = (c: string): string => `COALESCE(${h.byteLength(c)}, 0)`;
  return Number((await h.sql(`SELECT COALESCE(SUM(${len('spec')} + ${len('expect')} + ${len('output')} + ${len('error')}), 0) AS n FROM jobs`))[0]!.n);
}

describe.each(STORE_HARNESSES)('retention on %s', (_name, harness) => {
  let h: StoreHarness;
  beforeEach(() => { h = harness(); });
  afterEach(async () => { await h.dispose(); });

  it('deletes finished jobs older than maxAgeMs, whatever their status, and never a queued or running one', async () => {
    const store = await h.open();
    await finishedJobs(store, 3);
    await store.create({ id: 'failed', kind: 'analysis', spec: {} });
    await store.finish('failed', { status: 'failed', error: { code: 'X', message: 'y' } });
    await store.create({ id: 'canceled', kind: 'analysis', spec: {} });
    await store.finish('canceled', { status: 'canceled', error: { code: 'CANCELED', message: 'y' } });
    await activeJobs(store);
    // Everything but f2 is two days old, the active ones included.
    const old = new Date(Date.now() - 2 * 86_400_000).toISOString();
    await h.sql(`UPDATE jobs SET created_at = ?, updated_at = ?, started_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END,
      finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? END WHERE id != 'f2'`, [old, old, old, old]);

    const result = await store.prune({ ...OFF, maxAgeMs: 86_400_000 });
    expect(result.deleted).toEqual({ age: 4, count: 0, bytes: 0 });
    expect(await storedIds(h)).toEqual(['f2', 'queued', 'running']);
    expect((await store.get('running'))!.status).toBe('running');
    await store.close();
  });

  it('keeps the newest maxJobs finished jobs, and every queued and running one on top', async () => {
    const store = await h.open();
    await finishedJobs(store, 4, 100, 'a');
    await activeJobs(store);
    await finishedJobs(store, 4, 100, 'b');
    const result = await store.prune({ ...OFF, maxJobs: 3 });
    expect(result.deleted.count).toBe(5);
    expect(await storedIds(h)).toEqual(['queued', 'running', 'b1', 'b2', 'b3']);
    // Idempotent.
    expect((await store.prune({ ...OFF, maxJobs: 3 })).deleted.count).toBe(0);
    await store.close();
  });

  it('keeps the newest finished jobs that fit in maxBytes next to the unfinished ones, counting bytes as the database stores them', async () => {
    const store = await h.open();
    await finishedJobs(store, 10, 1000);
    await activeJobs(store);
    const stats = await store.stats();
    expect(stats.dataBytes).toBe((await storedBytes(h)));
    expect(stats.jobs).toEqual({ queued: 1, running: 1, succeeded: 10, failed: 0, canceled: 0 });

    const perFinished = (await storedBytes(h)) - (await activeOnlyBytes(h));
    const each = perFinished / 10;
    // Room for the active jobs and three and a half finished ones: the three newest stay.
    const budget = (await activeOnlyBytes(h)) + Math.floor(3.5 * each);
    const result = await store.prune({ ...OFF, maxBytes: budget });
    expect(result.deleted.bytes).toBe(7);
    expect(await storedIds(h)).toEqual(['f7', 'f8', 'f9', 'queued', 'running']);
    expect((await store.stats()).dataBytes).toBeLessThanOrEqual(budget);

    // A budget smaller than the unfinished jobs alone deletes every finished job and nothing else.
    await store.prune({ ...OFF, maxBytes: 10 });
    expect(await storedIds(h)).toEqual(['queued', 'running']);
    await store.close();
  });
});

describe('retention configuration', () => {
  it('defaults to 30 days, 10 000 jobs, 1 GiB, every minute; reads GRADLENS_RETENTION_*; 0 turns a limit off', () => {
    expect(loadConfig({}).jobs.retention).toEqual({ maxAgeMs: 30 * 86_400_000, maxJobs: 10_000, maxBytes: 1024 ** 3, maxModelBytes: 4 * 1024 ** 3, intervalMs: 60_000 });
    const env = { GRADLENS_RETENTION_MAX_AGE_S: '3600', GRADLENS_RETENTION_MAX_JOBS: '0', GRADLENS_RETENTION_MAX_BYTES: '5000000', GRADLENS_RETENTION_INTERVAL_MS: '1000' };
    expect(loadConfig(env).jobs.retention).toEqual({ maxAgeMs: 3_600_000, maxJobs: 0, maxBytes: 5_000_000, maxModelBytes: 4 * 1024 ** 3, intervalMs: 1000 });
  });

  it('refuses bad values with a message naming the variable', () => {
    const bad: [name: string, value: string][] = [['GRADLENS_RETENTION_MAX_AGE_S', '-1'], ['GRADLENS_RETENTION_MAX_JOBS', '1.5'], ['GRADLENS_RETENTION_MAX_BYTES', 'lots'], ['GRADLENS_RETENTION_INTERVAL_MS', '10']];
    for (const [name, value] of bad) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name} must be an integer between \\d+ and \\d+, got "${value.replace('.', '\\.')}"$`));
    }
  });
});
