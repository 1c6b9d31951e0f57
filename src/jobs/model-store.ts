// Uploaded models (POST /v1/models): the file as sent and its description. The ModelStore interface is
// asynchronous so that it has two homes: SqliteModelStore, a table of its own in the job database file
// (config.jobs.db, through a connection of its own, so the job store is not touched), and PgModelStore
// (jobs/pg-model-store.ts), a table in the PostgreSQL schema of the jobs, which every API and worker process of a
// scaled-out deployment reads. One INSERT stores a model whole, so a refused or interrupted upload leaves nothing
// behind. Retention (jobs/retention.ts) deletes a model unused (neither uploaded nor analysed) for longer than the
// jobs' age limit, and the least recently used ones beyond GRADLENS_RETENTION_MAX_MODEL_BYTES.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SpecError, type ModelDescription } from '../engine/index.js';

export interface StoredModelSummary {
  id: string;
  format: ModelDescription['format'];
  bytes: number;
  createdAt: string;
  description: ModelDescription;
}

/** What retention applies to models (0 turns a rule off). */
export interface ModelRetentionPolicy {
  /** A model unused for longer than this is deleted. */
  maxAgeMs: number;
  /** Most bytes of model files kept; the least recently used beyond it are deleted. */
  maxModelBytes: number;
}

export interface ModelPruneResult {
  deleted: { age: number; bytes: number };
}

export interface ModelStore {
  put(id: string, file: Uint8Array, description: ModelDescription): Promise<StoredModelSummary>;
  get(id: string): Promise<StoredModelSummary | undefined>;
  file(id: string): Promise<Uint8Array | undefined>;
  list(limit: number): Promise<StoredModelSummary[]>;
  delete(id: string): Promise<boolean>;
  /** Marks a model used now (an analysis named it), which keeps it from the age rule. */
  touch(id: string, now?: number): Promise<void>;
  prune(policy: ModelRetentionPolicy, now?: number): Promise<ModelPruneResult>;
  close(): Promise<void>;
}

/**
 * The description as both stores keep it (JSON text). PostgreSQL's jsonb cannot hold a NUL character, so a model
 * whose names carry one is refused (400) by either store alike rather than stored by one and a 500 in the other.
 */
export function descriptionText(description: ModelDescription): string {
  let nul = false;
  const text = JSON.stringify(description, (_key, value: unknown) => {
    if (typeof value === 'string' && value.includes('\u0000')) nul = true;
    return value;
  });
  if (nul) throw new SpecError('body', 'the model\'s names (nodes, inputs, outputs or initializers) contain a NUL character, which gradlens does not store');
  return text;
}

interface Row { id: string; format: string; size: number; created_at: string; description: string }

const toSummary = (r: Row): StoredModelSummary => ({
  id: r.id, format: r.format as StoredModelSummary['format'], bytes: r.size, createdAt: r.created_at,
  description: JSON.parse(r.description) as ModelDescription,
});

export class SqliteModelStore implements ModelStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    const onDisk = path !== ':memory:' && path !== '' && !path.startsWith('file:');
    if (onDisk) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // The job store sets WAL on the same file; a second writer waits for the other rather than failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS imported_models (
      id TEXT PRIMARY KEY, format TEXT NOT NULL, file BLOB NOT NULL, size INTEGER NOT NULL,
      description TEXT NOT NULL, created_at TEXT NOT NULL, used_at TEXT)`);
    // A table from before retention knew models: the column added, its models used when they were uploaded.
    const columns = this.db.prepare('PRAGMA table_info(imported_models)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'used_at')) this.db.exec('ALTER TABLE imported_models ADD COLUMN used_at TEXT');
  }

  async put(id: string, file: Uint8Array, description: ModelDescription): Promise<StoredModelSummary> {
    const text = descriptionText(description);
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO imported_models (id, format, file, size, description, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, description.format, Buffer.from(file.buffer, file.byteOffset, file.byteLength), file.byteLength, text, createdAt, createdAt);
    return { id, format: description.format, bytes: file.byteLength, createdAt, description };
  }

  async get(id: string): Promise<StoredModelSummary | undefined> {
    const row = this.db.prepare('SELECT id, format, size, created_at, description FROM imported_models WHERE id = ?').get(id) as Row | undefined;
    return row ? toSummary(row) : undefined;
  }

  async file(id: string): Promise<Uint8Array | undefined> {
    const row = this.db.prepare('SELECT file FROM imported_models WHERE id = ?').get(id) as { file: Buffer } | undefined;
    return row ? new Uint8Array(row.file) : undefined;
  }

  async list(limit: number): Promise<StoredModelSummary[]> {
    const rows = this.db.prepare('SELECT id, format, size, created_at, description FROM imported_models ORDER BY created_at DESC, id LIMIT ?').all(limit) as Row[];
    return rows.map(toSummary);
  }

  async delete(id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM imported_models WHERE id = ?').run(id).changes > 0;
  }

  async touch(id: string, now = Date.now()): Promise<void> {
    this.db.prepare('UPDATE imported_models SET used_at = ? WHERE id = ?').run(new Date(now).toISOString(), id);
  }

  async prune(policy: ModelRetentionPolicy, now = Date.now()): Promise<ModelPruneResult> {
    const deleted = { age: 0, bytes: 0 };
    const used = 'COALESCE(used_at, created_at)';
    if (policy.maxAgeMs > 0) {
      deleted.age = this.db.prepare(`DELETE FROM imported_models WHERE ${used} < ?`).run(new Date(now - policy.maxAgeMs).toISOString()).changes;
    }
    if (policy.maxModelBytes > 0) {
      const rows = this.db.prepare(`SELECT id, size FROM imported_models ORDER BY ${used} DESC, id`).all() as { id: string; size: number }[];
      let kept = 0;
      const remove = this.db.prepare('DELETE FROM imported_models WHERE id = ?');
      for (const r of rows) {
        kept += r.size;
        if (kept > policy.maxModelBytes) deleted.bytes += remove.run(r.id).changes;
      }
    }
    return { deleted };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
