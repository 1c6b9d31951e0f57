// The job manager: admits work into the store and the bounded queue, runs it on the Runner, tells listeners, and
// keeps a finished job's outcome in memory (retrying) while the store cannot take the write.
import type { Runner } from './runner.js';
import type { JobQueue } from './queue.js';
import { TERMINAL_STATUSES, type JobKind, type JobListQuery, type JobOutcome, type JobPage, type JobRecord, type JobStore, type StorageStatus, type StoreStats } from './store.js';
import { JobCanceledError, JobTimeoutError, QueueFullError, ShuttingDownError, StorageUnavailableError, jobErrorOf } from './errors.js';
import { isEncodedOutput, outputText, withField, type EncodedOutput } from './encoded.js';

/** What a job's engine work returns; its fields (spec, result, cost, timings, …) appear on the job. */
export type JobOutput = { result: unknown; spec?: unknown } & Record<string, unknown>;

export interface JobContext {
  job: JobRecord;
  /**
   * What prepare() returned for this job (e.g. the normalised spec), when this process admitted it: the work
   * is validated and normalised once, on the HTTP thread, and handed on as it is. Absent for a job recovered
   * after a restart, whose run starts again from job.spec.
   */
  prepared?: unknown;
  runner: Runner;
  /** Aborted when the job is cancelled, times out or the server shuts down; pass it to the runner. */
  signal: AbortSignal;
  progress(progress: number): void;
  /** A partial result (a training record) for event-stream listeners, with progress. */
  record(record: unknown, progress: number): void;
}

/** How a job is submitted: a synchronous request also fits the tighter budget of work a client waits for. */
export interface SubmitOptions {
  synchronous?: boolean;
}

export interface JobKindHandler {
  /**
   * Validation and cost check before the job is stored: throws SpecError (400) or LimitError (422). What it
   * returns (the normalised work) reaches run() as ctx.prepared.
   */
  prepare(spec: unknown, expect: unknown, options: SubmitOptions): unknown;
  /** The output, or the output already encoded where it was computed (stored and sent as that text). */
  run(ctx: JobContext): Promise<JobOutput | EncodedOutput>;
  /** Adds checks and passed to the output's result when the job carried expect. */
  evaluate?(expect: unknown, output: JobOutput): void;
}

export type JobEvent =
  | { type: 'state'; job: JobRecord }
  | { type: 'progress'; progress: number }
  /** index: the record's position in the run (0, 1, …), so a stream that replays earlier records can continue without gaps. */
  | { type: 'record'; record: unknown; progress: number; index: number }
  | { type: 'done' | 'failed' | 'canceled'; job: JobRecord }
  /** The job finished but the store refused its outcome: kept in memory and retried; `done`/`failed` follow once stored. */
  | { type: 'unsaved'; error: StorageUnavailableError };

export type JobListener = (event: JobEvent) => void;

/** A job event as it travels between processes: the job itself is read from the shared store by whoever needs it. */
export type BusEvent =
  | { type: 'progress'; progress: number }
  | { type: 'record'; record: unknown; progress: number; index: number }
  | { type: 'state' | 'done' | 'failed' | 'canceled' };

/**
 * Events and cancellations between the processes of a scaled-out deployment (distributed/bus.ts on Redis): the
 * process that runs a job publishes its events; the others re-announce them; a cancel reaches whoever runs the job.
 */
export interface JobBus {
  publish(id: string, event: BusEvent): void;
  onEvent(listener: (id: string, event: BusEvent) => void): void;
  cancel(id: string): Promise<void>;
  onCancel(listener: (id: string) => void): void;
  /** The records so far of a job that runs in another process. */
  records(id: string): Promise<{ record: unknown; progress: number }[]>;
  clearRecords(id: string): Promise<void>;
}

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
  /**
   * Whether this process takes jobs from the queue itself (the default). false with a distributed queue: workers pull
   * from Redis and call runClaimed().
   */
  dispatch?: boolean;
  /**
   * Whether start() re-queues the jobs the store says are running (a crash of this, the only, process). false with a
   * distributed queue, where other processes run jobs and BullMQ's stalled-job check finds the ones whose worker died.
   */
  recoverAtStart?: boolean;
  /** With a distributed queue: re-enqueue the store's queued jobs this often (ms), for jobs a Redis restart lost. */
  reenqueueMs?: number;
  /**
   * With reenqueueMs: a job the store has had `running` for longer than this while the queue holds no entry for it
   * (Redis lost it, and with it BullMQ's record of the worker's claim, so its stalled-job check cannot find it) is
   * put back in the queue, as a crashed run: its attempt counts. Default: no such check.
   */
  orphanGraceMs?: number;
  bus?: JobBus;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface Live {
  controller: AbortController;
  startedAt: number;
  progress: number;
  /** Records so far, replayed to event streams that connect mid-run. */
  records: { record: unknown; progress: number }[];
  lastProgressWrite: number;
  done: Promise<void>;
}

const PROGRESS_WRITE_INTERVAL_MS = 500;
/** /ready may be polled often: one probe write per this interval is enough. */
const PROBE_INTERVAL_MS = 500;
/** Run times kept for the Retry-After estimate of a full queue. */
const RECENT_RUNS = 32;
/** Backoff of retries while the store refuses writes (outcomes kept in memory, dispatch paused). */
const STORAGE_RETRY_MIN_MS = 500;
const STORAGE_RETRY_MAX_MS = 5000;
/**
 * An outcome refused this many times while smaller writes succeed (the probe) does not fit in what space is
 * left: the job is failed with RESULT_NOT_STORED instead of being held in memory until someone frees space.
 */
const UNSAVED_MAX_FAILURES = 5;

interface Unsaved {
  job: JobRecord;
  outcome: JobOutcome;
  failures: number;
}

const finalEvent = (job: JobRecord): 'done' | 'failed' | 'canceled' =>
  job.status === 'succeeded' ? 'done' : job.status === 'failed' ? 'failed' : 'canceled';

/** Errors that mean this outcome can never be stored (too large for SQLite or for a JS string), not an outage. */
const unstorable = (err: unknown): boolean =>
  (err as { code?: unknown } | null)?.code === 'SQLITE_TOOBIG' || (err instanceof RangeError && /string length/i.test(err.message));

export class JobManager {
  private readonly live = new Map<string, Live>();
  /** What prepare() returned for jobs admitted by this process and not started yet (bounded by the queue limit). */
  private readonly prepared = new Map<string, unknown>();
  private readonly listeners = new Map<string, Set<JobListener>>();
  private readonly waiters = new Set<() => void>();
  private admitting = 0;
  private closing = false;
  private pumping = false;
  private pumpAgain = false;
  /** Run times of the latest jobs (ms), for Retry-After. */
  private readonly recentRunMs: number[] = [];
  /** Finished jobs whose outcome the store refused, retried until it takes them. */
  private readonly unsaved = new Map<string, Unsaved>();
  private storageRetryMs = STORAGE_RETRY_MIN_MS;
  private storageTimer: NodeJS.Timeout | undefined;
  /** Set while a job could not be started because the store refused the write; the retry timer resumes. */
  private dispatchPaused = false;
  private readonly unwatchStore: () => void;

  constructor(private readonly o: ManagerOptions) {
    // Writes work again (a probe or another write found out): resume at once instead of at the next retry.
    this.unwatchStore = o.store.onHealthChange((status) => {
      if (status.ok && (this.unsaved.size || this.dispatchPaused)) this.retryStorageSoon(0);
    });
    o.bus?.onEvent((id, event) => this.fromBus(id, event));
    o.bus?.onCancel((id) => this.live.get(id)?.controller.abort(new JobCanceledError()));
  }

  /** An event of a job that another process runs: announced here as if it ran here (the job read from the store). */
  private fromBus(id: string, event: BusEvent): void {
    if (this.live.has(id) || !this.listeners.has(id)) return;
    if (event.type === 'progress' || event.type === 'record') {
      this.emit(id, event, true);
      return;
    }
    this.o.store.get(id).then((job) => {
      if (!job) return;
      // A final event whose row is not final yet cannot happen (the worker stores first); state events may lag.
      if (event.type === 'state') this.emit(id, { type: 'state', job }, true);
      else if (TERMINAL_STATUSES.has(job.status)) this.emit(id, { type: finalEvent(job), job }, true);
    }, (err: unknown) => this.o.log.warn({ err, job: id }, 'could not read a job announced by another process'));
  }

  private reenqueueTimer: NodeJS.Timeout | undefined;

  /** The store's queued jobs into the queue (idempotent on BullMQ: a job id is there once). */
  private async enqueueStored(): Promise<void> {
    for (const id of await this.o.store.queued()) await this.o.queue.add(id, { force: true });
  }

  /**
   * Running jobs that nothing runs any more: the store says running, the queue has no entry (holds), for longer
   * than orphanGraceMs. Re-queued with their attempt counted, so a job that keeps vanishing ends INTERRUPTED
   * after GRADLENS_JOB_MAX_ATTEMPTS starts like any crashed one.
   */
  private async requeueOrphans(): Promise<void> {
    const { queue, orphanGraceMs } = this.o;
    if (!queue.holds || orphanGraceMs === undefined) return;
    const now = Date.now();
    const running = (await this.o.store.list({ status: 'running', limit: 200 })).jobs;
    for (const job of running) {
      // Its last sign of life in the store (started, progress): a training or sweep that is still computing writes
      // progress, so a live worker whose entry Redis lost is not taken for a dead one until it stops writing.
      const lastSeen = Math.max(Date.parse(job.startedAt ?? job.createdAt), Date.parse(job.updatedAt));
      if (now - lastSeen < orphanGraceMs || (await queue.holds(job.id))) continue;
      await this.o.store.requeue(job.id, false);
      await queue.add(job.id, { force: true });
      this.o.log.warn({ job: job.id, attempts: job.attempts }, 'a running job the queue no longer holds (Redis lost it, and its worker is gone) was queued again');
    }
  }

  /** Re-queues what a crash interrupted, queues what was waiting, and starts running. */
  async start(): Promise<void> {
    if (this.o.recoverAtStart !== false) {
      const { requeued, failed } = await this.o.store.recover(this.o.maxAttempts);
      if (requeued.length || failed.length) this.o.log.warn({ requeued, failed }, 'recovered jobs interrupted by a previous stop');
    }
    try {
      await this.enqueueStored();
    } catch (err) {
      // A distributed queue that is down at start: the timer below enqueues them once it is back.
      if (!this.o.reenqueueMs) throw err;
      this.o.log.warn({ err }, 'could not enqueue the stored queued jobs at start (queue unavailable); retried every few seconds');
    }
    if (this.o.reenqueueMs) {
      this.reenqueueTimer = setInterval(() => {
        this.enqueueStored().then(() => this.requeueOrphans())
          .catch((err: unknown) => this.o.log.warn({ err }, 'could not re-enqueue the stored queued jobs (store or queue unavailable); retried later'));
      }, this.o.reenqueueMs);
      this.reenqueueTimer.unref();
    }
    this.pump();
  }

  /** The runner this process computes on (sweep cells of the distributed mode run on it directly). */
  get runner(): Runner {
    return this.o.runner;
  }

  /** What every output carries about where it was computed. */
  environment(): Record<string, unknown> {
    return this.o.environment();
  }

  /** Announces an event of a job this process works on (here and, with a bus, to the other processes). */
  announce(id: string, event: JobEvent): void {
    this.emit(id, event);
  }

  /** Cancels announced by any process (distributed mode), for work the manager does not track itself (sweep cells). */
  onRemoteCancel(listener: (id: string) => void): void {
    this.o.bus?.onCancel(listener);
  }

  /** Whether the queue can be reached (a distributed one; the in-process queue always can). */
  async queueHealth(): Promise<{ ok: boolean; detail: string }> {
    return this.o.queue.health ? this.o.queue.health() : { ok: true, detail: 'in this process' };
  }

  get running(): number {
    return this.live.size;
  }

  async queued(): Promise<number> {
    return this.o.queue.size();
  }

  /** Finished jobs whose outcome waits in memory for the store to take it. */
  get unsavedOutcomes(): number {
    return this.unsaved.size;
  }

  storeStats(): Promise<StoreStats> {
    return this.o.store.stats();
  }

  /** What the last write (or probe) found, and whether the file is still the one open; writes nothing. */
  storageStatus(): Promise<StorageStatus> {
    return this.o.store.health();
  }

  /** Whether the store takes writes, found by a real write at most every PROBE_INTERVAL_MS: readiness. */
  async storageHealth(): Promise<StorageStatus> {
    const fresh = Date.now() - this.lastProbe.at < PROBE_INTERVAL_MS;
    // A failure the store met since the last probe (a refused write, PostgreSQL gone) must not hide behind a
    // cached success: then probe now, which is also how a recovery shows.
    const known = await this.o.store.health();
    if (!fresh || !this.lastProbe.status || !known.ok || !this.lastProbe.status.ok) {
      this.lastProbe = { at: Date.now(), status: await this.o.store.health({ probe: true }) };
    }
    return this.lastProbe.status!;
  }

  private lastProbe: { at: number; status?: StorageStatus } = { at: 0 };

  /** Validates, stores and queues a job; throws SpecError/LimitError for bad work and QueueFullError. */
  async submit(kind: JobKind, spec: unknown, expect?: unknown, options: SubmitOptions = {}): Promise<JobRecord> {
    // A synchronous request's spec was checked before shutdown was (its 400/422 come first), as it always was.
    if (this.closing && !options.synchronous) throw new ShuttingDownError();
    const prepared: unknown = await this.o.handlers[kind].prepare(spec, expect, options);
    if (this.closing) throw new ShuttingDownError();
    // `admitting` counts submissions between the check and the add, so concurrent requests cannot
    // overshoot the limit while they await the store.
    if ((await this.o.queue.size()) + this.admitting >= this.o.queue.limit) throw this.queueFull();
    this.admitting++;
    let job: JobRecord;
    try {
      job = await this.o.store.create({ id: this.o.newId(), kind, spec, ...(expect !== undefined ? { expect } : {}) });
      if (prepared !== undefined) this.prepared.set(job.id, prepared);
      let added: boolean;
      try {
        added = await this.o.queue.add(job.id);
      } catch (err) {
        // A distributed queue that cannot be reached: the client hears 503, so the job must not run later either.
        this.prepared.delete(job.id);
        await this.o.store.remove(job.id);
        throw err;
      }
      if (!added) {
        this.prepared.delete(job.id);
        await this.o.store.remove(job.id);
        throw this.queueFull();
      }
    } finally {
      this.admitting--;
    }
    this.pump();
    return job;
  }

  /**
   * Retry-After of a full queue: the time the waiting jobs take to drain, the mean of the latest run times ×
   * jobs waiting ÷ compute slots. Before any job has finished, the running ones' elapsed time is the best
   * (lower) bound there is; a client that retries early is answered with a better estimate.
   */
  private queueFull(): QueueFullError {
    const slots = Math.max(1, this.o.runner.concurrency);
    const waiting = this.o.queue.limit;
    const now = Date.now();
    const perJob = this.recentRunMs.length
      ? this.recentRunMs.reduce((a, b) => a + b, 0) / this.recentRunMs.length
      : Math.max(0, ...[...this.live.values()].map((l) => now - l.startedAt));
    const seconds = Math.ceil((perJob * waiting) / slots / 1000);
    return new QueueFullError(this.o.queue.limit, Math.min(600, Math.max(1, seconds)));
  }

  private recordRun(ms: number): void {
    this.recentRunMs.push(ms);
    if (this.recentRunMs.length > RECENT_RUNS) this.recentRunMs.shift();
  }

  get(id: string): Promise<JobRecord | undefined> {
    return this.o.store.get(id);
  }

  list(query: JobListQuery): Promise<JobPage> {
    return this.o.store.list(query);
  }

  /** Records so far of a running job (here, or in another process through the bus), for streams that connect mid-run. */
  async liveState(id: string): Promise<{ records: { record: unknown; progress: number }[] } | undefined> {
    const live = this.live.get(id);
    if (live) return { records: [...live.records] };
    if (!this.o.bus) return undefined;
    return { records: await this.o.bus.records(id).catch(() => []) };
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

  /** Tells this process's listeners; with a bus, events of jobs run here also go to the other processes. */
  private emit(id: string, event: JobEvent, fromBus = false): void {
    if (this.o.bus && !fromBus) {
      const wire = toBusEvent(event);
      if (wire) this.o.bus.publish(id, wire);
    }
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
        // The outcome is kept and stored later; the caller gets the storage problem now rather than wait on it.
        else if (event.type === 'unsaved') finish(() => reject(event.error));
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
    this.prepared.delete(id);
    const canceled = await this.o.store.finish(id, { status: 'canceled', error: { code: 'CANCELED', message: 'the job was canceled by a DELETE request' } });
    if (!canceled) return { job: (await this.o.store.get(id))!, changed: false };
    this.live.get(id)?.controller.abort(new JobCanceledError());
    // The worker running it may be another process: it stops when it hears this.
    await this.o.bus?.cancel(id).catch((err: unknown) => this.o.log.error({ err, job: id }, 'could not announce a cancel to the workers; the job stops at its next check'));
    this.emit(id, { type: 'canceled', job: canceled });
    return { job: canceled, changed: true };
  }

  /**
   * DELETE: cancels a queued or running job (kept, as canceled), or deletes a finished one and its result
   * (unless `mayDelete` is false: then a finished job is left 'unchanged'). undefined when there is no such job.
   */
  async cancelOrDelete(id: string, { mayDelete = true } = {}): Promise<{ action: 'canceled' | 'deleted' | 'unchanged'; job: JobRecord } | undefined> {
    const job = await this.o.store.get(id);
    if (!job) return undefined;
    if (!mayDelete && TERMINAL_STATUSES.has(job.status)) return { action: 'unchanged', job };
    if (!TERMINAL_STATUSES.has(job.status)) {
      const outcome = await this.cancel(id);
      if (!outcome) return undefined;
      // Finished between the read and the cancel: leave it for a second DELETE, which then means it.
      return { action: outcome.changed ? 'canceled' : 'unchanged', job: outcome.job };
    }
    return (await this.o.store.deleteFinished(id)) ? { action: 'deleted', job } : undefined;
  }

  private pump(): void {
    if (this.o.dispatch === false) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          while (!this.closing && !this.dispatchPaused && this.live.size < Math.max(1, this.o.runner.concurrency)) {
            const id = await this.o.queue.take();
            if (id === undefined) break;
            if (!(await this.begin(id))) break;
          }
        } while (this.pumpAgain && !this.closing && !this.dispatchPaused);
      } catch (err) {
        this.o.log.error({ err }, 'job dispatch failed');
      } finally {
        this.pumping = false;
      }
    })();
  }

  /**
   * Marks the job running and starts it; returns once it is registered as live. false when the store refused
   * the write: the job goes back to the front of the queue and dispatch pauses until the store takes writes.
   */
  private async begin(id: string): Promise<boolean> {
    let job: JobRecord | undefined;
    try {
      job = await this.o.store.start(id);
    } catch (err) {
      await this.o.queue.add(id, { force: true, front: true });
      if (!(err instanceof StorageUnavailableError)) throw err;
      this.dispatchPaused = true;
      this.retryStorageSoon();
      return false;
    }
    if (!job) {
      this.prepared.delete(id);
      return true; // cancelled while it waited
    }
    if (this.closing) {
      // close() began while the store answered: leave the job for the next start, as close() does.
      await this.o.store.requeue(id, true);
      return true;
    }
    this.launch(job);
    return true;
  }

  /** Registers a started job as live and runs it; the returned live's `done` settles once its outcome is stored. */
  private launch(job: JobRecord): Live {
    const controller = new AbortController();
    const live: Live = { controller, startedAt: Date.now(), progress: 0, records: [], lastProgressWrite: 0, done: Promise.resolve() };
    this.live.set(job.id, live);
    this.emit(job.id, { type: 'state', job });
    live.done = this.execute(job, live);
    return live;
  }

  /**
   * Runs a job that a distributed queue handed to this process (distributed/consumer.ts); resolves once its outcome
   * is stored. 'skipped': it had finished or been canceled (a duplicate delivery does nothing); 'returned': this
   * process is shutting down and put it back in the store as queued. A job left running by a worker that died is
   * started again (its attempts count on), or failed with INTERRUPTED once it has been started maxAttempts times.
   * Throws when the store cannot be reached: the queue retries with backoff.
   */
  async runClaimed(id: string): Promise<'finished' | 'skipped' | 'returned'> {
    if (this.closing) return 'returned';
    const current = await this.o.store.get(id);
    if (!current || TERMINAL_STATUSES.has(current.status) || this.live.has(id)) return 'skipped';
    if (current.status === 'running') {
      if (current.attempts >= this.o.maxAttempts) {
        await this.failInterrupted(id, current.attempts);
        return 'finished';
      }
      await this.o.store.requeue(id, false);
    }
    await this.o.bus?.clearRecords(id).catch(() => undefined);
    const job = await this.o.store.start(id);
    if (!job) return 'skipped';
    if (this.closing) {
      await this.o.store.requeue(id, true);
      return 'returned';
    }
    await this.launch(job).done;
    return this.closing && (await this.o.store.get(id))?.status === 'queued' ? 'returned' : 'finished';
  }

  /** A job whose runs keep dying with their worker: failed, as recover() does for the embedded mode. */
  async failInterrupted(id: string, attempts: number): Promise<void> {
    const error = {
      code: 'INTERRUPTED',
      message: `the worker running this job stopped, ${attempts} time${attempts === 1 ? '' : 's'}; it is not retried again (GRADLENS_JOB_MAX_ATTEMPTS=${this.o.maxAttempts})`,
    };
    const stored = await this.o.store.finish(id, { status: 'failed', error });
    if (stored) this.emit(id, { type: 'failed', job: stored });
  }

  /** Runs the job and stores its outcome; never rejects (a rejection here would end the process). */
  private async execute(job: JobRecord, live: Live): Promise<void> {
    try {
      const outcome = await this.compute(job, live);
      if (outcome) {
        // Only work that ran to an outcome says how long jobs take; a cancel or shutdown cuts it short.
        this.recordRun(Date.now() - live.startedAt);
        await this.save(job, outcome);
      }
    } catch (err) {
      this.o.log.error({ err, job: job.id }, 'job bookkeeping failed');
    } finally {
      this.live.delete(job.id);
      this.pump();
    }
  }

  /** The engine's work as an outcome to store; undefined when shutdown or cancel has already dealt with the job. */
  private async compute(job: JobRecord, live: Live): Promise<JobOutcome | undefined> {
    const { id, kind } = job;
    const { signal } = live.controller;
    const timer = this.o.timeoutMs > 0 ? setTimeout(() => live.controller.abort(new JobTimeoutError(this.o.timeoutMs)), this.o.timeoutMs) : undefined;
    const handler = this.o.handlers[kind];
    const prepared = this.prepared.get(id);
    this.prepared.delete(id);
    try {
      const output = await handler.run({
        job,
        ...(prepared !== undefined ? { prepared } : {}),
        runner: this.o.runner,
        signal,
        progress: (p) => this.onProgress(id, live, p),
        record: (record, p) => {
          live.records.push({ record, progress: p });
          this.emit(id, { type: 'record', record, progress: p, index: live.records.length - 1 });
          this.onProgress(id, live, p);
        },
      });
      if (signal.aborted) throw signal.reason;
      // An encoded output was checked against expect where it was computed; only the environment is added.
      if (isEncodedOutput(output)) return { status: 'succeeded', output: withField(output, 'environment', this.o.environment()) };
      output.environment = this.o.environment();
      if (job.expect !== null && job.expect !== undefined) handler.evaluate?.(job.expect, output);
      return { status: 'succeeded', output };
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err;
      // Shutdown: close() has put the job back in the queue. Cancel: cancel() has stored and announced it.
      if (reason instanceof ShuttingDownError || (reason instanceof JobCanceledError && signal.aborted)) return undefined;
      const error = jobErrorOf(reason);
      if (error.code === 'INTERNAL_ERROR') this.o.log.error({ err: reason, job: id, kind }, 'job failed');
      return { status: 'failed', error };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stores a finished job's outcome and announces it; what the store refuses is kept and retried. Never throws. */
  private async save(job: JobRecord, outcome: JobOutcome): Promise<void> {
    try {
      const stored = await this.o.store.finish(job.id, outcome);
      this.unsaved.delete(job.id);
      if (stored) this.emit(job.id, { type: finalEvent(stored), job: stored });
    } catch (err) {
      await this.keepUnsaved(job, outcome, err);
    }
  }

  private async keepUnsaved(job: JobRecord, outcome: JobOutcome, err: unknown): Promise<void> {
    const { id } = job;
    if (unstorable(err) && outcome.status === 'succeeded') {
      this.o.log.error({ err, job: id }, 'a job result is too large to store; the job is failed');
      return this.save(job, { status: 'failed', error: { code: 'RESULT_NOT_STORED', message: `the result could not be stored (${(err as Error).message}); the computation itself succeeded` } });
    }
    const entry = this.unsaved.get(id) ?? { job, outcome, failures: 0 };
    entry.failures++;
    if (entry.failures === 1) {
      this.o.log.error({ err, job: id, status: outcome.status }, 'could not store a finished job; its outcome is kept in memory and stored once writes succeed (a restart re-runs it)');
      const message = `job ${id} finished but its outcome could not be stored: ${(err as Error).message}. It is kept and stored once writes succeed; poll GET /v1/jobs/${id}`;
      const problem = err instanceof StorageUnavailableError ? err.problem : 'io_error';
      this.emit(id, { type: 'unsaved', error: new StorageUnavailableError(problem, message, 30, id) });
    } else if (err instanceof StorageUnavailableError && entry.failures >= UNSAVED_MAX_FAILURES && outcome.status === 'succeeded'
      && (await this.o.store.health({ probe: true }).catch(() => ({ ok: false }))).ok) {
      // Small writes go through, this one never does: it does not fit in the space left.
      this.unsaved.delete(id);
      const bytes = Buffer.byteLength(outputText(outcome.output));
      const error = { code: 'RESULT_NOT_STORED', message: `the result (${bytes} bytes) could not be stored: ${err.message}; the computation itself succeeded` };
      this.o.log.error({ job: id, bytes }, 'a job result does not fit in the space left; the job is failed');
      return this.save(job, { status: 'failed', error });
    }
    this.unsaved.set(id, entry);
    this.retryStorageSoon();
  }

  /** Schedules the next attempt at storing kept outcomes and resuming dispatch (exponential backoff). */
  private retryStorageSoon(delayMs = this.storageRetryMs): void {
    if (this.closing) return;
    if (this.storageTimer && delayMs > 0) return;
    clearTimeout(this.storageTimer);
    this.storageTimer = setTimeout(() => void this.retryStorage(), delayMs);
    this.storageTimer.unref();
    if (delayMs > 0) this.storageRetryMs = Math.min(STORAGE_RETRY_MAX_MS, this.storageRetryMs * 2);
  }

  private async retryStorage(): Promise<void> {
    this.storageTimer = undefined;
    for (const { job, outcome } of [...this.unsaved.values()]) await this.save(job, outcome);
    if (this.unsaved.size === 0) this.storageRetryMs = STORAGE_RETRY_MIN_MS;
    if (this.dispatchPaused) {
      this.dispatchPaused = false;
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
      void this.o.store.progress(id, p).catch((err: unknown) => {
        // An outage is logged once by the store's health listener; progress is only advisory.
        if (!(err instanceof StorageUnavailableError)) this.o.log.error({ err, job: id }, 'could not store progress');
      });
    }
  }

  /**
   * Graceful stop: running jobs go back to `queued` (their attempt refunded, since the job did not crash
   * the process) and run again after the restart; requests waiting on a job get ShuttingDownError.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.storageTimer);
    clearInterval(this.reenqueueTimer);
    this.unwatchStore();
    const running = [...this.live.entries()];
    for (const [id, live] of running) {
      await this.o.store.requeue(id, true).catch((err: unknown) => {
        this.o.log.error({ err, job: id }, 'could not re-queue a running job at shutdown; the next start re-queues it as interrupted');
      });
      live.controller.abort(new ShuttingDownError(id));
    }
    for (const abort of [...this.waiters]) abort();
    await Promise.allSettled(running.map(([, live]) => live.done));
    // A last try for outcomes still in memory; what fails stays `running` in the store and is re-run at the next start.
    for (const { job, outcome } of [...this.unsaved.values()]) {
      try {
        await this.o.store.finish(job.id, outcome);
        this.unsaved.delete(job.id);
      } catch (err) {
        this.o.log.error({ err, job: job.id }, 'the outcome of a finished job is lost at shutdown; the job runs again at the next start');
      }
    }
  }
}

function toBusEvent(event: JobEvent): BusEvent | undefined {
  switch (event.type) {
    case 'progress':
      return { type: 'progress', progress: event.progress };
    case 'record':
      return { type: 'record', record: event.record, progress: event.progress, index: event.index };
    case 'unsaved':
      return undefined;
    default:
      return { type: event.type };
  }
}
