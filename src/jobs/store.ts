// Job persistence: the JobStore interface and its SQLite implementation (better-sqlite3, WAL, versioned migrations).
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SpecError } from '../engine/errors.js';

export const JOB_KINDS = ['analysis', 'training', 'sweep'] as const;
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'canceled']);

export interface JobError {
  code: string;
  message: string;
}

export interface JobSummary {
  id: string;
  kind: JobKind;
  status: JobStatus;
  progress: number;
  /** Times the job was started; more than 1 after a crash interrupted it. */
  attempts: number;
  error: JobError | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
}

export interface JobRecord extends JobSummary {
  /** The work as submitted (expect removed). */
  spec: unknown;
  expect: unknown;
  /** What the engine returned, once succeeded. */
  output: unknown;
}

export interface NewJob {
  id: string;
  kind: JobKind;
  spec: unknown;
  expect?: unknown;
}

export type JobOutcome =
  | { status: 'succeeded'; output: unknown }
  | { status: 'failed' | 'canceled'; error: JobError };

export interface JobListQuery {
  kind?: JobKind;
  status?: JobStatus;
  limit: number;
  /** Opaque cursor from a previous page's nextCursor. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobSummary[];
  nextCursor: string | null;
}

/**
 * Where jobs live. Methods are async so a networked store (Redis, Postgres) can implement them; state
 * changes are conditional (start only a queued job, finish only an unfinished one) so that a cancel and a
 * completion racing each other leave exactly one outcome.
 */
export interface JobStore {
  create(job: NewJob): Promise<JobRecord>;
  get(id: string): Promise<JobRecord | undefined>;
  list(query: JobListQuery): Promise<JobPage>;
  /** queued → running (attempts + 1); undefined when the job is not queued any more. */
  start(id: string): Promise<JobRecord | undefined>;
  /** Progress of a running job (0..1). */
  progress(id: string, progress: number): Promise<void>;
  /** queued/running → a final status; undefined when the job had already finished. */
  finish(id: string, outcome: JobOutcome): Promise<JobRecord | undefined>;
  /** running → queued, e.g. at a graceful shutdown; `refund` takes back the attempt it used. */
  requeue(id: string, refund: boolean): Promise<void>;
  /** Forgets a job that was never admitted to the queue. */
  remove(id: string): Promise<void>;
  /**
   * At start: jobs left `running` by a crash go back to `queued`, unless they have already been started
   * maxAttempts times (a job that keeps killing the process), which are failed with code INTERRUPTED.
   */
  recover(maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }>;
  /** Ids of queued jobs, oldest first. */
  queued(): Promise<string[]>;
  close(): Promise<void>;
}

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
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

interface Row {
  seq: number;
  id: string;
  kind: JobKind;
  status: JobStatus;
  progress: number;
  spec?: string;
  expect?: string | null;
  output?: string | null;
  error: string | null;
  attempts: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

const SUMMARY_COLUMNS = 'seq, id, kind, status, progress, error, attempts, created_at, started_at, finished_at, updated_at';

function toSummary(row: Row): JobSummary {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    progress: row.progress,
    attempts: row.attempts,
    error: row.error ? (JSON.parse(row.error) as JobError) : null,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

function toRecord(row: Row): JobRecord {
  return {
    ...toSummary(row),
    spec: JSON.parse(row.spec ?? 'null'),
    expect: row.expect ? JSON.parse(row.expect) : null,
    output: row.output ? JSON.parse(row.output) : null,
  };
}

const encodeCursor = (seq: number): string => Buffer.from(`seq:${seq}`).toString('base64url');

function decodeCursor(cursor: string): number {
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new SpecError('cursor', 'cursor is not one this server returned (use nextCursor from the previous page)');
  return Number(m[1]);
}

const now = (): string => new Date().toISOString();

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

export class SqliteJobStore implements JobStore {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(readonly path: string) {
    if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL lets readers (polling) proceed during a write; NORMAL is durable across process crashes in WAL
    // mode (an OS crash may lose the last transactions). The busy timeout stays short because the
    // driver is synchronous: waiting on another process's lock would block the event loop.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 200');
    migrate(this.db);
    const db = this.db;
    this.stmts = {
      insert: db.prepare(`INSERT INTO jobs (id, kind, status, progress, spec, expect, attempts, created_at, updated_at)
        VALUES (@id, @kind, 'queued', 0, @spec, @expect, 0, @now, @now)`),
      get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      start: db.prepare(`UPDATE jobs SET status = 'running', attempts = attempts + 1, progress = 0, started_at = @now, updated_at = @now
        WHERE id = @id AND status = 'queued'`),
      progress: db.prepare(`UPDATE jobs SET progress = @progress, updated_at = @now WHERE id = @id AND status = 'running'`),
      finish: db.prepare(`UPDATE jobs SET status = @status, output = @output, error = @error,
        progress = CASE WHEN @status = 'succeeded' THEN 1 ELSE progress END, finished_at = @now, updated_at = @now
        WHERE id = @id AND status IN ('queued', 'running')`),
      requeue: db.prepare(`UPDATE jobs SET status = 'queued', attempts = MAX(attempts - @refund, 0), progress = 0, started_at = NULL, updated_at = @now
        WHERE id = @id AND status = 'running'`),
      remove: db.prepare('DELETE FROM jobs WHERE id = ?'),
      running: db.prepare(`SELECT id, attempts FROM jobs WHERE status = 'running' ORDER BY seq`),
      fail: db.prepare(`UPDATE jobs SET status = 'failed', error = @error, finished_at = @now, updated_at = @now WHERE id = @id AND status = 'running'`),
      reset: db.prepare(`UPDATE jobs SET status = 'queued', progress = 0, started_at = NULL, updated_at = @now WHERE id = @id AND status = 'running'`),
      queued: db.prepare(`SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq`),
    };
  }

  async create(job: NewJob): Promise<JobRecord> {
    this.stmts.insert.run({
      id: job.id,
      kind: job.kind,
      spec: JSON.stringify(job.spec),
      expect: job.expect === undefined ? null : JSON.stringify(job.expect),
      now: now(),
    });
    return (await this.get(job.id))!;
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
    return this.stmts.start.run({ id, now: now() }).changes ? this.get(id) : undefined;
  }

  async progress(id: string, progress: number): Promise<void> {
    this.stmts.progress.run({ id, progress, now: now() });
  }

  async finish(id: string, outcome: JobOutcome): Promise<JobRecord | undefined> {
    const changed = this.stmts.finish.run({
      id,
      status: outcome.status,
      output: outcome.status === 'succeeded' ? JSON.stringify(outcome.output) : null,
      error: outcome.status === 'succeeded' ? null : JSON.stringify(outcome.error),
      now: now(),
    }).changes;
    return changed ? this.get(id) : undefined;
  }

  async requeue(id: string, refund: boolean): Promise<void> {
    this.stmts.requeue.run({ id, refund: refund ? 1 : 0, now: now() });
  }

  async remove(id: string): Promise<void> {
    this.stmts.remove.run(id);
  }

  async recover(maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }> {
    const requeued: string[] = [];
    const failed: string[] = [];
    this.db.transaction(() => {
      for (const { id, attempts } of this.stmts.running.all() as { id: string; attempts: number }[]) {
        if (attempts >= maxAttempts) {
          const error: JobError = {
            code: 'INTERRUPTED',
            message: `the server stopped while this job was running, ${attempts} time${attempts === 1 ? '' : 's'}; it is not retried again (GRADLENS_JOB_MAX_ATTEMPTS=${maxAttempts})`,
          };
          this.stmts.fail.run({ id, error: JSON.stringify(error), now: now() });
          failed.push(id);
        } else {
          this.stmts.reset.run({ id, now: now() });
          requeued.push(id);
        }
      }
    })();
    return { requeued, failed };
  }

  async queued(): Promise<string[]> {
    return (this.stmts.queued.all() as { id: string }[]).map((r) => r.id);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
