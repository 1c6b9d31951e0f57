// Job-layer errors: each has a stable `code`, and crosses the worker boundary as { name, code, message, ... }.
import { SpecError, LimitError } from '../engine/index.js';

/** The queue is full: the HTTP layer answers 503 with Retry-After instead of letting the request wait. */
export class QueueFullError extends Error {
  readonly code = 'QUEUE_FULL';
  constructor(readonly limit: number, readonly retryAfterSeconds: number) {
    super(`the job queue is full (${limit} waiting, GRADLENS_QUEUE_LIMIT); retry in about ${retryAfterSeconds} s`);
    this.name = 'QueueFullError';
  }
}

/** The server is closing: work is kept (queued jobs run after the restart) but this request cannot wait for it. */
export class ShuttingDownError extends Error {
  readonly code = 'SHUTTING_DOWN';
  constructor(readonly jobId?: string) {
    super(jobId ? `the server is shutting down; job ${jobId} is kept and runs after the restart` : 'the server is shutting down');
    this.name = 'ShuttingDownError';
  }
}

/** A job (or one of its tasks) was cancelled; the engine's CancelledError uses the same code. */
export class JobCanceledError extends Error {
  readonly code = 'CANCELED';
  constructor(message = 'the job was canceled') {
    super(message);
    this.name = 'JobCanceledError';
  }
}

/** What is wrong with the job database's storage; each comes with a sentence for operators. */
import type { StorageProblem } from '../schemas/vocabulary.js';
export { STORAGE_PROBLEMS, type StorageProblem } from '../schemas/vocabulary.js';

/**
 * The job database cannot take writes (disk full, read-only or failing storage, or the file at GRADLENS_DB
 * deleted or replaced while the server ran). Work that would have to be stored is refused with 503 and
 * Retry-After instead of being acknowledged and lost; reads keep working.
 */
export class StorageUnavailableError extends Error {
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor(readonly problem: StorageProblem, message: string, readonly retryAfterSeconds = 30, readonly jobId?: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

/**
 * The distributed queue (BullMQ on the Redis of GRADLENS_QUEUE) cannot be reached: new work is refused with 503 and
 * Retry-After rather than stored and never run; jobs already accepted stay in the store and are enqueued again later.
 */
export class QueueUnavailableError extends Error {
  readonly code = 'QUEUE_UNAVAILABLE';
  constructor(message: string, readonly retryAfterSeconds = 5) {
    super(message);
    this.name = 'QueueUnavailableError';
  }
}

/** GRADLENS_DB cannot be opened at start for a reason other than storage (not a database, newer schema). */
export class StoreOpenError extends Error {
  readonly code = 'STORE_OPEN_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreOpenError';
  }
}

export class JobTimeoutError extends Error {
  readonly code = 'TIMEOUT';
  constructor(readonly timeoutMs: number) {
    super(`the job ran longer than GRADLENS_JOB_TIMEOUT_MS (${timeoutMs} ms)`);
    this.name = 'JobTimeoutError';
  }
}

/** A compute worker died (out of memory, native crash) while it ran the task. */
export class WorkerCrashedError extends Error {
  readonly code = 'WORKER_CRASHED';
  constructor(message: string) {
    super(message);
    this.name = 'WorkerCrashedError';
  }
}

/** Any other error thrown in a worker, with its name and code preserved. */
export class RemoteError extends Error {
  constructor(name: string, readonly code: string, message: string, readonly remoteStack?: string) {
    super(message);
    this.name = name;
  }
}

export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  stack?: string;
  field?: string;
  limit?: string;
  value?: number;
  max?: number;
}

/** Plain-object form that survives postMessage (class identity does not). */
export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const e = err as Error & Partial<Omit<SerializedError, 'name' | 'message'>>;
  const out: SerializedError = { name: e.name, message: e.message };
  if (typeof e.code === 'string') out.code = e.code;
  if (e.stack) out.stack = e.stack;
  if (typeof e.field === 'string') out.field = e.field;
  if (typeof e.limit === 'string') out.limit = e.limit;
  if (typeof e.value === 'number') out.value = e.value;
  if (typeof e.max === 'number') out.max = e.max;
  return out;
}

/** Rebuilds the classes the HTTP layer maps (SpecError → 400, LimitError → 422) and the job codes. */
export function deserializeError(e: SerializedError): Error {
  if (e.code === 'INVALID_SPEC') return new SpecError(e.field ?? '', e.message);
  if (e.code === 'LIMIT_EXCEEDED') return new LimitError(e.limit ?? '', e.value ?? NaN, e.max ?? NaN, e.message);
  if (e.code === 'CANCELED') return new JobCanceledError(e.message);
  return new RemoteError(e.name, e.code ?? 'INTERNAL_ERROR', e.message, e.stack);
}

/** Codes whose messages are written for users, so a failed job may show them. */
const PUBLIC_CODES = new Set(['INVALID_SPEC', 'LIMIT_EXCEEDED', 'CANCELED', 'TIMEOUT', 'WORKER_CRASHED', 'INTERRUPTED', 'BACKEND_UNAVAILABLE', 'QUEUE_FULL', 'SHUTTING_DOWN', 'STORAGE_UNAVAILABLE', 'RESULT_NOT_STORED', 'QUEUE_UNAVAILABLE']);

/** The { code, message } a failed job shows; unexpected errors keep their message out of the API. */
export function jobErrorOf(err: unknown): { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && PUBLIC_CODES.has(code)) return { code, message: err.message };
  return { code: 'INTERNAL_ERROR', message: 'the job failed with an internal error (see the server log)' };
}
