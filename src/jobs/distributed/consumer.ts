// The BullMQ worker of a process that computes (`gradlens worker`, or an API process with GRADLENS_LOCAL_WORKERS > 0):
// takes job ids from Redis, runs them through the JobManager (same handlers, pool, timeout and budgets as the embedded
// mode) and leaves retries, backoff and the recovery of jobs whose worker died (stalled jobs) to BullMQ.
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobManager } from '../manager.js';
import { QUEUE_NAME, type QueuedWork } from './bull-queue.js';
import { redisConnection } from './redis.js';

export interface ConsumerOptions {
  url: string;
  prefix: string;
  concurrency: number;
  /** Lock of a claimed job and the stalled-job check interval (GRADLENS_WORKER_LOCK_MS). */
  lockMs: number;
  maxAttempts: number;
  manager: JobManager;
  /** Fans a sweep out as a flow of cells (sweep-flow.ts); 'not-a-sweep' for other kinds. Absent: sweeps run whole. */
  plan?(id: string): Promise<'planned' | 'skipped' | 'not-a-sweep'>;
  /** Runs one cell of a sweep fanned out over the queue (sweep-flow.ts). */
  cell?(work: Required<QueuedWork>, job: Job): Promise<unknown>;
  /** Runs a sweep's parent job once its cells are done: aggregates them (sweep-flow.ts). */
  aggregate?(id: string, job: Job): Promise<unknown>;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class BullConsumer {
  readonly worker: Worker;
  private readonly connection: Redis;

  constructor(private readonly o: ConsumerOptions) {
    this.connection = redisConnection(o.url, 'worker');
    this.worker = new Worker(QUEUE_NAME, (job, token) => this.process(job, token), {
      connection: this.connection,
      prefix: o.prefix,
      concurrency: o.concurrency,
      lockDuration: o.lockMs,
      stalledInterval: o.lockMs,
      // A job whose worker dies is moved back to waiting by another worker's check, up to this often; the store's
      // attempts (runClaimed) fail it with INTERRUPTED after GRADLENS_JOB_MAX_ATTEMPTS starts either way.
      maxStalledCount: o.maxAttempts,
    });
    this.worker.on('error', (err) => o.log.warn({ err }, 'BullMQ worker error (Redis unavailable?); it reconnects by itself'));
    this.worker.on('failed', (job, err) => void this.onFailed(job, err));
  }

  private async process(job: Job, token: string | undefined): Promise<unknown> {
    const work = job.data as QueuedWork;
    if (job.name === 'cell' && this.o.cell && work.cell !== undefined) return this.o.cell(work as Required<QueuedWork>, job);
    if (job.name === 'sweep' && this.o.aggregate) return this.o.aggregate(work.id, job);
    if (this.o.plan) {
      const planned = await this.o.plan(work.id);
      if (planned !== 'not-a-sweep') return planned;
    }
    const outcome = await this.o.manager.runClaimed(work.id);
    if (outcome === 'returned') {
      // Shutting down: the job goes back to the queue at once, without using up an attempt.
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    return outcome;
  }

  /** BullMQ gave up on a job (attempts used up, or stalled too often): the store says so too. */
  private async onFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job || err instanceof DelayedError || err.name === 'DelayedError') return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled/i.test(err.message);
    this.o.log.warn({ job: job.id, attemptsMade: job.attemptsMade, final, err: err.message }, 'a queued job failed in BullMQ');
    if (!final) return;
    const { id } = job.data as QueuedWork;
    try {
      await this.o.manager.failInterrupted(id, job.attemptsMade);
    } catch (e) {
      this.o.log.error({ err: e, job: id }, 'could not mark a job BullMQ gave up on as failed');
    }
  }

  /** Stops taking jobs and waits for the ones running (force: does not wait). */
  async close(force = false): Promise<void> {
    await this.worker.close(force).catch(() => undefined);
    this.connection.disconnect();
  }
}
