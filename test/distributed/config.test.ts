// The scale-out variables: defaults keep the embedded mode exactly as before; bad values are refused by name.
import { describe, it, expect } from 'vitest';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config.js';
import { storeKind } from '../../src/jobs/open-store.js';
import { readFileSync } from 'node:fs';

describe('scale-out configuration', () => {
  it('defaults to SQLite and the in-process queue', () => {
    const { jobs } = loadConfig({});
    expect(jobs.store).toBeUndefined();
    expect(storeKind(jobs)).toBe('sqlite');
    expect(jobs.distributed).toEqual({
      prefix: 'gradlens', localWorkers: jobs.workers, workerConcurrency: availableParallelism(), backoffMs: 1000, lockMs: 30_000, reenqueueMs: 15_000,
    });
  });

  it('reads GRADLENS_STORE, GRADLENS_QUEUE and the worker settings', () => {
    const { jobs } = loadConfig({
      GRADLENS_STORE: 'postgres://u:p@db:5432/gradlens', GRADLENS_STORE_SCHEMA: 'lab', GRADLENS_QUEUE: 'redis://cache:6379', GRADLENS_QUEUE_PREFIX: 'lab-1',
      GRADLENS_LOCAL_WORKERS: '0', GRADLENS_WORKER_CONCURRENCY: '8', GRADLENS_WORKER_LOCK_MS: '5000',
    });
    expect(storeKind(jobs)).toBe('postgres');
    expect(jobs).toMatchObject({ store: 'postgres://u:p@db:5432/gradlens', storeSchema: 'lab' });
    expect(jobs.distributed).toMatchObject({ queue: 'redis://cache:6379', prefix: 'lab-1', localWorkers: 0, workerConcurrency: 8, lockMs: 5000 });
  });

  it('refuses what is not a postgres:// or redis:// URL, naming the variable and hiding a password', () => {
    expect(() => loadConfig({ GRADLENS_STORE: 'mysql://u:secret@db/x' })).toThrow(ConfigError);
    expect(() => loadConfig({ GRADLENS_STORE: 'mysql://u:secret@db/x' })).toThrow(/^GRADLENS_STORE must be a postgres:\/\/ URL .*mysql:\/\/u:\*\*\*@db\/x/);
    expect(() => loadConfig({ GRADLENS_QUEUE: 'amqp://q' })).toThrow(/^GRADLENS_QUEUE must be a redis:\/\/ URL/);
    expect(() => loadConfig({ GRADLENS_QUEUE_PREFIX: 'a:b' })).toThrow(/^GRADLENS_QUEUE_PREFIX/);
    expect(() => loadConfig({ GRADLENS_STORE_SCHEMA: 'x; drop' })).toThrow(/^GRADLENS_STORE_SCHEMA/);
    expect(() => loadConfig({ GRADLENS_WORKER_CONCURRENCY: '0' })).toThrow(/^GRADLENS_WORKER_CONCURRENCY must be an integer between 1 and 256/);
  });
});

describe('README: Running on many machines', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Running on many machines'), readme.indexOf('## Development'));

  it('states the defaults the configuration has', () => {
    const d = loadConfig({}).jobs.distributed;
    const row = (name: string): string => section.split('\n').find((l) => l.startsWith(`| \`${name}\``)) ?? '';
    expect(row('GRADLENS_WORKER_LOCK_MS')).toContain(`\`${d.lockMs}\``);
    expect(row('GRADLENS_JOB_BACKOFF_MS')).toContain(`\`${d.backoffMs}\``);
    expect(row('GRADLENS_REENQUEUE_MS')).toContain(`\`${d.reenqueueMs}\``);
    expect(row('GRADLENS_QUEUE_PREFIX')).toContain(`\`${d.prefix}\``);
    expect(row('GRADLENS_STORE_SCHEMA')).toContain(`\`${loadConfig({}).jobs.storeSchema}\``);
    for (const name of ['GRADLENS_QUEUE', 'GRADLENS_STORE', 'GRADLENS_LOCAL_WORKERS', 'GRADLENS_WORKER_CONCURRENCY']) expect(row(name)).not.toBe('');
  });
});
