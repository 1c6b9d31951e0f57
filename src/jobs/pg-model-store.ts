// Uploaded models on PostgreSQL (GRADLENS_STORE=postgres://…): the table imported_models of the jobs' schema
// (migration 2 of pg-store.ts), so that a `gradlens worker` on another machine reads the file of a model uploaded to
// any API process. The semantics of the SQLite store: one INSERT stores a model whole, ids and times as text, list
// newest first, touch marks a use, prune by age of the last use and by bytes, least recently used first. A lost
// connection is a 503 with Retry-After (StorageUnavailableError), as for the jobs.
import type pg from 'pg';
import type { ModelDescription } from '../engine/index.js';
import { StorageUnavailableError } from './errors.js';
import { descriptionText, type ModelPruneResult, type ModelRetentionPolicy, type ModelStore, type StoredModelSummary } from './model-store.js';
import { PostgresJobStore, PROBLEM_DETAIL, RETRY_AFTER_S, problemOf, type PgStoreOptions } from './pg-store.js';

interface Row { id: string; format: string; size: string; created_at: string; description: ModelDescription }

const SUMMARY = 'id, format, size, created_at, description';
/** Binary order of the text columns, as SQLite compares them (and as the indexes of migration 2 are built). */
const C = 'COLLATE "C"';

const toSummary = (r: Row): StoredModelSummary => ({
  id: r.id, format: r.format as StoredModelSummary['format'], bytes: Number(r.size), createdAt: r.created_at, description: r.description,
});

export class PgModelStore implements ModelStore {
  /**
   * On a pool whose schema has the migrations applied (a PostgresJobStore's: the jobs and the models then share
   * its connections); `release` ends what this store owns, nothing when it shares.
   */
  constructor(private readonly pool: pg.Pool, private readonly release: () => Promise<void> = async () => undefined) {}

  /** A store with connections of its own: the schema migrated by the job store's migrations, the models' included. */
  static async open(options: PgStoreOptions): Promise<PgModelStore> {
    const jobs = await PostgresJobStore.open(options);
    return new PgModelStore(jobs.pool, () => jobs.close());
  }

  /** One statement; a connection-level failure becomes the 503 the job store gives, anything else is thrown. */
  private async query<R>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    try {
      return await this.pool.query<R & pg.QueryResultRow>(sql, params);
    } catch (err) {
      const problem = problemOf(err);
      if (!problem) throw err;
      const detail = PROBLEM_DETAIL[problem].replace(/ \(GRADLENS_STORE\)/, '');
      throw new StorageUnavailableError(problem, `the model store (GRADLENS_STORE, PostgreSQL) ${detail} (${(err as Error).message})`, RETRY_AFTER_S);
    }
  }

  async put(id: string, file: Uint8Array, description: ModelDescription): Promise<StoredModelSummary> {
    const text = descriptionText(description);
    const createdAt = new Date().toISOString();
    await this.query('INSERT INTO imported_models (id, format, file, size, description, created_at, used_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6)',
      [id, description.format, Buffer.from(file.buffer, file.byteOffset, file.byteLength), file.byteLength, text, createdAt]);
    return { id, format: description.format, bytes: file.byteLength, createdAt, description };
  }

  async get(id: string): Promise<StoredModelSummary | undefined> {
    const { rows } = await this.query<Row>(`SELECT ${SUMMARY} FROM imported_models WHERE id = $1`, [id]);
    return rows[0] ? toSummary(rows[0]) : undefined;
  }

  async file(id: string): Promise<Uint8Array | undefined> {
    const { rows } = await this.query<{ file: Buffer }>('SELECT file FROM imported_models WHERE id = $1', [id]);
    const file = rows[0]?.file;
    return file ? new Uint8Array(file.buffer, file.byteOffset, file.byteLength) : undefined;
  }

  async list(limit: number): Promise<StoredModelSummary[]> {
    const { rows } = await this.query<Row>(`SELECT ${SUMMARY} FROM imported_models ORDER BY created_at ${C} DESC, id ${C} LIMIT $1`, [limit]);
    return rows.map(toSummary);
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.query('DELETE FROM imported_models WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async touch(id: string, now = Date.now()): Promise<void> {
    await this.query('UPDATE imported_models SET used_at = $2 WHERE id = $1', [id, new Date(now).toISOString()]);
  }

  async prune(policy: ModelRetentionPolicy, now = Date.now()): Promise<ModelPruneResult> {
    const deleted = { age: 0, bytes: 0 };
    if (policy.maxAgeMs > 0) {
      deleted.age = (await this.query(`DELETE FROM imported_models WHERE used_at ${C} < $1`, [new Date(now - policy.maxAgeMs).toISOString()])).rowCount ?? 0;
    }
    if (policy.maxModelBytes > 0) {
      // Keeps the most recently used models whose sizes add up to the limit (the SQLite store's walk, in one statement).
      deleted.bytes = (await this.query(`DELETE FROM imported_models WHERE id IN (
        SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY used_at ${C} DESC, id ${C} ROWS UNBOUNDED PRECEDING) AS kept FROM imported_models) AS sized
        WHERE kept > $1)`, [policy.maxModelBytes])).rowCount ?? 0;
    }
    // As for the jobs: autovacuum would reuse the space; VACUUM also hands trailing empty pages of the files back.
    if (deleted.age + deleted.bytes > 0) await this.query('VACUUM imported_models');
    return { deleted };
  }

  async close(): Promise<void> {
    await this.release();
  }
}
