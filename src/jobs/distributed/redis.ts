// Redis connections of the distributed mode (ioredis): what BullMQ's workers need (block forever, retry forever) and
// what a producer on the request path needs (fail at once while Redis is down, so the client gets 503, not a hang).
import { Redis, type RedisOptions } from 'ioredis';

export type RedisRole = 'producer' | 'worker' | 'subscriber';

/** The URL without its password, for logs and messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable URL)';
  }
}

export function redisConnection(url: string, role: RedisRole): Redis {
  const options: RedisOptions = {
    // BullMQ requires null for blocking connections; a producer also retries each command across reconnects
    // only when the offline queue is on, which it is not: commands fail while disconnected.
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    enableOfflineQueue: role !== 'producer',
    connectTimeout: 2000,
    // Reconnect for ever, at most every 2 s: Redis coming back is noticed within that.
    retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 6)),
    lazyConnect: false,
  };
  const redis = new Redis(url, options);
  // Errors are reported through the commands that fail and the state readiness reads; an unhandled 'error' event
  // would end the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Whether a connection can take commands now (readiness, metrics). */
export const isConnected = (redis: Redis): boolean => redis.status === 'ready';
