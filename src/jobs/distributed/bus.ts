// Job events and cancellations across processes on Redis pub/sub: the worker that runs a job publishes its progress,
// records and state changes, every API process re-announces them to its own event streams and waiters; a cancel on
// any process reaches the worker that runs the job. Training records are also kept in a list for streams that
// connect mid-run (replayed, then continued by index, so none is lost or doubled).
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BusEvent, JobBus } from '../manager.js';
import { redisConnection } from './redis.js';

interface Message {
  from: string;
  id: string;
  event: BusEvent;
}

/** Records of a finished job are kept this long for late streams (the job's outcome itself is in the store). */
const RECORDS_TTL_S = 3600;

export class RedisJobBus implements JobBus {
  private readonly node = randomUUID();
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly eventListeners = new Set<(id: string, event: BusEvent) => void>();
  private readonly cancelListeners = new Set<(id: string) => void>();
  private readonly events: string;
  private readonly cancels: string;

  constructor(url: string, private readonly prefix: string) {
    this.pub = redisConnection(url, 'worker');
    this.sub = redisConnection(url, 'subscriber');
    this.events = `${prefix}:bus:events`;
    this.cancels = `${prefix}:bus:cancel`;
    // ioredis re-subscribes by itself after a reconnect.
    void this.sub.subscribe(this.events, this.cancels).catch(() => undefined);
    this.sub.on('message', (channel: string, text: string) => this.receive(channel, text));
  }

  private recordsKey(id: string): string {
    return `${this.prefix}:records:${id}`;
  }

  private receive(channel: string, text: string): void {
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      return;
    }
    if (channel === this.cancels) {
      for (const listener of this.cancelListeners) listener(message.id);
      return;
    }
    if (message.from === this.node) return;
    for (const listener of this.eventListeners) listener(message.id, message.event);
  }

  publish(id: string, event: BusEvent): void {
    const text = JSON.stringify({ from: this.node, id, event } satisfies Message);
    // One connection, commands in order: a record is in the list before anyone hears of it.
    if (event.type === 'record') {
      const key = this.recordsKey(id);
      void this.pub.multi().rpush(key, JSON.stringify({ record: event.record, progress: event.progress })).expire(key, RECORDS_TTL_S).exec().catch(() => undefined);
    }
    void this.pub.publish(this.events, text).catch(() => undefined);
  }

  onEvent(listener: (id: string, event: BusEvent) => void): void {
    this.eventListeners.add(listener);
  }

  async cancel(id: string): Promise<void> {
    await this.pub.publish(this.cancels, JSON.stringify({ from: this.node, id, event: { type: 'canceled' } } satisfies Message));
  }

  onCancel(listener: (id: string) => void): void {
    this.cancelListeners.add(listener);
  }

  async records(id: string): Promise<{ record: unknown; progress: number }[]> {
    const items = await this.pub.lrange(this.recordsKey(id), 0, -1);
    return items.map((item) => JSON.parse(item) as { record: unknown; progress: number });
  }

  async clearRecords(id: string): Promise<void> {
    await this.pub.del(this.recordsKey(id));
  }

  async close(): Promise<void> {
    this.sub.disconnect();
    await this.pub.quit().catch(() => this.pub.disconnect());
  }
}
