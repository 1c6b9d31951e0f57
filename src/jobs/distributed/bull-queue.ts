// The JobQueue on BullMQ: job ids enter a Redis queue that `gradlens worker` processes (and API processes with local
// workers) consume. Ids only: the job itself is in the shared store. Redis errors become QueueUnavailableError (503).
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobQueue } from '../queue.js';
import { QueueUnavailableError } from '../errors.js';
import { redisConnection } from './redis.js';

/** The BullMQ queue every process of one deployment shares (under GRADLENS_QUEUE_PREFIX). */
export const QUEUE_NAME = 'jobs';

export interface BullQueueOptions {
  url: string;
  prefix: string;
  limit: number;
  /** Runs of a job: the first plus retries after a crash (GRADLENS_JOB_MAX_ATTEMPTS). */
  attempts: number;
  backoffMs: number;
  /**
   * Jobs waiting to start, for the queue limit: the store's count, since Redis also holds a sweep's cells (one entry
   * each) and retries waiting out their backoff; it includes a job being added (stored first). Default: BullMQ's
   * own count of waiting entries.
   */
  countWaiting?: () => Promise<number>;
}

/** The BullMQ id of a sweep's parent job, which completes when its cells have (sweep-flow.ts). */
export const sweepParentJobId = (id: string): string => `${id}.sweep`;

/** What a queued BullMQ job carries: the job id, and for a sweep's cell its position (stage 3). */
export interface QueuedWork {
  id: string;
  cell?: number;
}

export function jobOptions(o: Pick<BullQueueOptions, 'attempts' | 'backoffMs'>, jobId: string): JobsOptions {
  return {
    jobId,
    attempts: o.attempts,
    backoff: { type: 'exponential', delay: o.backoffMs },
    // The store keeps the outcome; Redis keeps finished entries only long enough for dedupe and inspection.
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 86_400, count: 10_000 },
  };
}

export class BullJobQueue implements JobQueue {
  readonly queue: Queue;
  readonly connection: Redis;

  constructor(private readonly o: BullQueueOptions) {
    this.connection = redisConnection(o.url, 'producer');
    this.queue = new Queue(QUEUE_NAME, { connection: this.connection, prefix: o.prefix });
    this.queue.on('error', () => undefined);
  }

  get limit(): number {
    return this.o.limit;
  }

  private async redis<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new QueueUnavailableError(`the job queue (Redis at GRADLENS_QUEUE) did not answer while it ${what} (${(err as Error).message}): new work is refused until it does; accepted jobs are kept`);
    }
  }

  /** Jobs waiting for a worker anywhere. */
  size(): Promise<number> {
    if (this.o.countWaiting) return this.o.countWaiting();
    return this.redis('counted the waiting jobs', () => this.queue.getJobCountByTypes('waiting', 'delayed', 'prioritized'));
  }

  async add(id: string, options: { force?: boolean; front?: boolean } = {}): Promise<boolean> {
    // The store's count (countWaiting) already holds this job, which the manager stores before it queues it;
    // BullMQ's own count does not. Either way the limit is on the jobs waiting besides this one.
    const others = (await this.size()) - (this.o.countWaiting ? 1 : 0);
    if (!options.force && others >= this.o.limit) return false;
    // The job id is BullMQ's id: adding a job that is already there does nothing (re-enqueueing is idempotent).
    await this.redis('took a job', () => this.queue.add('job', { id } satisfies QueuedWork, { ...jobOptions(this.o, id), ...(options.front ? { lifo: true } : {}) }));
    return true;
  }

  /** Workers pull from Redis themselves: the API process never takes from this queue. */
  async take(): Promise<string | undefined> {
    return undefined;
  }

  /** Removes a job still waiting; false when a worker holds it (the cancel message reaches that worker). */
  async remove(id: string): Promise<boolean> {
    return this.redis('removed a job', async () => {
      try {
        return (await this.queue.remove(id)) === 1;
      } catch {
        return false; // locked by a worker
      }
    });
  }

  /** Whether Redis has an entry for the job or for its sweep's flow (BullMQ keeps finished ones an hour). */
  async holds(id: string): Promise<boolean> {
    return this.redis('looked up a job', async () => (await this.queue.getJob(id)) != null || (await this.queue.getJob(sweepParentJobId(id))) != null);
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    try {
      if ((await this.connection.ping()) === 'PONG') return { ok: true, detail: 'bullmq on Redis (GRADLENS_QUEUE): connected' };
    } catch {
      // reported below
    }
    return { ok: false, detail: 'bullmq: the Redis of GRADLENS_QUEUE does not answer' };
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.connection.disconnect();
  }
}
