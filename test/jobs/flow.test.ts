// A request that flows once (issue 11): the store returns what it was given, the result is encoded once
// (on the worker) and the reply carries the stored text byte for byte.
import { afterAll, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../src/jobs/store.js';
import { encodeOutput } from '../../src/jobs/encoded.js';
import { SMALL_ANALYSIS, poolApp, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

/** Counts the rows the store reads back with its `SELECT * FROM jobs WHERE id = ?` statement. */
function countReads(store: SqliteJobStore): { reads: number } {
  const counter = { reads: 0 };
  const stmt = (store as unknown as { stmts: { get: { get: (...a: unknown[]) => unknown } } }).stmts.get;
  const get = stmt.get.bind(stmt);
  stmt.get = (...a: unknown[]) => {
    counter.reads++;
    return get(...a);
  };
  return counter;
}

describe('the job store returns what it was given', () => {
  it('create, start and finish read nothing back, and finish keeps the encoded output text as it is', async () => {
    const store = new SqliteJobStore(tmp.db('returns.db'));
    try {
      const counter = countReads(store);
      const spec = { network: { depth: 2 }, data: { source: 'xor' } };
      const created = await store.create({ id: 'a', kind: 'analysis', spec, expect: { maxRatio: 2 } });
      expect(created).toMatchObject({ id: 'a', kind: 'analysis', status: 'queued', attempts: 0, spec, expect: { maxRatio: 2 } });
      const started = await store.start('a');
      expect(started).toMatchObject({ id: 'a', status: 'running', attempts: 1, spec, expect: { maxRatio: 2 } });
      const output = encodeOutput({ spec, result: { layers: [1, 2.5] } });
      const finished = await store.finish('a', { status: 'succeeded', output });
      expect(counter.reads).toBe(0);
      expect(finished!.outputJson).toBe(output.json);
      expect(finished!.output).toEqual({ spec, result: { layers: [1, 2.5] } });
      // What a later read finds is what was written, and agrees with what finish returned.
      const read = (await store.get('a'))!;
      expect(counter.reads).toBe(1);
      expect(read.outputJson).toBe(output.json);
      expect({ ...read }).toEqual({ ...finished });
      expect({ ...created, status: 'queued' }).toEqual({ ...created });
    } finally {
      await store.close();
    }
  });
});

describe('one encoding of a result', () => {
  it('a synchronous analysis replies with the stored output text byte for byte, and GET sends the same bytes', async () => {
    const db = tmp.db('encoded.db');
    const app = await poolApp(db, { jobs: { workers: 1 } });
    try {
      // The HTTP thread neither serialises nor parses the result (the worker encoded it): watch JSON here.
      const stringify = vi.spyOn(JSON, 'stringify');
      const parse = vi.spyOn(JSON, 'parse');
      const payload = JSON.stringify(SMALL_ANALYSIS);
      const touchesResult = (text: unknown): boolean => typeof text === 'string' && text.includes('"result":');
      let res, encoded: unknown[], parsed: unknown[];
      try {
        res = await app.inject({ method: 'POST', url: '/v1/analyses', payload, headers: { 'content-type': 'application/json' } });
      } finally {
        // Read before mockRestore, which clears what the spies saw.
        encoded = stringify.mock.results.map((r) => r.value).filter(touchesResult);
        parsed = parse.mock.calls.map(([text]) => text).filter(touchesResult);
        stringify.mockRestore();
        parse.mockRestore();
      }
      expect(encoded).toEqual([]);
      expect(parsed).toEqual([]);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const id = res.json().id as string;
      const raw = new Database(db, { readonly: true });
      const stored = (raw.prepare('SELECT output FROM jobs WHERE id = ?').get(id) as { output: string }).output;
      raw.close();
      // The reply is the job's summary fields, then the stored text as it is (its opening brace aside).
      expect(res.body.endsWith(stored.slice(1))).toBe(true);
      const head = res.body.slice(0, res.body.length - stored.length + 1);
      expect(head.endsWith(',')).toBe(true);
      expect(JSON.parse(`${head.slice(0, -1)}}`)).toMatchObject({ id, kind: 'analysis', status: 'succeeded' });
      const get = await app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
      expect(get.body).toBe(res.body);
    } finally {
      await app.close();
    }
  });
});
