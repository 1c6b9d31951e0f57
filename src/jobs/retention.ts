// Retention: applies the store's limits on finished jobs (age, count, bytes) at start and on a timer, one pass at a
// time, and the same age limit (plus a byte limit of their own) to uploaded models.
import { StorageUnavailableError } from './errors.js';
import type { JobStore, PruneResult, RetentionPolicy } from './store.js';
import type { ModelStore } from './model-store.js';

export interface RetentionOptions {
  store: JobStore;
  policy: RetentionPolicy & { maxModelBytes?: number };
  intervalMs: number;
  /** Uploaded models: unused for longer than policy.maxAgeMs, or beyond policy.maxModelBytes, are deleted. */
  models?: Pick<ModelStore, 'prune'>;
  log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class RetentionTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PruneResult | undefined> | undefined;
  private stopped = false;

  constructor(private readonly o: RetentionOptions) {}

  /** Runs a pass now and then every intervalMs until stop(). */
  start(): void {
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.o.intervalMs);
    this.timer.unref();
  }

  /** One pass; a pass already under way is joined rather than doubled. Never throws. */
  runOnce(): Promise<PruneResult | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<PruneResult | undefined> {
    await this.pruneModels();
    try {
      const result = await this.o.store.prune(this.o.policy);
      const { age, count, bytes } = result.deleted;
      if (age + count + bytes > 0) this.o.log.info({ deleted: result.deleted, reclaimedBytes: result.reclaimedBytes }, 'retention deleted finished jobs');
      return result;
    } catch (err) {
      // A storage outage is logged once by the store's health listener; deleting can wait for it to end.
      if (!(err instanceof StorageUnavailableError)) this.o.log.error({ err }, 'retention pass failed');
      return undefined;
    }
  }

  private async pruneModels(): Promise<void> {
    if (!this.o.models) return;
    try {
      const { deleted } = await this.o.models.prune({ maxAgeMs: this.o.policy.maxAgeMs, maxModelBytes: this.o.policy.maxModelBytes ?? 0 });
      if (deleted.age + deleted.bytes > 0) this.o.log.info({ deleted }, 'retention deleted uploaded models');
    } catch (err) {
      // As for the jobs below: an outage of the store is logged by its health listener, not once per pass.
      if (!(err instanceof StorageUnavailableError)) this.o.log.error({ err }, 'retention pass over uploaded models failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }
}
