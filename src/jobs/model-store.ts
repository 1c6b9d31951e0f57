// Uploaded models (POST /v1/models): the file as sent and its description, in their own SQLite table in the
// job database file (config.jobs.db, opened here through a connection of its own, so the job store is not
// touched). One INSERT stores a model whole, so a refused or interrupted upload leaves nothing behind.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ModelDescription } from '../engine/index.js';

export interface StoredModelSummary {
  id: string;
  format: ModelDescription['format'];
  bytes: number;
  createdAt: string;
  description: ModelDescription;
}

export interface ModelStore {
  put(id: string, file: Uint8Array, description: ModelDescription): StoredModelSummary;
  get(id: string): StoredModelSummary | undefined;
  file(id: string): Uint8Array | undefined;
  list(limit: number): StoredModelSummary[];
  delete(id: string): boolean;
  close(): void;
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
      description TEXT NOT NULL, created_at TEXT NOT NULL)`);
  }

  put(id: string, file: Uint8Array, description: ModelDescription): StoredModelSummary {
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO imported_models (id, format, file, size, description, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, description.format, Buffer.from(file.buffer, file.byteOffset, file.byteLength), file.byteLength, JSON.stringify(description), createdAt);
    return { id, format: description.format, bytes: file.byteLength, createdAt, description };
  }

  get(id: string): StoredModelSummary | undefined {
    const row = this.db.prepare('SELECT id, format, size, created_at, description FROM imported_models WHERE id = ?').get(id) as Row | undefined;
    return row ? toSummary(row) : undefined;
  }

  file(id: string): Uint8Array | undefined {
    const row = this.db.prepare('SELECT file FROM imported_models WHERE id = ?').get(id) as { file: Buffer } | undefined;
    return row ? new Uint8Array(row.file) : undefined;
  }

  list(limit: number): StoredModelSummary[] {
    const rows = this.db.prepare('SELECT id, format, size, created_at, description FROM imported_models ORDER BY created_at DESC, id LIMIT ?').all(limit) as Row[];
    return rows.map(toSummary);
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM imported_models WHERE id = ?').run(id).changes > 0;
  }

  close(): void {
    this.db.close();
  }
}
