// Uploaded models follow the retention rules: a model unused (neither uploaded nor analysed) for longer than
// GRADLENS_RETENTION_MAX_AGE_S is deleted, and beyond GRADLENS_RETENTION_MAX_MODEL_BYTES the least recently
// used go first; an analysis counts as a use. In each store (SQLite, and PostgreSQL where GRADLENS_TEST_POSTGRES is
// set) with a given clock, through the retention task, and in the running app (on the suite's deployment).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeOnnx } from '../../src/engine/index.js';
import { RetentionTask } from '../../src/jobs/retention.js';
import { MODEL_STORE_HARNESSES, type ModelStoreHarness } from '../support/stores.js';
import { loadConfig } from '../../src/config.js';
import { testApp } from '../support/app.js';
import { until } from '../support/until.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const bytes = readFileSync(join(FIXTURES, 'regression.onnx'));
const description = describeOnnx(bytes);
const DAY = 86_400_000;

describe.each(MODEL_STORE_HARNESSES)('model retention in the store on %s', (_name, harness) => {
  let h: ModelStoreHarness;
  beforeEach(() => { h = harness(); });
  afterEach(async () => { await h.dispose(); });

  it('age: counted from the last use, not the upload', async () => {
    const store = await h.open();
    const t0 = Date.now();
    await store.put('used', bytes, description);
    await store.put('idle', bytes, description);
    await store.touch('used', t0 + 10 * DAY);
    expect((await store.prune({ maxAgeMs: 5 * DAY, maxModelBytes: 0 }, t0 + 4 * DAY)).deleted).toEqual({ age: 0, bytes: 0 });
    expect((await store.prune({ maxAgeMs: 5 * DAY, maxModelBytes: 0 }, t0 + 12 * DAY)).deleted).toEqual({ age: 1, bytes: 0 });
    expect((await store.list(10)).map((m) => m.id)).toEqual(['used']);
    // 0 turns the rule off.
    expect((await store.prune({ maxAgeMs: 0, maxModelBytes: 0 }, t0 + 1000 * DAY)).deleted.age).toBe(0);
  });

  it('bytes: the least recently used beyond the limit are deleted', async () => {
    const store = await h.open();
    const t0 = Date.now();
    for (const id of ['a', 'b', 'c', 'd']) await store.put(id, bytes, description);
    await store.touch('a', t0 + 3 * DAY);
    await store.touch('b', t0 + 1 * DAY);
    await store.touch('c', t0 + 2 * DAY);
    await store.touch('d', t0 + 0.5 * DAY);
    expect((await store.prune({ maxAgeMs: 0, maxModelBytes: 2 * bytes.length }, t0 + 4 * DAY)).deleted).toEqual({ age: 0, bytes: 2 });
    expect((await store.list(10)).map((m) => m.id).sort()).toEqual(['a', 'c']);
    // At the limit exactly, nothing more goes.
    expect((await store.prune({ maxAgeMs: 0, maxModelBytes: 2 * bytes.length }, t0 + 4 * DAY)).deleted).toEqual({ age: 0, bytes: 0 });
  });

  it('the retention task prunes the models of this store beside its jobs, and logs what it deleted', async () => {
    const models = await h.open();
    const store = await h.jobs();
    await models.put('stale', bytes, description);
    await models.put('fresh', bytes, description);
    await models.touch('stale', Date.now() - 10 * DAY);
    const lines: { obj: object; msg: string }[] = [];
    const log = { info: (obj: object, msg: string) => lines.push({ obj, msg }), error: (obj: object, msg: string) => lines.push({ obj, msg }) };
    const task = new RetentionTask({ store, models, policy: { maxAgeMs: 5 * DAY, maxJobs: 0, maxBytes: 0, maxModelBytes: 0 }, intervalMs: 3_600_000, log });
    await task.runOnce();
    await task.stop();
    expect((await models.list(10)).map((m) => m.id)).toEqual(['fresh']);
    expect(lines).toEqual([{ obj: { deleted: { age: 1, bytes: 0 } }, msg: 'retention deleted uploaded models' }]);
  });
});

describe('model retention settings', () => {
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
