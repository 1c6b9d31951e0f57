// The bounded queue of job ids waiting for a worker: the JobQueue interface and its in-memory implementation.

/**
 * Jobs waiting to run, oldest first. The store holds the jobs themselves (and survives restarts); the
 * queue only orders ids, and is rebuilt from the store's queued jobs at start. Async so that a
 * distributed queue (BullMQ on Redis) can take its place.
 */
export interface JobQueue {
  /** Most ids that may wait; `add` refuses beyond it. */
  readonly limit: number;
  size(): Promise<number>;
  /**
   * Appends unless the queue is full (then false); `force` ignores the limit (jobs recovered at start),
   * `front` puts the id first (a job taken but not started because the store refused the write).
   */
  add(id: string, options?: { force?: boolean; front?: boolean }): Promise<boolean>;
  /** Removes and returns the oldest id. */
  take(): Promise<string | undefined>;
  /** Drops an id (a cancelled job); false when it was not waiting. */
  remove(id: string): Promise<boolean>;
  /** Whether a queue in another process (Redis) answers; absent: always reachable. */
  health?(): Promise<{ ok: boolean; detail: string }>;
  /**
   * Whether the queue still has any entry for a job (waiting, running, retrying, finished; a sweep's fanned-out
   * flow counts); absent: the queue lives in this process and cannot lose what the store says is running.
   */
  holds?(id: string): Promise<boolean>;
}

export class MemoryJobQueue implements JobQueue {
  // A Set keeps insertion order and removes in O(1).
  private readonly ids = new Set<string>();

  constructor(readonly limit: number) {}

  async size(): Promise<number> {
    return this.ids.size;
  }

  async add(id: string, options: { force?: boolean; front?: boolean } = {}): Promise<boolean> {
    if (!options.force && this.ids.size >= this.limit) return false;
    if (options.front) {
      const rest = [...this.ids].filter((other) => other !== id);
      this.ids.clear();
      for (const other of [id, ...rest]) this.ids.add(other);
    } else {
      this.ids.add(id);
    }
    return true;
  }

  async take(): Promise<string | undefined> {
    for (const id of this.ids) {
      this.ids.delete(id);
      return id;
    }
    return undefined;
  }

  async remove(id: string): Promise<boolean> {
    return this.ids.delete(id);
  }
}
