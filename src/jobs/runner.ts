// Where engine work runs: the interface the job layer uses, and the in-process implementation.
import type { TheoryQuery } from '../schemas/diagnosis.js';
import {
  type TheoryReport, type AnalysisOutput, type SpecLimits, initBackend, type BackendChoice,
  type BackendInfo, type BackendOptions, CancelledError, type TrainingOutput,
} from '../engine/index.js';
import type { AnalysisSpecInput } from '../schemas/spec.js';
import { JobCanceledError } from './errors.js';
import { executeTask, type AnalysisWork, type ModelTask } from './tasks.js';
import type { TrainingSpecInput } from '../schemas/training.js';
import type { ExpectInput } from '../schemas/checks.js';
import type { EncodedOutput } from './encoded.js';

export interface RunOptions {
  /** Aborting rejects the call with `signal.reason` and stops the compute as soon as the runner can. */
  signal?: AbortSignal;
  /** Training records as they are produced, with progress 0..1. */
  onRecord?(record: unknown, progress: number): void;
}

export interface Runner {
  /** Resolves once the runner can compute, with the backend that computes (a worker's, for a pool). */
  ready(): Promise<BackendInfo>;
  /** How many tasks run at the same time. */
  readonly concurrency: number;
  analyze(input: AnalysisSpecInput, options?: RunOptions): Promise<AnalysisOutput>;
  /** The same analysis as a job runs it: checked against expect and encoded as JSON where it ran (tasks.ts). */
  analyzeEncoded(input: AnalysisWork, options?: RunOptions & { expect?: ExpectInput }): Promise<EncodedOutput>;
  train(input: TrainingSpecInput, options?: RunOptions): Promise<TrainingOutput>;
  /** An uploaded model's analysis or training (tasks.ts), encoded where it ran; a training reports its records. */
  analyzeModel(task: ModelTask, options?: RunOptions): Promise<EncodedOutput>;
  theory(query: TheoryQuery): Promise<TheoryReport>;
  close(): Promise<void>;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new JobCanceledError();
}

/**
 * Runs the engine on the calling thread: fast unit tests (GRADLENS_WORKERS=0) and debugging. It blocks
 * the event loop while it computes, and an analysis cannot be stopped midway.
 */
export class InProcessRunner implements Runner {
  readonly concurrency = 1;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly limits: SpecLimits,
    private readonly backend: BackendChoice = 'auto',
    private readonly backendOptions: BackendOptions = {},
  ) {}

  ready(): Promise<BackendInfo> {
    return initBackend(this.backend, this.backendOptions);
  }

  // One task at a time, like a single worker: tfjs state (and tf.memory() in tests) is per thread.
  private serial<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const run = this.tail.then(async () => {
      if (signal?.aborted) throw abortReason(signal);
      return fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  async analyze(input: AnalysisSpecInput, options: RunOptions = {}): Promise<AnalysisOutput> {
    await this.ready();
    return this.serial(async () => (await executeTask({ kind: 'analysis', input }, this.limits)) as AnalysisOutput, options.signal);
  }

  async analyzeEncoded(input: AnalysisWork, options: RunOptions & { expect?: ExpectInput } = {}): Promise<EncodedOutput> {
    await this.ready();
    const task = { kind: 'analysis' as const, input, encode: true, ...(options.expect !== undefined ? { expect: options.expect } : {}) };
    return this.serial(async () => (await executeTask(task, this.limits)) as EncodedOutput, options.signal);
  }

  async analyzeModel(task: ModelTask, options: RunOptions = {}): Promise<EncodedOutput> {
    await this.ready();
    const { signal, onRecord } = options;
    return this.serial(async () => {
      try {
        return (await executeTask(task, this.limits, { ...(onRecord ? { onRecord } : {}), isCancelled: () => signal?.aborted === true })) as EncodedOutput;
      } catch (err) {
        if (err instanceof CancelledError && signal?.aborted) throw abortReason(signal);
        throw err;
      }
    }, signal);
  }

  async theory(query: TheoryQuery): Promise<TheoryReport> {
    await this.ready();
    return this.serial(async () => (await executeTask({ kind: 'theory', query }, this.limits)) as TheoryReport);
  }

  async train(input: TrainingSpecInput, options: RunOptions = {}): Promise<TrainingOutput> {
    await this.ready();
    const { signal, onRecord } = options;
    return this.serial(async () => {
      try {
        return (await executeTask({ kind: 'training', input }, this.limits, {
          ...(onRecord ? { onRecord } : {}),
          isCancelled: () => signal?.aborted === true,
        })) as TrainingOutput;
      } catch (err) {
        if (err instanceof CancelledError && signal?.aborted) throw abortReason(signal);
        throw err;
      }
    }, signal);
  }

  async close(): Promise<void> {}
}
