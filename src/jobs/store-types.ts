// The job store's contract: what the manager, retention, routes and metrics rely on, whichever database holds
// the jobs (SQLite in src/jobs/store.ts, PostgreSQL in src/jobs/pg-store.ts).
import { JOB_KINDS, JOB_STATUSES, TERMINAL_STATUSES as TERMINAL, type JobKind, type JobStatus } from '../schemas/vocabulary.js';
import type { StorageProblem } from './errors.js';

export { JOB_KINDS, JOB_STATUSES };
export type { JobKind, JobStatus };
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(TERMINAL);

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
  /** What the engine returned, once succeeded (parsed from outputJson when first read). */
  output: unknown;
  /**
   * The output's JSON text as stored (not enumerable): what a reply embeds as it is (jobs/http.ts jobViewText),
   * so a result is encoded once, by the worker, and never parsed again to be sent.
   */
  readonly outputJson?: string | null;
}

export interface NewJob {
  id: string;
  kind: JobKind;
  spec: unknown;
  expect?: unknown;
}

export type JobOutcome =
  /** output: the engine's output, or already encoded (jobs/encoded.ts), which is then stored as it is. */
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

/** Which finished jobs are kept; 0 turns a limit off. Queued and running jobs are never deleted. */
export interface RetentionPolicy {
  /** Finished jobs whose finishedAt is older than this are deleted. */
  maxAgeMs: number;
  /** Most finished jobs kept; the oldest beyond it are deleted. */
  maxJobs: number;
  /** Most bytes of job data (spec, expect, result and error as stored JSON), queued and running jobs included. */
  maxBytes: number;
}

export const RETENTION_REASONS = ['age', 'count', 'bytes'] as const;
export type RetentionReason = (typeof RETENTION_REASONS)[number];

export interface PruneResult {
  deleted: Record<RetentionReason, number>;
  /** How much smaller the files on disk (database + write-ahead log) are afterwards. */
  reclaimedBytes: number;
}

export interface StoreStats {
  jobs: Record<JobStatus, number>;
  /** Bytes of job data as stored JSON: what GRADLENS_RETENTION_MAX_BYTES counts. */
  dataBytes: number;
  /** Bytes on disk: the database file plus its write-ahead log (the page count for an in-memory store). */
  fileBytes: number;
}

/** Whether the store can acknowledge writes; `detail` is short and names no path (it is shown on /ready). */
export interface StorageStatus {
  ok: boolean;
  problem?: StorageProblem;
  detail: string;
  /** When the problem was first seen. */
  since?: string;
  /** The error behind it, for the log (not shown on /ready). */
  cause?: string;
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
  /** Deletes a finished (succeeded, failed, canceled) job; false when there is none or it has not finished. */
  deleteFinished(id: string): Promise<boolean>;
  /** Applies the retention policy to finished jobs and gives the freed pages back to the file system. */
  prune(policy: RetentionPolicy): Promise<PruneResult>;
  stats(): Promise<StoreStats>;
  /** Whether writes can be acknowledged; `probe` makes a small real write to find out rather than trust the last one. */
  health(options?: { probe?: boolean }): Promise<StorageStatus>;
  /** Called when writes start or stop failing, so the outage is logged once, not per request. */
  onHealthChange(listener: (status: StorageStatus) => void): () => void;
  /**
   * At start: jobs left `running` by a crash go back to `queued`, unless they have already been started
   * maxAttempts times (a job that keeps killing the process), which are failed with code INTERRUPTED.
   */
  recover(maxAttempts: number): Promise<{ requeued: string[]; failed: string[] }>;
  /** Ids of queued jobs, oldest first. */
  queued(): Promise<string[]>;
  close(): Promise<void>;
}

