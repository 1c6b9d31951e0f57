// The model stores on real databases — a SQLite file, and PostgreSQL (the jobs' schema) where GRADLENS_TEST_POSTGRES
// is set: a model is stored whole and read back byte for byte by another connection (a restart, another process),
// listed newest first, deleted once; a put that fails leaves nothing; on PostgreSQL the table is migration 2 of the
// jobs' schema (bytea, jsonb) and a lost server is a 503, not a 500. Retention's rules: test/jobs/model-retention.test.ts.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeOnnx, SpecError, type ModelDescription } from '../../src/engine/index.js';
import { StorageUnavailableError } from '../../src/jobs/errors.js';
import { PgModelStore } from '../../src/jobs/pg-model-store.js';
import { MODEL_STORE_HARNESSES, TEST_POSTGRES, dropSchema, testSchema, type ModelStoreHarness } from '../support/stores.js';
import { tcpProxy } from '../support/tcp-proxy.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const onnx = (name: string): Buffer => readFileSync(join(FIXTURES, `${name}.onnx`));
const residual = onnx('residual');
const mlp = onnx('mlp');
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe.each(MODEL_STORE_HARNESSES)('ModelStore on %s', (_name, harness) => {
  let h: ModelStoreHarness;
  beforeEach(() => { h = harness(); });
  afterEach(async () => { await h.dispose(); });

  it('stores a model whole and another connection reads it back byte for byte, with its description', async () => {
    const description = describeOnnx(residual);
    const store = await h.open();
    const put = await store.put('r', residual, description);
    expect(put).toMatchObject({ id: 'r', format: 'onnx', bytes: residual.length });
    expect(put.createdAt).toMatch(ISO);
    await store.close();
    // Another store on the same data: a restarted API, or a worker process elsewhere.
    const other = await h.open();
    expect(await other.get('r')).toEqual({ id: 'r', format: 'onnx', bytes: residual.length, createdAt: put.createdAt, description });
    const file = await other.file('r');
    expect(Buffer.from(file!).equals(residual)).toBe(true);
    expect(await other.get('nope')).toBeUndefined();
    expect(await other.file('nope')).toBeUndefined();
  });

  it('keeps a file of several megabytes exactly (every byte value)', async () => {
    const store = await h.open();
    const big = randomBytes(6 * 1024 * 1024);
    await store.put('big', big, describeOnnx(mlp));
    expect((await store.get('big'))!.bytes).toBe(big.length);
    expect(Buffer.from((await store.file('big'))!).equals(big)).toBe(true);
  });

  it('lists newest first, up to the limit; deletes once', async () => {
    const store = await h.open();
    const description = describeOnnx(mlp);
    for (const id of ['a', 'b', 'c']) {
      await store.put(id, mlp, description);
      await tick();
    }
    expect((await store.list(2)).map((m) => m.id)).toEqual(['c', 'b']);
    expect((await store.list(10)).map((m) => m.id)).toEqual(['c', 'b', 'a']);
    expect(await store.delete('b')).toBe(true);
    expect(await store.delete('b')).toBe(false);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.file('b')).toBeUndefined();
    expect((await store.list(10)).map((m) => m.id)).toEqual(['c', 'a']);
  });

  it('a put that fails stores nothing: the id taken, a NUL in a name (400 on the body in both stores)', async () => {
    const store = await h.open();
    const description = describeOnnx(mlp);
    await store.put('x', mlp, description);
    await expect(store.put('x', residual, describeOnnx(residual))).rejects.toThrow();
    expect(Buffer.from((await store.file('x'))!).equals(mlp)).toBe(true);
    const nul: ModelDescription = { ...description, inputs: [{ ...description.inputs[0]!, name: 'in\u0000put' }] };
    const refused = await store.put('nul', mlp, nul).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SpecError);
    expect(refused).toMatchObject({ field: 'body', message: expect.stringMatching(/NUL/) });
    expect(await h.sql('SELECT id FROM imported_models ORDER BY id')).toEqual([{ id: 'x' }]);
  });

  it('touch marks a use (used_at), and is nothing for an unknown id', async () => {
    const store = await h.open();
    await store.put('t', mlp, describeOnnx(mlp));
    const at = Date.parse('2030-01-02T03:04:05.678Z');
    await store.touch('t', at);
    await store.touch('unknown', at);
    expect(await h.sql('SELECT id, used_at FROM imported_models')).toEqual([{ id: 't', used_at: '2030-01-02T03:04:05.678Z' }]);
  });
});

describe.runIf(TEST_POSTGRES)('PgModelStore', () => {
  const url = TEST_POSTGRES!;
  const schemas: string[] = [];
  afterEach(async () => {
    for (const schema of schemas.splice(0)) await dropSchema(url, schema);
  });

  it('is migration 2 of the jobs schema: a bytea file and a jsonb description beside the jobs table', async () => {
    const schema = testSchema();
    schemas.push(schema);
    const store = await PgModelStore.open({ url, schema, poolSize: 1 });
    await store.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const migrations = (await client.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`)).rows;
      expect(migrations).toEqual([{ version: 1, name: 'jobs' }, { version: 2, name: 'models' }]);
      const columns = (await client.query(`SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'imported_models' AND column_name IN ('file', 'description') ORDER BY column_name`, [schema])).rows;
      expect(columns).toEqual([
        { table_name: 'imported_models', column_name: 'description', data_type: 'jsonb' },
        { table_name: 'imported_models', column_name: 'file', data_type: 'bytea' },
      ]);
    } finally {
      await client.end();
    }
  });

  it('turns a lost server into StorageUnavailableError (503, Retry-After) and works again when it is back', async () => {
    const schema = testSchema();
    schemas.push(schema);
    const target = new URL(url);
    const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const store = await PgModelStore.open({ url: viaProxy.toString(), schema, poolSize: 1 });
    try {
      await store.put('m', mlp, describeOnnx(mlp));
      await proxy.stop();
      const refused = await store.get('m').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(StorageUnavailableError);
      expect(refused).toMatchObject({ code: 'STORAGE_UNAVAILABLE', problem: 'unreachable', retryAfterSeconds: 5, message: expect.stringMatching(/model store \(GRADLENS_STORE/) });
      await expect(store.put('n', mlp, describeOnnx(mlp))).rejects.toBeInstanceOf(StorageUnavailableError);
      await proxy.start();
      expect((await store.list(10)).map((m) => m.id)).toEqual(['m']);
    } finally {
      await store.close();
      await proxy.close();
    }
  });
});
