// Uploaded models follow the retention rules: a model unused (neither uploaded nor analysed) for longer than
// GRADLENS_RETENTION_MAX_AGE_S is deleted, and beyond GRADLENS_RETENTION_MAX_MODEL_BYTES the least recently
// used go first; an analysis counts as a use. In the store with a given clock, and in the running app.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeOnnx } from '../../src/engine/index.js';
import { SqliteModelStore } from '../../src/jobs/model-store.js';
import { loadConfig } from '../../src/config.js';
import { testApp } from '../support/app.js';
import { until } from '../support/until.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const bytes = readFileSync(join(FIXTURES, 'regression.onnx'));
const description = describeOnnx(bytes);
const DAY = 86_400_000;

describe('model retention in the store', () => {
  it('age: counted from the last use, not the upload', () => {
    const store = new SqliteModelStore(':memory:');
    try {
      const t0 = Date.now();
      store.put('used', bytes, description);
      store.put('idle', bytes, description);
      store.touch('used', t0 + 10 * DAY);
      expect(store.prune({ maxAgeMs: 5 * DAY, maxModelBytes: 0 }, t0 + 4 * DAY).deleted).toEqual({ age: 0, bytes: 0 });
      expect(store.prune({ maxAgeMs: 5 * DAY, maxModelBytes: 0 }, t0 + 12 * DAY).deleted).toEqual({ age: 1, bytes: 0 });
      expect(store.list(10).map((m) => m.id)).toEqual(['used']);
      // 0 turns the rule off.
      expect(store.prune({ maxAgeMs: 0, maxModelBytes: 0 }, t0 + 1000 * DAY).deleted.age).toBe(0);
    } finally {
      store.close();
    }
  });

  it('bytes: the least recently used beyond the limit are deleted', () => {
    const store = new SqliteModelStore(':memory:');
    try {
      const t0 = Date.now();
      for (const id of ['a', 'b', 'c']) store.put(id, bytes, description);
      store.touch('a', t0 + 3 * DAY);
      store.touch('b', t0 + 1 * DAY);
      store.touch('c', t0 + 2 * DAY);
      expect(store.prune({ maxAgeMs: 0, maxModelBytes: 2 * bytes.length }, t0 + 4 * DAY).deleted).toEqual({ age: 0, bytes: 1 });
      expect(store.list(10).map((m) => m.id).sort()).toEqual(['a', 'c']);
    } finally {
      store.close();
    }
  });

  it('the default byte limit is 4 GiB, GRADLENS_RETENTION_MAX_MODEL_BYTES sets it', () => {
    expect(loadConfig({}).jobs.retention.maxModelBytes).toBe(4 * 1024 ** 3);
    expect(loadConfig({ GRADLENS_RETENTION_MAX_MODEL_BYTES: '1000' }).jobs.retention.maxModelBytes).toBe(1000);
  });
});

describe('model retention in the app', () => {
  it('a model unused for longer than the age limit disappears from GET /v1/models', { timeout: 60_000 }, async () => {
    const retention = { ...loadConfig({}).jobs.retention, maxAgeMs: 1500, intervalMs: 100 };
    const app = await testApp({ jobs: { retention } });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: bytes });
      expect(res.statusCode).toBe(201);
      const location = res.headers.location as string;
      expect((await app.inject({ url: location })).statusCode).toBe(200);
      await until(async () => (await app.inject({ url: location })).statusCode, (status) => status === 404, 30_000);
    } finally {
      await app.close();
    }
  });
});
