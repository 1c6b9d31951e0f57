// Rows of the jobs table as both stores read them (same columns in SQLite and PostgreSQL): records that parse
// their output lazily, list cursors, timestamps.
import { SpecError } from '../engine/index.js';
import type { JobError, JobKind, JobRecord, JobStatus, JobSummary } from './store-types.js';

export interface Row {
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

export const SUMMARY_COLUMNS = 'seq, id, kind, status, progress, error, attempts, created_at, started_at, finished_at, updated_at';

export function toSummary(row: Row): JobSummary {
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

/**
 * A record whose output is parsed only if someone reads `output`: a reply embeds `outputJson` instead.
 * `parsed` is the output when the caller has it already (the one it just stored).
 */
export function makeRecord(summary: JobSummary, spec: unknown, expect: unknown, outputJson: string | null, parsed?: { value: unknown }): JobRecord {
  let output = parsed;
  const record = {
    ...summary,
    spec,
    expect,
    get output(): unknown {
      output ??= { value: outputJson ? JSON.parse(outputJson) : null };
      return output.value;
    },
    set output(value: unknown) {
      output = { value };
    },
  } as JobRecord;
  Object.defineProperty(record, 'outputJson', { value: outputJson, enumerable: false });
  return record;
}

export function toRecord(row: Row): JobRecord {
  return makeRecord(toSummary(row), JSON.parse(row.spec ?? 'null'), row.expect ? JSON.parse(row.expect) : null, row.output ?? null);
}

export const encodeCursor = (seq: number): string => Buffer.from(`seq:${seq}`).toString('base64url');

export function decodeCursor(cursor: string): number {
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new SpecError('cursor', 'cursor is not one this server returned (use nextCursor from the previous page)');
  return Number(m[1]);
}

export const now = (): string => new Date().toISOString();

