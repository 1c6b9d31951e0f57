// Job persistence in SQLite (better-sqlite3, WAL, versioned migrations, retention with incremental vacuum, and
// write guards that turn a full, read-only or replaced file into 503s); the JobStore contract is in store-types.ts.
import Database from 'better-sqlite3';
import { accessSync, constants, mkdirSync, statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { StorageUnavailableError, StoreOpenError, type StorageProblem } from './errors.js';
import { outputText } from './encoded.js';

import {
  JOB_STATUSES, type JobKind, type JobStatus, type JobRecord, type JobSummary, type NewJob, type JobOutcome, type JobListQuery, type JobPage,
  type JobStore, type RetentionPolicy, type RetentionReason, type PruneResult, type StoreStats, type StorageStatus, type JobError,
} from './store-types.js';
import { SUMMARY_COLUMNS, decodeCursor, encodeCursor, makeRecord, now, toRecord, toSummary, type Row } from './store-rows.js';

// The contract lives in store-types.ts; re-exported here, where the rest of the code has always found it.
export * from './store-types.js';
export { makeRecord } from './store-rows.js';


interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append-only: never edit a released migration, add the next version. */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'jobs',
    sql: `
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('analysis', 'training', 'sweep')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
        progress REAL NOT NULL DEFAULT 0,
        spec TEXT NOT NULL,
        expect TEXT,
        output TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX jobs_status_seq ON jobs (status, seq);
      CREATE INDEX jobs_kind_status_seq ON jobs (kind, status, seq);
    `,
  },
  {
    version: 2,
    name: 'retention',
    // size_bytes is written with the JSON so retention and /metrics never read the (overflowing) payloads;
    // the covering index serves counts, sums and the queued list, the partial one the age limit.
    sql: `
      ALTER TABLE jobs ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
      UPDATE jobs SET size_bytes = length(CAST(spec AS BLOB)) + COALESCE(length(CAST(expect AS BLOB)), 0)
        + COALESCE(length(CAST(output AS BLOB)), 0) + COALESCE(length(CAST(error AS BLOB)), 0);
      DROP INDEX jobs_status_seq;
      CREATE INDEX jobs_status_seq_size ON jobs (status, seq, size_bytes);
      CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Applies the migrations newer than the file's version, each in its own transaction. */
export function migrate(db: Database.Database): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(`the job database is at schema version ${current}, newer than this gradlens (${SCHEMA_VERSION}): upgrade gradlens or use another GRADLENS_DB`);
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, now());
    })();
  }
  return SCHEMA_VERSION;
}

const TERMINAL_SQL = "('succeeded', 'failed', 'canceled')";
const bytes = (text: string | null): number => (text === null ? 0 : Buffer.byteLength(text));
/** A write-ahead log longer than this is cut back after a checkpoint (SQLite's default keeps its longest size). */
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;
const IDENTITY_CHECK_MS = 2000;

export interface SqliteStoreOptions {
  /** How often the file at the path is compared with the one open (ms), besides before every write; 0: only then. */
  identityCheckMs?: number;
}

/** Storage faults by SQLite result code or Node errno; anything else is a bug, not an outage. */
function storageProblemOf(err: unknown): StorageProblem | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_READONLY_DBMOVED') return 'replaced';
  if (code.startsWith('SQLITE_FULL') || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return 'read_only';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code === 'EIO') return 'io_error';
  return undefined;
}

/** The short /ready form of a problem (no path: /ready is unauthenticated). */
const PROBLEM_DETAIL: Record<StorageProblem, string> = {
  full: 'not writable: the disk holding GRADLENS_DB is full',
  read_only: 'not writable: GRADLENS_DB is read-only',
  io_error: 'not writable: GRADLENS_DB gives I/O errors',
  replaced: 'the file at GRADLENS_DB was deleted or replaced while the server ran: restart the server',
  // A file is never unreachable; the networked store (pg-store.ts) is.
  unreachable: 'GRADLENS_DB cannot be reached',
};

/** The sentence an API client gets (names the variable, not the path). */
function problemMessage(problem: StorageProblem, cause: string): string {
  switch (problem) {
    case 'full':
      return `the disk holding the job database (GRADLENS_DB) is full (${cause}): new work is refused until space is freed, then it resumes by itself`;
    case 'read_only':
      return `the job database (GRADLENS_DB) is read-only (${cause}): new work is refused until it is writable again`;
    case 'io_error':
      return `the job database (GRADLENS_DB) cannot be written (${cause}): new work is refused until writes succeed again`;
    case 'unreachable':
      return `the job database (GRADLENS_DB) cannot be reached (${cause}): new work is refused until it can`;
    case 'replaced':
      return `the job database file at GRADLENS_DB ${cause} while the server ran: what this server writes would be lost at the next restart, so new work is refused; restart the server to use the file now at GRADLENS_DB`;
  }
}

function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

const sizeOf = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

export class SqliteJobStore implements JobStore {
  readonly db: Database.Database;
  private readonly stmts;
  /** dev:ino of the file opened; null for in-memory and URI databases, which cannot be swapped underneath. */
  private readonly identity: string | null;
  private readonly listeners = new Set<(status: StorageStatus) => void>();
  private failure: StorageStatus | null = null;
  private readonly identityTimer: NodeJS.Timeout | undefined;

  constructor(readonly path: string, options: SqliteStoreOptions = {}) {
    const onDisk = path !== ':memory:' && path !== '' && !path.startsWith('file:');
    try {
      if (onDisk) mkdirSync(dirname(path), { recursive: true });
      this.db = new Database(path);
    } catch (err) {
      throw openError(path, err);
    }
    try {
      this.configure();
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw openError(path, err);
    }
    this.identity = onDisk ? fileIdentity(path) : null;
    const db = this.db;
    this.stmts = {
      insert: db.prepare(`INSERT INTO jobs (id, kind, status, progress, spec, expect, attempts, created_at, updated_at, size_bytes)
        VALUES (@id, @kind, 'queued', 0, @spec, @expect, 0, @now, @now, @size)`),
      get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      // RETURNING: the row as written, in the same statement (no second read).
      start: db.prepare(`UPDATE jobs SET status = 'running', attempts = attempts + 1, progress = 0, started_at = @now, updated_at = @now
        WHERE id = @id AND status = 'queued' RETURNING ${SUMMARY_COLUMNS}, spec, expect`),
      progress: db.prepare(`UPDATE jobs SET progress = @progress, updated_at = @now WHERE id = @id AND status = 'running'`),
      finish: db.prepare(`UPDATE jobs SET status = @status, output = @output, error = @error, size_bytes = size_bytes + @size,
        progress = CASE WHEN @status = 'succeeded' THEN 1 ELSE progress END, finished_at = @now, updated_at = @now
        WHERE id = @id AND status IN ('queued', 'running') RETURNING ${SUMMARY_COLUMNS}, spec, expect`),
      requeue: db.prepare(`UPDATE jobs SET status = 'queued', attempts = MAX(attempts - @refund, 0), progress = 0, started_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'running'`),
      remove: db.prepare('DELETE FROM jobs WHERE id = ?'),
      deleteFinished: db.prepare(`DELETE FROM jobs WHERE id = ? AND status IN ${TERMINAL_SQL}`),
      running: db.prepare(`SELECT id, attempts FROM jobs WHERE status = 'running' ORDER BY seq`),
      fail: db.prepare(`UPDATE jobs SET status = 'failed', error = @error, size_bytes = size_bytes + @size, finished_at = @now, updated_at = @now
        WHERE id = @id AND status = 'running'`),
      reset: db.prepare(`UPDATE jobs SET status = 'queued', progress = 0, started_at = NULL, updated_at = @now WHERE id = @id AND status = 'running'`),
      queued: db.prepare(`SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq`),
      pruneAge: db.prepare(`DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < @cutoff AND status IN ${TERMINAL_SQL}`),
      pruneCount: db.prepare(`DELETE FROM jobs WHERE seq IN (
        SELECT seq FROM jobs WHERE status IN ${TERMINAL_SQL} ORDER BY seq DESC LIMIT -1 OFFSET @keep)`),
      // Keeps the newest finished jobs whose sizes add up to the budget left after the unfinished ones.
      pruneBytes: db.prepare(`DELETE FROM jobs WHERE seq IN (
        SELECT seq FROM (SELECT seq, SUM(size_bytes) OVER (ORDER BY seq DESC) AS newer FROM jobs WHERE status IN ${TERMINAL_SQL})
        WHERE newer > @budget)`),
      activeBytes: db.prepare(`SELECT COALESCE(SUM(size_bytes), 0) AS n FROM jobs WHERE status IN ('queued', 'running')`),
      stats: db.prepare('SELECT status, COUNT(*) AS n, COALESCE(SUM(size_bytes), 0) AS bytes FROM jobs GROUP BY status'),
      probe: db.prepare('INSERT INTO store_probe (id, at) VALUES (1, @now) ON CONFLICT (id) DO UPDATE SET at = excluded.at'),
    };
    const every = options.identityCheckMs ?? IDENTITY_CHECK_MS;
    if (this.identity && every > 0) {
      this.identityTimer = setInterval(() => {
        try {
          this.checkIdentity();
        } catch {
          // Reported to the health listeners by checkIdentity itself; a timer has nobody to throw to.
        }
      }, every);
      this.identityTimer.unref();
    }
  }

  private configure(): void {
    // Incremental auto-vacuum lets retention hand freed pages back to the file system (prune()); it has to
    // be chosen before the first table exists, so a file made by an older gradlens is converted once.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    // WAL lets readers (polling) proceed during a write; NORMAL is durable across process crashes in WAL
    // mode (an OS crash may lose the last transactions). The busy timeout stays short because the
    // driver is synchronous: waiting on another process's lock would block the event loop.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 200');
    this.db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    const hasTables = (this.db.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n > 0;
    if (hasTables && this.db.pragma('auto_vacuum', { simple: true }) !== 2) {
      try {
        this.db.exec('VACUUM');
      } catch (err) {
        // Needs free space about the file's size; without it the store works, freed pages are only reused.
        if (!storageProblemOf(err)) throw err;
      }
    }
  }

  onHealthChange(listener: (status: StorageStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setHealth(failure: StorageStatus | null): void {
    const before = this.failure;
    if (failure?.problem === before?.problem && (failure === null) === (before === null)) return;
    this.failure = failure;
    const status = failure ?? { ok: true, detail: 'writable again' };
    for (const listener of this.listeners) listener(status);
  }

  /** Marks the store failing (telling listeners once) and returns the error to throw. */
  private failed(problem: StorageProblem, cause: string, logCause: string): StorageUnavailableError {
    if (this.failure?.problem !== problem) {
      this.setHealth({ ok: false, problem, detail: PROBLEM_DETAIL[problem], since: now(), cause: logCause });
    }
    return new StorageUnavailableError(problem, problemMessage(problem, cause), problem === 'replaced' ? 60 : 30);
  }

  /**
   * Throws once the file at the path is not the file open: a deleted file lives on only while this process
   * holds it, so everything acknowledged from then on would be gone after a restart. Stays failed until one.
   */
  private checkIdentity(): void {
    if (this.replaced) throw this.failed('replaced', this.replaced.cause, this.replaced.log);
    if (!this.identity) return;
    const current = fileIdentity(this.path);
    if (current === this.identity) return;
    this.replaced = {
      cause: current === null ? 'was deleted' : 'was replaced by another file',
      log: `the open file is dev:inode ${this.identity}; the path ${current === null ? 'does not exist any more' : `is now ${current}`}`,
    };
    throw this.failed('replaced', this.replaced.cause, this.replaced.log);
  }

  private replaced: { cause: string; log: string } | undefined;

  /** Runs a write: refused when the file was replaced, storage faults become StorageUnavailableError. */
  private write<T>(fn: () => T): T {
    this.checkIdentity();
    let out: T;
    try {
      out = fn();
    } catch (err) {
      const problem = storageProblemOf(err);
      if (!problem) throw err;
      const code = (err as { code: string }).code;
      throw this.failed(problem, code, `${code}: ${(err as Error).message}`);
    }
    if (this.failure) this.setHealth(null);
    return out;
  }

  async create(job: NewJob): Promise<JobRecord> {
    const spec = JSON.stringify(job.spec);
    const expect = job.expect === undefined ? null : JSON.stringify(job.expect);
    const at = now();
    this.write(() => this.stmts.insert.run({ id: job.id, kind: job.kind, spec, expect, now: at, size: bytes(spec) + bytes(expect) }));
    // What was written, from what was given: no read back.
    const summary: JobSummary = {
      id: job.id, kind: job.kind, status: 'queued', progress: 0, attempts: 0, error: null,
      createdAt: at, startedAt: null, finishedAt: null, updatedAt: at,
    };
    return makeRecord(summary, job.spec, job.expect ?? null, null);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  async list(query: JobListQuery): Promise<JobPage> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.kind) { where.push('kind = ?'); params.push(query.kind); }
    if (query.status) { where.push('status = ?'); params.push(query.status); }
    if (query.cursor) { where.push('seq < ?'); params.push(decodeCursor(query.cursor)); }
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...params, query.limit + 1) as Row[];
    const more = rows.length > query.limit;
    const page = rows.slice(0, query.limit);
    return { jobs: page.map(toSummary), nextCursor: more ? encodeCursor(page[page.length - 1]!.seq) : null };
  }

  async start(id: string): Promise<JobRecord | undefined> {
    // all(), not get(): it steps the statement to its end, where the autocommit happens and a failed write
    // (a full disk) is reported; get() would stop at the first row and the reset would hide the error.
    const row = this.write(() => this.stmts.start.all({ id, now: now() }))[0] as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  async progress(id: string, progress: number): Promise<void> {
    this.write(() => this.stmts.progress.run({ id, progress, now: now() }));
  }

  async finish(id: string, outcome: JobOutcome): Promise<JobRecord | undefined> {
    // An encoded output (jobs/encoded.ts) is stored as it is: the result is not serialised again here.
    const output = outcome.status === 'succeeded' ? outputText(outcome.output) : null;
    const error = outcome.status === 'succeeded' ? null : JSON.stringify(outcome.error);
    // all(): see start().
    const row = this.write(() => this.stmts.finish.all({ id, status: outcome.status, output, error, size: bytes(output) + bytes(error), now: now() }))[0] as Row | undefined;
    if (!row) return undefined;
    // The record from what was given: the output text just written, not read back or parsed.
    return makeRecord(toSummary(row), JSON.parse(row.spec ?? 'null'), row.expect ? JSON.parse(row.expect) : null, output);
  }

  async requeue(id: string, refund: boolean): Promise<void> {
    this.write(() => this.stmts.requeue.run({ id, refund: refund ? 1 : 0, now: now() }));
  }

  async remove(id: string): Promise<void> {
    this.write(() => this.stmts.remove.run(id));
  }

  async deleteFinished(id: string): Promise<boolean> {
    return this.write(() => this.stmts.deleteFinished.run(id)).changes > 0;
  }

  async recover(maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }> {
    const requeued: string[] = [];
    const failed: string[] = [];
    this.write(() => this.db.transaction(() => {
      for (const { id, attempts } of this.stmts.running.all() as { id: string; attempts: number }[]) {
        if (attempts >= maxAttempts) {
          const error = JSON.stringify({
            code: 'INTERRUPTED',
            message: `the server stopped while this job was running, ${attempts} time${attempts === 1 ? '' : 's'}; it is not retried again (GRADLENS_JOB_MAX_ATTEMPTS=${maxAttempts})`,
          } satisfies JobError);
          this.stmts.fail.run({ id, error, size: bytes(error), now: now() });
          failed.push(id);
        } else {
          this.stmts.reset.run({ id, now: now() });
          requeued.push(id);
        }
      }
    })());
    return { requeued, failed };
  }

  async queued(): Promise<string[]> {
    return (this.stmts.queued.all() as { id: string }[]).map((r) => r.id);
  }

  async prune(policy: RetentionPolicy): Promise<PruneResult> {
    const before = this.fileBytes();
    const deleted: Record<RetentionReason, number> = { age: 0, count: 0, bytes: 0 };
    this.write(() => this.db.transaction(() => {
      if (policy.maxAgeMs > 0) deleted.age = this.stmts.pruneAge.run({ cutoff: new Date(Date.now() - policy.maxAgeMs).toISOString() }).changes;
      if (policy.maxJobs > 0) deleted.count = this.stmts.pruneCount.run({ keep: policy.maxJobs }).changes;
      if (policy.maxBytes > 0) {
        const active = (this.stmts.activeBytes.get() as { n: number }).n;
        deleted.bytes = this.stmts.pruneBytes.run({ budget: Math.max(0, policy.maxBytes - active) }).changes;
      }
    })());
    // Deleted rows (these, and those of DELETE requests) leave free pages: move them to the end of the file,
    // cut it there, and checkpoint so the truncation reaches the file and the log shrinks too.
    if ((this.db.pragma('freelist_count', { simple: true }) as number) > 0) {
      this.write(() => {
        this.db.pragma('incremental_vacuum');
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      });
    }
    return { deleted, reclaimedBytes: Math.max(0, before - this.fileBytes()) };
  }

  private fileBytes(): number {
    if (!this.identity) {
      return (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
    }
    return sizeOf(this.path) + sizeOf(`${this.path}-wal`);
  }

  async stats(): Promise<StoreStats> {
    const jobs = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    let dataBytes = 0;
    for (const row of this.stmts.stats.all() as { status: JobStatus; n: number; bytes: number }[]) {
      jobs[row.status] = row.n;
      dataBytes += row.bytes;
    }
    return { jobs, dataBytes, fileBytes: this.fileBytes() };
  }

  async health(options: { probe?: boolean } = {}): Promise<StorageStatus> {
    try {
      if (options.probe) {
        this.write(() => this.stmts.probe.run({ now: now() }));
      } else {
        this.checkIdentity();
      }
    } catch (err) {
      if (!(err instanceof StorageUnavailableError)) throw err;
    }
    if (this.failure) return this.failure;
    return { ok: true, detail: this.identity ? `writable, ${freeSpace(this.path)}` : 'writable (in memory)' };
  }

  async close(): Promise<void> {
    clearInterval(this.identityTimer);
    if (this.db.open) this.db.close();
  }
}

function freeSpace(path: string): string {
  try {
    const fs = statfsSync(dirname(path));
    return `${(fs.bavail * fs.bsize / 1e6).toFixed(0)} MB free`;
  } catch {
    return 'free space unknown';
  }
}

/**
 * Why the file or the directory it goes in cannot be written, if so: SQLite only says SQLITE_CANTOPEN when it
 * cannot create the -wal and -shm files next to a database on a read-only mount.
 */
function unwritable(path: string): StorageProblem | undefined {
  let target = path;
  for (;;) {
    try {
      accessSync(target, constants.W_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') return storageProblemOf(err);
    }
    const parent = dirname(target);
    if (parent === target) return undefined;
    target = parent;
  }
}

/** A start-up failure to open GRADLENS_DB, worded for the operator who set it. */
function openError(path: string, err: unknown): Error {
  const onDisk = path !== ':memory:' && path !== '' && !path.startsWith('file:');
  const found = storageProblemOf(err);
  // Node's recursive mkdir says ENOENT, SQLite CANTOPEN, where the real reason is a read-only mount: look.
  const problem = found !== 'read_only' && onDisk ? unwritable(path) ?? found : found;
  const reason = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const what = problem === 'read_only' ? 'it is read-only or its directory is'
    : problem === 'full' ? 'its disk is full'
    : problem ? 'it cannot be opened, created or written'
    : 'it is not a usable gradlens database';
  const message = `cannot open the job database GRADLENS_DB=${path}: ${what} (${typeof code === 'string' ? `${code}: ` : ''}${reason}). `
    + 'Point GRADLENS_DB at a writable file (":memory:" keeps jobs in memory only).';
  if (!problem) return new StoreOpenError(message, { cause: err });
  return new StorageUnavailableError(problem, message);
}
