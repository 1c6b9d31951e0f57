// Worker-thread pool that runs every engine call off the HTTP event loop.
//
// Design, and why it depends on the backend:
// - cpu, wasm and native (cpu + OpenBLAS kernels, one BLAS thread per worker): every worker thread loads
//   its own tfjs engine, so the pool runs one worker per core (GRADLENS_WORKERS). A worker that crashes,
//   or that is running an analysis when its job is cancelled, is terminated and replaced.
// - tensorflow / tensorflow-gpu (tfjs-node): the native addon can be loaded by at most one thread per
//   process; a second worker that requires it fails (tfjs #8388, also #2079, #3463). The pool therefore
//   runs exactly ONE long-lived worker that is never terminated or replaced while the process lives
//   (libtensorflow parallelises each op across cores itself). Cancelling there is cooperative only: a
//   training stops at its next step; an analysis runs to its end and its result is discarded. If that
//   worker dies, compute is unavailable until the process restarts (tasks fail with WORKER_CRASHED).
// - With GRADLENS_BACKEND=auto the first worker decides: if it lands on tensorflow the pool stays at one
//   worker; otherwise the other workers start with the backend it resolved to, so all agree.
// - webgpu (Dawn): worker.terminate() while GPU work is in flight aborts the WHOLE process (exit 134,
//   napi_throw), so a busy GPU worker is never terminated: cancellation and timeouts are cooperative
//   (the caller hears at once; the worker finishes its current task, a training at its next step, and
//   only then takes new work), and close() waits for busy GPU workers before terminating them.
//   Terminating an idle GPU worker is safe.
// The main thread never loads a backend: /health and results report the first worker's backend.
//
// Cancelling a running task goes through shared memory (an Int32 per worker) rather than a message, so
// the engine sees it between steps even when it never yields to the worker's event loop.
import type { TheoryQuery } from '../schemas/diagnosis.js';
import {
  type TheoryReport, type AnalysisOutput, BackendUnavailableError, type BackendChoice,
  type BackendInfo, type BackendOptions, type SpecLimits, shardPlan, type ShardPartial, type TrainingOutput,
} from '../engine/index.js';
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import { deserializeError, JobCanceledError, ShuttingDownError, WorkerCrashedError, type SerializedError } from './errors.js';
import type { RunOptions, Runner } from './runner.js';
import type { AnalysisWork, ComputeTask, ModelTask } from './tasks.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { WorkerInit, WorkerRequest, WorkerReply } from './messages.js';
import type { ExpectInput } from '../schemas/checks.js';
import type { EncodedOutput } from './encoded.js';

export interface PoolOptions {
  /** Workers to run (ignored, and 1 is used, for the tensorflow backends). */
  size: number;
  backend: BackendChoice;
  /** How the backend loads (src/config.ts); handed to every worker in its init message. */
  backendOptions?: BackendOptions;
  limits: SpecLimits;
  /** The worker entry; defaults to workerEntry() (the build's worker.js, or the sources' through tsx). */
  workerUrl?: URL;
  /**
   * A lone analysis of at least this many forward + backward FLOPs is split across the idle workers
   * (engine/measure/combine-shards.ts); 0 or undefined never splits.
   */
  shardMinFlops?: number;
  /** How long a cancelled training may take to reach its next step before its worker is replaced. */
  cancelGraceMs?: number;
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

interface Task {
  id: number;
  task: ComputeTask;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  onRecord?: (record: unknown, progress: number) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
}

interface Slot {
  id: number;
  worker: Worker;
  flag: Int32Array;
  ready: boolean;
  /** Set when the pool terminates the worker on purpose, so its exit is not reported as a crash. */
  retiring: boolean;
  task?: Task;
  cancelTimer?: NodeJS.Timeout;
  /** close() on a busy GPU worker: terminate it once its task has finished. */
  terminateWhenIdle?: boolean;
}

const TFJS_NODE_BACKENDS = new Set(['tensorflow', 'tensorflow-gpu']);

/**
 * The worker's entry: from the build (dist/) the sibling worker.js; from the TypeScript sources (vitest,
 * tsx) worker-from-source.mjs, which registers tsx in the thread and loads worker.ts, so no build is needed.
 */
export function workerEntry(): URL {
  const fromBuild = fileURLToPath(import.meta.url).endsWith('.js');
  return new URL(fromBuild ? './worker.js' : './worker-from-source.mjs', import.meta.url);
}

export class WorkerPool implements Runner {
  private readonly slots = new Set<Slot>();
  private readonly pending: Task[] = [];
  private readonly workerUrl: URL;
  private size: number;
  private exclusive: boolean;
  private backendChoice: BackendChoice;
  private started: Promise<BackendInfo> | null = null;
  private backend: BackendInfo | null = null;
  private broken: Error | null = null;
  private closing = false;
  private nextTaskId = 1;
  private nextSlotId = 1;
  private consecutiveInitFailures = 0;

  constructor(private readonly options: PoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError('a worker pool needs at least one worker');
    this.exclusive = TFJS_NODE_BACKENDS.has(options.backend);
    this.size = this.exclusive ? 1 : options.size;
    this.backendChoice = options.backend;
    this.workerUrl = options.workerUrl ?? workerEntry();
  }

  /** Busy workers must never be terminated (webgpu: it would abort the process). */
  private get neverTerminateBusy(): boolean {
    return this.backend?.name === 'webgpu' || this.backendChoice === 'webgpu';
  }

  get concurrency(): number {
    return this.size;
  }

  /** Workers currently alive (for tests and metrics). */
  get workers(): number {
    return this.slots.size;
  }

  /** Workers running a task right now (tests, metrics). */
  get busy(): number {
    return [...this.slots].filter((s) => s.task !== undefined).length;
  }

  /** Workers started and free for a task. */
  get idle(): number {
    return [...this.slots].filter((s) => s.ready && !s.retiring && !s.task).length;
  }

  ready(): Promise<BackendInfo> {
    this.started ??= this.start();
    return this.started;
  }

  private async start(): Promise<BackendInfo> {
    if (!existsSync(fileURLToPath(this.workerUrl))) {
      throw new Error(`the compute worker ${fileURLToPath(this.workerUrl)} is missing`);
    }
    // One worker first: its backend decides how many more may start (see the comment at the top).
    const first = this.spawn();
    const info = await new Promise<BackendInfo>((resolve, reject) => {
      first.worker.once('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') resolve(msg.backend);
        else if (msg.type === 'init-failed') reject(backendError(msg.error, this.options.backend));
      });
      first.worker.once('exit', (code) => reject(new Error(`the compute worker exited with code ${code} while starting`)));
    }).catch(async (err: unknown) => {
      this.retire(first);
      throw err;
    });
    this.backend = info;
    if (TFJS_NODE_BACKENDS.has(info.name)) {
      this.exclusive = true;
      this.size = 1;
    } else {
      this.backendChoice = info.name;
      for (let i = 1; i < this.size; i++) this.spawn();
    }
    this.dispatch();
    return info;
  }

  private spawn(): Slot {
    const cancelFlag = new SharedArrayBuffer(4);
    const init: WorkerInit = {
      backend: this.backendChoice, backendOptions: this.options.backendOptions ?? {}, limits: this.options.limits, cancelFlag,
    };
    const worker = new Worker(this.workerUrl, { workerData: init, name: 'gradlens-compute' });
    const slot: Slot = { id: this.nextSlotId++, worker, flag: new Int32Array(cancelFlag), ready: false, retiring: false };
    this.slots.add(slot);
    worker.on('message', (msg: WorkerReply) => this.onMessage(slot, msg));
    worker.on('error', (err) => this.options.log?.error({ err, worker: slot.id }, 'compute worker error'));
    worker.on('exit', (code) => this.onExit(slot, code));
    return slot;
  }

  private onMessage(slot: Slot, msg: WorkerReply): void {
    switch (msg.type) {
      case 'ready':
        slot.ready = true;
        this.consecutiveInitFailures = 0;
        this.dispatch();
        return;
      case 'init-failed':
        this.options.log?.error({ error: msg.error, worker: slot.id }, 'compute worker could not load its backend');
        this.consecutiveInitFailures++;
        this.retire(slot);
        return;
      case 'record': {
        const task = slot.task;
        if (task && task.id === msg.taskId && !task.settled) task.onRecord?.(msg.record, msg.progress);
        return;
      }
      case 'done':
      case 'error': {
        const task = slot.task;
        if (!task || task.id !== msg.taskId) return;
        this.release(slot);
        if (slot.terminateWhenIdle) void slot.worker.terminate();
        if (msg.type === 'done') this.settle(task, true, msg.output);
        else this.settle(task, false, deserializeError(msg.error));
        this.dispatch();
      }
    }
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot);
    clearTimeout(slot.cancelTimer);
    const task = slot.task;
    slot.task = undefined;
    if (this.closing) {
      if (task) this.settle(task, false, new ShuttingDownError());
      return;
    }
    if (!slot.retiring) {
      const err = new WorkerCrashedError(`the compute worker exited (code ${code})${task ? ` while running a ${task.task.kind}` : ''}`);
      this.options.log?.error({ worker: slot.id, code, task: task?.task.kind }, 'compute worker exited unexpectedly');
      if (task) this.settle(task, false, err);
      if (this.exclusive) {
        // Loading tfjs-node in a second worker of this process would fail (tfjs #8388): give up.
        this.broken = new WorkerCrashedError('the tfjs-node compute worker died; restart the process to compute again');
        this.failPending(this.broken);
        return;
      }
    }
    if (this.backend && !this.exclusive && this.slots.size < this.size) {
      if (this.consecutiveInitFailures >= 3) {
        this.broken = new WorkerCrashedError('compute workers fail to start; see the server log');
        if (this.slots.size === 0) this.failPending(this.broken);
        return;
      }
      this.spawn();
    }
  }

  private failPending(err: Error): void {
    for (const task of this.pending.splice(0)) this.settle(task, false, err);
  }

  private release(slot: Slot): void {
    slot.task = undefined;
    clearTimeout(slot.cancelTimer);
  }

  private retire(slot: Slot): void {
    slot.retiring = true;
    void slot.worker.terminate();
  }

  private settle(task: Task, ok: boolean, value: unknown): void {
    if (task.settled) return;
    task.settled = true;
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    if (ok) task.resolve(value);
    else task.reject(value);
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.pending.length === 0) return;
      if (!slot.ready || slot.retiring || slot.task) continue;
      const task = this.pending.shift()!;
      slot.task = task;
      Atomics.store(slot.flag, 0, 0);
      const msg: WorkerRequest = { type: 'run', taskId: task.id, task: task.task };
      slot.worker.postMessage(msg);
    }
  }

  private cancel(task: Task): void {
    const reason = task.signal?.reason ?? new JobCanceledError();
    const queued = this.pending.indexOf(task);
    if (queued >= 0) {
      this.pending.splice(queued, 1);
      this.settle(task, false, reason);
      return;
    }
    const slot = [...this.slots].find((s) => s.task === task);
    // The caller hears at once; the worker stays busy (and gets no new task) until it has really stopped.
    this.settle(task, false, reason);
    if (!slot) return;
    Atomics.store(slot.flag, 0, 1);
    // Cooperative only: the slot stays busy until the worker replies, and is then reused.
    if (this.exclusive || this.neverTerminateBusy) return;
    // Trainings poll the cancel flag between steps: they get a grace period before their worker is retired.
    if (task.task.kind !== 'training' && task.task.kind !== 'model-training') {
      this.retire(slot);
      return;
    }
    slot.cancelTimer = setTimeout(() => {
      if (slot.task === task) this.retire(slot);
    }, this.options.cancelGraceMs ?? 2000);
  }

  private run(task: ComputeTask, options: RunOptions): Promise<unknown> {
    if (this.closing) return Promise.reject(new ShuttingDownError());
    if (this.broken) return Promise.reject(this.broken);
    const { signal, onRecord } = options;
    if (signal?.aborted) return Promise.reject(signal.reason ?? new JobCanceledError());
    return new Promise((resolve, reject) => {
      const entry: Task = { id: this.nextTaskId++, task, resolve, reject, settled: false };
      if (onRecord) entry.onRecord = onRecord;
      if (signal) {
        entry.signal = signal;
        entry.onAbort = () => this.cancel(entry);
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.pending.push(entry);
      void this.ready().then(() => this.dispatch(), (err: unknown) => {
        const at = this.pending.indexOf(entry);
        if (at >= 0) this.pending.splice(at, 1);
        this.settle(entry, false, err);
      });
    });
  }

  async analyze(input: AnalysisSpecInput, options: RunOptions = {}): Promise<AnalysisOutput> {
    return (await this.analysis(input, options, {})) as AnalysisOutput;
  }

  /** An uploaded model's analysis or training on one worker (never split: the model is imported where it runs). */
  async analyzeModel(task: ModelTask, options: RunOptions = {}): Promise<EncodedOutput> {
    return (await this.run(task, options)) as EncodedOutput;
  }

  async analyzeEncoded(input: AnalysisWork, options: RunOptions & { expect?: ExpectInput } = {}): Promise<EncodedOutput> {
    const { expect, ...rest } = options;
    return (await this.analysis(input, rest, { encode: true, ...(expect !== undefined ? { expect } : {}) })) as EncodedOutput;
  }

  /** One analysis, split across idle workers when it pays; `extra` goes to the task that finishes it. */
  private async analysis(input: AnalysisWork, options: RunOptions, extra: { encode?: boolean; expect?: ExpectInput }): Promise<unknown> {
    const count = this.shardCount(input);
    if (count < 2) return this.run({ kind: 'analysis', input, ...extra }, options);
    // Split: every idle worker measures its rows of every batch (drawing the weights itself, in
    // parallel); one worker then combines the shards and finishes the analysis (its weights cached).
    const shardsDone = new AbortController();
    const onAbort = (): void => shardsDone.abort(options.signal?.reason);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const shards = await Promise.all(Array.from({ length: count }, (_, index) =>
        (this.run({ kind: 'analysis-shard', input, index, count }, { signal: shardsDone.signal }) as Promise<ShardPartial[]>).catch((err: unknown) => {
          if (!shardsDone.signal.aborted) shardsDone.abort(err);
          throw err;
        })));
      this.splitAnalyses++;
      const partials = shards[0]!.map((_, batch) => shards.map((s) => s[batch]!));
      return await this.run({ kind: 'analysis', input, partials, ...extra }, options);
    } catch (err) {
      throw options.signal?.aborted ? options.signal.reason ?? err : err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Analyses split across workers so far (tests, metrics). */
  splitAnalyses = 0;

  /**
   * How many workers to split this analysis over: all idle ones when nothing waits, the analysis is
   * big enough and splittable; 1 otherwise. Splitting only pays when workers would otherwise be idle.
   */
  private shardCount(input: AnalysisWork): number {
    const min = this.options.shardMinFlops ?? 0;
    if (min <= 0 || this.exclusive || this.size < 2 || this.pending.length > 0 || this.closing) return 1;
    // Inline data would be parsed and validated twice on this thread just to decide; it is small anyway.
    if (input.data.source === 'inline') return 1;
    const idle = this.idle;
    if (idle < 2) return 1;
    try {
      const plan = shardPlan(input, this.options.limits);
      if (!plan.splittable || plan.flops < min) return 1;
      return Math.min(idle, plan.batchSize);
    } catch {
      return 1; // a bad spec: the plain path reports it as it always does
    }
  }

  async train(input: TrainingSpecInput, options: RunOptions = {}): Promise<TrainingOutput> {
    return (await this.run({ kind: 'training', input }, options)) as TrainingOutput;
  }

  async theory(query: TheoryQuery): Promise<TheoryReport> {
    return (await this.run({ kind: 'theory', query }, {})) as TheoryReport;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.failPending(new ShuttingDownError());
    const exits = [...this.slots].map((slot) => new Promise<void>((resolve) => {
      slot.retiring = true;
      slot.worker.once('exit', () => resolve());
      if (slot.task && this.neverTerminateBusy) {
        // The caller hears now; the worker stops at its next step (training) or its end (analysis).
        Atomics.store(slot.flag, 0, 1);
        this.settle(slot.task, false, new ShuttingDownError());
        slot.terminateWhenIdle = true;
        return;
      }
      void slot.worker.terminate();
    }));
    await Promise.all(exits);
  }
}

function backendError(error: SerializedError, requested: BackendChoice): Error {
  if (error.code !== 'BACKEND_UNAVAILABLE') return deserializeError(error);
  // Rebuilt as the class server.ts recognises, so a missing backend still exits with status 2.
  const err = new BackendUnavailableError(requested, '');
  err.message = error.message;
  return err;
}
