// The JobStore on PostgreSQL (node-postgres): the same table, transitions and retention as the SQLite store, shared
// by every API and worker process of a scaled-out deployment (GRADLENS_STORE=postgres://…). Versioned migrations
// under an advisory lock (processes starting together migrate once); a connection failure is a 503, not a 500.
import pg from 'pg';
import { StorageUnavailableError, StoreOpenError, type StorageProblem } from './errors.js';
import { outputText } from './encoded.js';
import {
  JOB_STATUSES, type JobError, type JobListQuery, type JobOutcome, type JobPage, type JobRecord, type JobStatus, type JobStore,
  type JobSummary, type NewJob, type PruneResult, type RetentionPolicy, type RetentionReason, type StorageStatus, type StoreStats,
} from './store-types.js';
import { SUMMARY_COLUMNS, decodeCursor, encodeCursor, makeRecord, now, toRecord, toSummary, type Row } from './store-rows.js';

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Append-only, like the SQLite list (never edit a released one). Timestamps are ISO text and payloads text, as in
 * SQLite: the stored output is the worker's JSON byte for byte (jobs/http.ts embeds it as it is).
 */
export const PG_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'jobs',
    sql: `
      CREATE TABLE jobs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('analysis', 'training', 'sweep')),
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
        progress DOUBLE PRECISION NOT NULL DEFAULT 0,
        spec TEXT NOT NULL,
        expect TEXT,
        output TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL,
        size_bytes BIGINT NOT NULL DEFAULT 0
      );
      CREATE INDEX jobs_status_seq_size ON jobs (status, seq, size_bytes);
      CREATE INDEX jobs_kind_status_seq ON jobs (kind, status, seq);
      CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT NOT NULL);
    `,
  },
  {
    // Uploaded models (jobs/pg-model-store.ts), beside the jobs whose specs name them: every API and worker process
    // reads the file from here. The file is stored as sent (EXTERNAL: float weights do not compress, so no attempt),
    // the description as jsonb; times are ISO text like the jobs' (used_at: the last upload or analysis).
    version: 2,
    name: 'models',
    sql: `
      CREATE TABLE imported_models (
        id TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        file BYTEA NOT NULL,
        size BIGINT NOT NULL,
        description JSONB NOT NULL,
        created_at TEXT NOT NULL,
        used_at TEXT NOT NULL
      );
      ALTER TABLE imported_models ALTER COLUMN file SET STORAGE EXTERNAL;
      CREATE INDEX imported_models_created ON imported_models (created_at COLLATE "C" DESC, id COLLATE "C");
      CREATE INDEX imported_models_used ON imported_models (used_at COLLATE "C");
    `,
  },
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** Any number: the advisory lock that serialises migrations of one schema across processes. */
const MIGRATION_LOCK = 0x67726164;
const TERMINAL_SQL = "('succeeded', 'failed', 'canceled')";
const bytes = (text: string | null): number => (text === null ? 0 : Buffer.byteLength(text));
/** How long a process waits for a connection before the request is answered 503 (not left hanging). */
const CONNECT_TIMEOUT_MS = 2000;
export const RETRY_AFTER_S = 5;

export interface PgStoreOptions {
  /** postgres://… (GRADLENS_STORE). */
  url: string;
  /** Schema holding the tables (created if missing); tests use one of their own. Default: public. */
  schema?: string;
  /** Connections per process. */
  poolSize?: number;
}

/** Connection-level failures: the server is down, restarting or unreachable, which ends when it is back. */
export function problemOf(err: unknown): StorageProblem | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : '';
  if (typeof code === 'string') {
    if (code === '53100') return 'full'; // disk_full
    if (code === '25006') return 'read_only'; // read_only_sql_transaction (a hot standby)
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return 'unreachable';
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code)) return 'unreachable';
  }
  if (/Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed/i.test(message)) return 'unreachable';
  return undefined;
}

export const PROBLEM_DETAIL: Record<StorageProblem, string> = {
  full: 'not writable: the PostgreSQL server (GRADLENS_STORE) is out of disk space',
  read_only: 'not writable: the PostgreSQL server (GRADLENS_STORE) is read-only (a standby?)',
  io_error: 'not writable: the PostgreSQL server (GRADLENS_STORE) gives errors',
  replaced: 'the PostgreSQL database changed under the server',
  unreachable: 'unreachable: no connection to the PostgreSQL server (GRADLENS_STORE)',
};

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

export class PostgresJobStore implements JobStore {
  private readonly listeners = new Set<(status: StorageStatus) => void>();
  private failure: StorageStatus | null = null;

  private constructor(readonly pool: pg.Pool, readonly schema: string) {}

  /** Connects, creates the schema if needed and applies the migrations this database lacks. */
  static async open(options: PgStoreOptions): Promise<PostgresJobStore> {
    const schema = options.schema ?? 'public';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new StoreOpenError(`PostgreSQL schema name "${schema}" must be a plain identifier`);
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // Every connection works in the schema: the same SQL serves the default and a test's own.
      options: `-c search_path=${schema}`,
    });
    // An idle connection that the server drops must not be an unhandled 'error' (which would end the process).
    pool.on('error', () => undefined);
    const store = new PostgresJobStore(pool, schema);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      const problem = problemOf(err);
      const message = `cannot open the job store GRADLENS_STORE=${redactUrl(options.url)}: ${(err as Error).message}`;
      if (problem) throw new StorageUnavailableError(problem, message, RETRY_AFTER_S);
      throw new StoreOpenError(message, { cause: err });
    }
    return store;
  }

  private async migrate(): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
      const current = Number((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v);
      if (current > PG_SCHEMA_VERSION) {
        throw new Error(`the job database is at schema version ${current}, newer than this gradlens (${PG_SCHEMA_VERSION}): upgrade gradlens or use another GRADLENS_STORE`);
      }
      for (const m of PG_MIGRATIONS) {
        if (m.version <= current) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]);
      }
      await client.query('COMMIT');
      return PG_SCHEMA_VERSION;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  onHealthChange(listener: (status: StorageStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setHealth(failure: StorageStatus | null): void {
    if ((failure === null) === (this.failure === null) && failure?.problem === this.failure?.problem) return;
    this.failure = failure;
    const status = failure ?? { ok: true, detail: 'writable again' };
    for (const listener of this.listeners) listener(status);
  }

  /**
   * Runs one statement (or a transaction in `fn`): connection faults become StorageUnavailableError (503 with
   * Retry-After) and mark the store failing until a statement succeeds again; anything else is a bug and thrown.
   */
  private async run<T>(fn: (client: pg.PoolClient | pg.Pool) => Promise<T>, transaction = false): Promise<T> {
    let out: T;
    try {
      if (!transaction) {
        out = await fn(this.pool);
      } else {
        const client = await this.pool.connect();
        try {
          await client.query('BEGIN');
          out = await fn(client);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      }
    } catch (err) {
      const problem = problemOf(err);
      if (!problem) throw err;
      const cause = `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}`;
      if (this.failure?.problem !== problem) this.setHealth({ ok: false, problem, detail: PROBLEM_DETAIL[problem], since: now(), cause });
      throw new StorageUnavailableError(problem, `the job store (GRADLENS_STORE, PostgreSQL) ${PROBLEM_DETAIL[problem].replace(/ \(GRADLENS_STORE\)/, '')} (${cause}): new work is refused until it answers again`, RETRY_AFTER_S);
    }
    if (this.failure) this.setHealth(null);
    return out;
  }

  private rows<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.run(async (c) => (await c.query(sql, params)).rows as R[]);
  }

  async create(job: NewJob): Promise<JobRecord> {
    const spec = JSON.stringify(job.spec);
    const expect = job.expect === undefined ? null : JSON.stringify(job.expect);
    const at = now();
    await this.rows(`INSERT INTO jobs (id, kind, status, progress, spec, expect, attempts, created_at, updated_at, size_bytes)
      VALUES ($1, $2, 'queued', 0, $3, $4, 0, $5, $5, $6)`, [job.id, job.kind, spec, expect, at, bytes(spec) + bytes(expect)]);
    const summary: JobSummary = {
      id: job.id, kind: job.kind, status: 'queued', progress: 0, attempts: 0, error: null,
      createdAt: at, startedAt: null, finishedAt: null, updatedAt: at,
    };
    return makeRecord(summary, job.spec, job.expect ?? null, null);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const [row] = await this.rows<Row>('SELECT * FROM jobs WHERE id = $1', [id]);
    return row ? toRecord(fixRow(row)) : undefined;
  }

  async list(query: JobListQuery): Promise<JobPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (query.kind) where.push(`kind = ${param(query.kind)}`);
    if (query.status) where.push(`status = ${param(query.status)}`);
    if (query.cursor) where.push(`seq < ${param(decodeCursor(query.cursor))}`);
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${param(query.limit + 1)}`;
    const rows = (await this.rows<Row>(sql, params)).map(fixRow);
    const more = rows.length > query.limit;
    const page = rows.slice(0, query.limit);
    return { jobs: page.map(toSummary), nextCursor: more ? encodeCursor(page[page.length - 1]!.seq) : null };
  }

  async start(id: string): Promise<JobRecord | undefined> {
    const [row] = await this.rows<Row>(`UPDATE jobs SET status = 'running', attempts = attempts + 1, progress = 0, started_at = $2, updated_at = $2
      WHERE id = $1 AND status = 'queued' RETURNING ${SUMMARY_COLUMNS}, spec, expect`, [id, now()]);
    return row ? toRecord(fixRow(row)) : undefined;
  }

  async progress(id: string, progress: number): Promise<void> {
    await this.rows(`UPDATE jobs SET progress = $2, updated_at = $3 WHERE id = $1 AND status = 'running'`, [id, progress, now()]);
  }

  async finish(id: string, outcome: JobOutcome): Promise<JobRecord | undefined> {
    const output = outcome.status === 'succeeded' ? outputText(outcome.output) : null;
    const error = outcome.status === 'succeeded' ? null : JSON.stringify(outcome.error);
    const [row] = await this.rows<Row>(`UPDATE jobs SET status = $2, output = $3, error = $4, size_bytes = size_bytes + $5,
        progress = CASE WHEN $2 = 'succeeded' THEN 1 ELSE progress END, finished_at = $6, updated_at = $6
      WHERE id = $1 AND status IN ('queued', 'running') RETURNING ${SUMMARY_COLUMNS}, spec, expect`,
    [id, outcome.status, output, error, bytes(output) + bytes(error), now()]);
    if (!row) return undefined;
    const fixed = fixRow(row);
    return makeRecord(toSummary(fixed), JSON.parse(fixed.spec ?? 'null'), fixed.expect ? JSON.parse(fixed.expect) : null, output);
  }

  async requeue(id: string, refund: boolean): Promise<void> {
    await this.rows(`UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - $2, 0), progress = 0, started_at = NULL, updated_at = $3
      WHERE id = $1 AND status = 'running'`, [id, refund ? 1 : 0, now()]);
  }

  async remove(id: string): Promise<void> {
    await this.rows('DELETE FROM jobs WHERE id = $1', [id]);
  }

  async deleteFinished(id: string): Promise<boolean> {
    return (await this.rows(`DELETE FROM jobs WHERE id = $1 AND status IN ${TERMINAL_SQL} RETURNING id`, [id])).length > 0;
  }

  async recover(maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }> {
    return this.run(async (c) => {
      const requeued: string[] = [];
      const failed: string[] = [];
      // FOR UPDATE: two processes recovering at once do not both decide about the same row.
      const running = (await c.query(`SELECT id, attempts FROM jobs WHERE status = 'running' ORDER BY seq FOR UPDATE`)).rows as { id: string; attempts: number }[];
      for (const { id, attempts } of running) {
        if (attempts >= maxAttempts) {
          const error = JSON.stringify({
            code: 'INTERRUPTED',
            message: `the server stopped while this job was running, ${attempts} time${attempts === 1 ? '' : 's'}; it is not retried again (GRADLENS_JOB_MAX_ATTEMPTS=${maxAttempts})`,
          } satisfies JobError);
          await c.query(`UPDATE jobs SET status = 'failed', error = $2, size_bytes = size_bytes + $3, finished_at = $4, updated_at = $4
            WHERE id = $1 AND status = 'running'`, [id, error, bytes(error), now()]);
          failed.push(id);
        } else {
          await c.query(`UPDATE jobs SET status = 'queued', progress = 0, started_at = NULL, updated_at = $2 WHERE id = $1 AND status = 'running'`, [id, now()]);
          requeued.push(id);
        }
      }
      return { requeued, failed };
    }, true);
  }

  async queued(): Promise<string[]> {
    return (await this.rows<{ id: string }>(`SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq`)).map((r) => r.id);
  }

  async prune(policy: RetentionPolicy): Promise<PruneResult> {
    const before = await this.fileBytes();
    const deleted: Record<RetentionReason, number> = { age: 0, count: 0, bytes: 0 };
    await this.run(async (c) => {
      if (policy.maxAgeMs > 0) {
        deleted.age = (await c.query(`DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 AND status IN ${TERMINAL_SQL}`,
          [new Date(Date.now() - policy.maxAgeMs).toISOString()])).rowCount ?? 0;
      }
      if (policy.maxJobs > 0) {
        deleted.count = (await c.query(`DELETE FROM jobs WHERE seq IN (
          SELECT seq FROM jobs WHERE status IN ${TERMINAL_SQL} ORDER BY seq DESC OFFSET $1)`, [policy.maxJobs])).rowCount ?? 0;
      }
      if (policy.maxBytes > 0) {
        const active = Number((await c.query(`SELECT COALESCE(SUM(size_bytes), 0) AS n FROM jobs WHERE status IN ('queued', 'running')`)).rows[0].n);
        // Keeps the newest finished jobs whose sizes add up to the budget left after the unfinished ones.
        deleted.bytes = (await c.query(`DELETE FROM jobs WHERE seq IN (
          SELECT seq FROM (SELECT seq, SUM(size_bytes) OVER (ORDER BY seq DESC) AS newer FROM jobs WHERE status IN ${TERMINAL_SQL}) AS sized
          WHERE newer > $1)`, [Math.max(0, policy.maxBytes - active)])).rowCount ?? 0;
      }
    }, true);
    // PostgreSQL's autovacuum reuses the space; a plain VACUUM here also hands trailing empty pages back.
    if (deleted.age + deleted.count + deleted.bytes > 0) await this.rows('VACUUM jobs');
    return { deleted, reclaimedBytes: Math.max(0, before - (await this.fileBytes())) };
  }

  private async fileBytes(): Promise<number> {
    const [row] = await this.rows<{ n: string }>(`SELECT pg_total_relation_size('jobs') AS n`);
    return Number(row?.n ?? 0);
  }

  async stats(): Promise<StoreStats> {
    const jobs = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    let dataBytes = 0;
    for (const row of await this.rows<{ status: JobStatus; n: string; bytes: string }>('SELECT status, COUNT(*) AS n, COALESCE(SUM(size_bytes), 0) AS bytes FROM jobs GROUP BY status')) {
      jobs[row.status] = Number(row.n);
      dataBytes += Number(row.bytes);
    }
    return { jobs, dataBytes, fileBytes: await this.fileBytes() };
  }

  async health(options: { probe?: boolean } = {}): Promise<StorageStatus> {
    try {
      if (options.probe) await this.rows('INSERT INTO store_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at', [now()]);
    } catch (err) {
      if (!(err instanceof StorageUnavailableError)) throw err;
    }
    if (this.failure) return this.failure;
    return { ok: true, detail: `writable (PostgreSQL, schema ${this.schema})` };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** node-postgres returns BIGINT as text: the sequence number is a JS number (well below 2^53). */
function fixRow(row: Row): Row {
  return { ...row, seq: Number(row.seq) };
}
