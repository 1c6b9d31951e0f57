// The job manager: admits work into the store and the bounded queue, runs it on the Runner, and tells listeners.
import type { Runner } from './runner.js';
import type { JobQueue } from './queue.js';
import { TERMINAL_STATUSES, type JobKind, type JobListQuery, type JobPage, type JobRecord, type JobStore } from './store.js';
import { JobCanceledError, JobTimeoutError, QueueFullError, ShuttingDownError, jobErrorOf } from './errors.js';

/** What a job's engine work returns; its fields (spec, result, cost, timings, …) appear on the job. */
export type JobOutput = { result: unknown; spec?: unknown } & Record<string, unknown>;

export interface JobContext {
  job: JobRecord;
  runner: Runner;
  /** Aborted when the job is cancelled, times out or the server shuts down; pass it to the runner. */
  signal: AbortSignal;
  progress(progress: number): void;
  /** A partial result (a training record) for event-stream listeners, with progress. */
  record(record: unknown, progress: number): void;
}

export interface JobKindHandler {
  /** Validation and cost check before the job is stored: throws SpecError (400) or LimitError (422). */
  prepare(spec: unknown, expect: unknown): void | Promise<void>;
  run(ctx: JobContext): Promise<JobOutput>;
  /** Adds checks and passed to the output's result when the job carried expect. */
  evaluate?(expect: unknown, output: JobOutput): void;
}

export type JobEvent =
  | { type: 'state'; job: JobRecord }
  | { type: 'progress'; progress: number }
  | { type: 'record'; record: unknown; progress: number }
  | { type: 'done' | 'failed' | 'canceled'; job: JobRecord };

export type JobListener = (event: JobEvent) => void;

export interface ManagerOptions {
  store: JobStore;
  queue: JobQueue;
  runner: Runner;
  handlers: Record<JobKind, JobKindHandler>;
  /** Added to every output (which backend computed it). */
  environment(): Record<string, unknown>;
  timeoutMs: number;
  maxAttempts: number;
  newId(): string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface Live {
  controller: AbortController;
  progress: number;
  /** Records so far, replayed to event streams that connect mid-run. */
  records: { record: unknown; progress: number }[];
  lastProgressWrite: number;
  done: Promise<void>;
}

const PROGRESS_WRITE_INTERVAL_MS = 500;

export class JobManager {
  private readonly live = new Map<string, Live>();
  private readonly listeners = new Map<string, Set<JobListener>>();
  private readonly waiters = new Set<() => void>();
  private admitting = 0;
  private closing = false;
  private pumping = false;
  private pumpAgain = false;
  /** Exponential moving average of job run times, for Retry-After. */
  private averageRunMs = 5000;

  constructor(private readonly o: ManagerOptions) {}

  /** Re-queues what a crash interrupted, queues what was waiting, and starts running. */
  async start(): Promise<void> {
    const { requeued, failed } = await this.o.store.recover(this.o.maxAttempts);
    if (requeued.length || failed.length) this.o.log.warn({ requeued, failed }, 'recovered jobs interrupted by a previous stop');
    for (const id of await this.o.store.queued()) await this.o.queue.add(id, { force: true });
    this.pump();
  }

  get running(): number {
    return this.live.size;
  }

  async queued(): Promise<number> {
    return this.o.queue.size();
  }

  /** Validates, stores and queues a job; throws SpecError/LimitError for bad work and QueueFullError. */
  async submit(kind: JobKind, spec: unknown, expect?: unknown): Promise<JobRecord> {
    if (this.closing) throw new ShuttingDownError();
    await this.o.handlers[kind].prepare(spec, expect);
    // `admitting` counts submissions between the check and the add, so concurrent requests cannot
    // overshoot the limit while they await the store.
    if ((await this.o.queue.size()) + this.admitting >= this.o.queue.limit) throw this.queueFull();
    this.admitting++;
    let job: JobRecord;
    try {
      job = await this.o.store.create({ id: this.o.newId(), kind, spec, ...(expect !== undefined ? { expect } : {}) });
      if (!(await this.o.queue.add(job.id))) {
        await this.o.store.remove(job.id);
        throw this.queueFull();
      }
    } finally {
      this.admitting--;
    }
    this.pump();
    return job;
  }

  private queueFull(): QueueFullError {
    const slots = Math.max(1, this.o.runner.concurrency);
    const seconds = Math.ceil((this.averageRunMs * (this.o.queue.limit / slots)) / 1000);
    return new QueueFullError(this.o.queue.limit, Math.min(600, Math.max(1, seconds)));
  }

  get(id: string): Promise<JobRecord | undefined> {
    return this.o.store.get(id);
  }

  list(query: JobListQuery): Promise<JobPage> {
    return this.o.store.list(query);
  }

  /** Progress and records of a running job, for event streams that connect mid-run. */
  liveState(id: string): { progress: number; records: { record: unknown; progress: number }[] } | undefined {
    const live = this.live.get(id);
    return live ? { progress: live.progress, records: live.records } : undefined;
  }

  subscribe(id: string, listener: JobListener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  private emit(id: string, event: JobEvent): void {
    for (const listener of [...(this.listeners.get(id) ?? [])]) {
      try {
        listener(event);
      } catch (err) {
        this.o.log.error({ err, job: id }, 'job listener failed');
      }
    }
  }

  /** Resolves with the job once it has finished (succeeded, failed or canceled). */
  wait(id: string): Promise<JobRecord> {
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void): void => {
        unsubscribe();
        this.waiters.delete(abort);
        fn();
      };
      const abort = (): void => finish(() => reject(new ShuttingDownError(id)));
      const unsubscribe = this.subscribe(id, (event) => {
        if (event.type === 'done' || event.type === 'failed' || event.type === 'canceled') finish(() => resolve(event.job));
      });
      this.waiters.add(abort);
      // Subscribed first, then read: a job that finished in between is seen either way.
      this.o.store.get(id).then((job) => {
        if (!job) finish(() => reject(new Error(`job ${id} does not exist`)));
        else if (TERMINAL_STATUSES.has(job.status)) finish(() => resolve(job));
      }, (err: unknown) => finish(() => reject(err)));
    });
  }

  /**
   * Cancels a queued or running job: the stored status becomes canceled at once, and the compute stops
   * as soon as the runner can (see pool.ts). `changed` is false when the job had already finished.
   */
  async cancel(id: string): Promise<{ job: JobRecord; changed: boolean } | undefined> {
    const job = await this.o.store.get(id);
    if (!job) return undefined;
    if (TERMINAL_STATUSES.has(job.status)) return { job, changed: false };
    await this.o.queue.remove(id);
    const canceled = await this.o.store.finish(id, { status: 'canceled', error: { code: 'CANCELED', message: 'the job was canceled by a DELETE request' } });
    if (!canceled) return { job: (await this.o.store.get(id))!, changed: false };
    this.live.get(id)?.controller.abort(new JobCanceledError());
    this.emit(id, { type: 'canceled', job: canceled });
    return { job: canceled, changed: true };
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          while (!this.closing && this.live.size < Math.max(1, this.o.runner.concurrency)) {
            const id = await this.o.queue.take();
            if (id === undefined) break;
            await this.begin(id);
          }
        } while (this.pumpAgain && !this.closing);
      } catch (err) {
        this.o.log.error({ err }, 'job dispatch failed');
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** Marks the job running and starts it; returns once it is registered as live. */
  private async begin(id: string): Promise<void> {
    const job = await this.o.store.start(id);
    if (!job) return; // cancelled while it waited
    if (this.closing) {
      // close() began while the store answered: leave the job for the next start, as close() does.
      await this.o.store.requeue(id, true);
      return;
    }
    const controller = new AbortController();
    const live: Live = { controller, progress: 0, records: [], lastProgressWrite: 0, done: Promise.resolve() };
    this.live.set(id, live);
    this.emit(id, { type: 'state', job });
    live.done = this.execute(job, live);
  }

  private async execute(job: JobRecord, live: Live): Promise<void> {
    const { id, kind } = job;
    const { signal } = live.controller;
    const started = Date.now();
    const timer = this.o.timeoutMs > 0 ? setTimeout(() => live.controller.abort(new JobTimeoutError(this.o.timeoutMs)), this.o.timeoutMs) : undefined;
    const handler = this.o.handlers[kind];
    try {
      const output = await handler.run({
        job,
        runner: this.o.runner,
        signal,
        progress: (p) => this.onProgress(id, live, p),
        record: (record, p) => {
          live.records.push({ record, progress: p });
          this.emit(id, { type: 'record', record, progress: p });
          this.onProgress(id, live, p);
        },
      });
      if (signal.aborted) throw signal.reason;
      output.environment = this.o.environment();
      if (job.expect !== null && job.expect !== undefined) handler.evaluate?.(job.expect, output);
      const done = await this.o.store.finish(id, { status: 'succeeded', output });
      if (done) this.emit(id, { type: 'done', job: done });
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err;
      // Shutdown: close() has put the job back in the queue. Cancel: cancel() has stored and announced it.
      if (reason instanceof ShuttingDownError || (reason instanceof JobCanceledError && signal.aborted)) return;
      const error = jobErrorOf(reason);
      if (error.code === 'INTERNAL_ERROR') this.o.log.error({ err: reason, job: id, kind }, 'job failed');
      const failed = await this.o.store.finish(id, { status: 'failed', error });
      if (failed) this.emit(id, { type: 'failed', job: failed });
    } finally {
      clearTimeout(timer);
      this.live.delete(id);
      this.averageRunMs = 0.8 * this.averageRunMs + 0.2 * (Date.now() - started);
      this.pump();
    }
  }

  private onProgress(id: string, live: Live, progress: number): void {
    const p = Math.min(1, Math.max(0, progress));
    if (p === live.progress) return;
    live.progress = p;
    this.emit(id, { type: 'progress', progress: p });
    // Pollers see progress through the store; writes are throttled, event streams get every step.
    const now = Date.now();
    if (now - live.lastProgressWrite >= PROGRESS_WRITE_INTERVAL_MS) {
      live.lastProgressWrite = now;
      void this.o.store.progress(id, p).catch((err: unknown) => this.o.log.error({ err, job: id }, 'could not store progress'));
    }
  }

  /**
   * Graceful stop: running jobs go back to `queued` (their attempt refunded, since the job did not crash
   * the process) and run again after the restart; requests waiting on a job get ShuttingDownError.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const running = [...this.live.entries()];
    for (const [id, live] of running) {
      await this.o.store.requeue(id, true);
      live.controller.abort(new ShuttingDownError(id));
    }
    for (const abort of [...this.waiters]) abort();
    await Promise.allSettled(running.map(([, live]) => live.done));
  }
}
