// The distributed mode's pieces for one process (API or `gradlens worker`): the BullMQ queue, the Redis event bus,
// what they change in the JobManager, and the consumer that computes. Used by src/app.ts and src/worker.ts.
import type { Config } from '../../config.js';
import type { JobManager, ManagerOptions } from '../manager.js';
import { BullJobQueue } from './bull-queue.js';
import { RedisJobBus } from './bus.js';
import { BullConsumer } from './consumer.js';
import { sweepFlow } from './sweep-flow.js';
import type { JobStore } from '../store-types.js';

export { BullJobQueue } from './bull-queue.js';
export { RedisJobBus } from './bus.js';
export { BullConsumer } from './consumer.js';

export interface Distributed {
  queue: BullJobQueue;
  bus: RedisJobBus;
  /** What the JobManager of this process needs to work with them. */
  manager: Pick<ManagerOptions, 'queue' | 'bus' | 'dispatch' | 'recoverAtStart' | 'reenqueueMs' | 'orphanGraceMs'>;
  close(): Promise<void>;
}

export function distributed(config: Config, role: 'api' | 'worker', store: JobStore): Distributed {
  const d = config.jobs.distributed;
  if (!d.queue) throw new Error('distributed() needs GRADLENS_QUEUE');
  const queue = new BullJobQueue({ url: d.queue, prefix: d.prefix, limit: config.jobs.queueLimit, attempts: config.jobs.maxAttempts, backoffMs: d.backoffMs,
    countWaiting: async () => (await store.stats()).jobs.queued });
  const bus = new RedisJobBus(d.queue, d.prefix);
  return {
    queue,
    bus,
    manager: { queue, bus, dispatch: false, recoverAtStart: false, ...(role === 'api' ? { reenqueueMs: d.reenqueueMs, orphanGraceMs: 2 * d.lockMs } : {}) },
    async close() {
      await queue.close();
      await bus.close();
    },
  };
}

export interface ConsumerParts {
  config: Config;
  manager: JobManager;
  store: JobStore;
  queue: BullJobQueue;
  concurrency: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** The BullMQ worker of this process, with sweeps fanned out cell by cell. */
export function consumer(p: ConsumerParts): BullConsumer {
  const d = p.config.jobs.distributed;
  const flow = sweepFlow({ config: p.config, manager: p.manager, store: p.store, queue: p.queue, log: p.log });
  return new BullConsumer({
    url: d.queue!, prefix: d.prefix, concurrency: p.concurrency, lockMs: d.lockMs, maxAttempts: p.config.jobs.maxAttempts,
    manager: p.manager, log: p.log, ...flow,
  });
}
