// A request that flows once (issue 11): the store returns what it was given, the result is encoded once
// (on the worker) and the reply carries the stored text byte for byte.
import { afterAll, describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../src/jobs/store.js';
import { encodeOutput } from '../../src/jobs/encoded.js';
import { SMALL_ANALYSIS, poolApp, tempDir } from '../support/jobs.js';
import { datasetBuilds, describeDataset, loadDataset } from '../../src/engine/data/datasets.js';
import { normalizations, normalizeSpec, normalizeSpecShape } from '../../src/engine/spec/normalize.js';
import { testApp } from '../support/app.js';

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

/** 100 000 generated samples: what the HTTP thread once drew twice just to validate a request. */
const BIG_GENERATED = { network: { depth: 2, width: 4 }, data: { source: 'spirals', samples: 100_000, batchSize: 8 } } as const;

describe('validation from the shape of the data', () => {
  it('the HTTP thread draws no generated dataset: the worker draws it, once', async () => {
    const app = await poolApp(tmp.db('shape.db'), { jobs: { workers: 1 } });
    try {
      const before = datasetBuilds.generated;
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: BIG_GENERATED });
      expect(res.statusCode).toBe(200);
      expect(res.json().result.data).toMatchObject({ source: 'spirals', examples: 100_000, inputUnits: 2 });
      expect(datasetBuilds.generated - before).toBe(0);
      // A bad generated spec is still a 400 naming the field and the limit, before anything is queued.
      const bad = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...BIG_GENERATED, data: { ...BIG_GENERATED.data, samples: 100_001 } } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ field: 'data.samples', message: 'data.samples must be an integer from 2 to 100000' });
      expect(datasetBuilds.generated - before).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('one normalisation and one dataset per analysis: the runner gets the normalised spec and does not normalise again', async () => {
    // In-process compute: the HTTP side and the engine share this thread's counters.
    const app = await testApp();
    try {
      const n0 = normalizations.count;
      const d0 = datasetBuilds.generated;
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: BIG_GENERATED });
      expect(res.statusCode).toBe(200);
      expect(normalizations.count - n0).toBe(1);
      expect(datasetBuilds.generated - d0).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('describeDataset gives loadDataset\'s shape and description for every generated source, drawing nothing', () => {
    const specs = [
      { source: 'xor', samples: 50 }, { source: 'spirals', classes: 3, samples: 90, noise: 0.3 }, { source: 'moons' },
      { source: 'circles', normalize: 'minmax' }, { source: 'blobs', classes: 4, features: 7, samples: 40 }, { source: 'sine', normalize: 'none' },
    ] as const;
    for (const data of specs) {
      const spec = { ...data, batchSize: 8, batches: 1 };
      const before = datasetBuilds.generated;
      const shape = describeDataset(spec, 3);
      expect(datasetBuilds.generated).toBe(before);
      const { x, y, labels, ...loaded } = loadDataset(spec, 3);
      expect(shape, data.source).toEqual(loaded);
      expect(x.length).toBe(shape.n * shape.inputSize);
    }
  });

  it('normalises to the same spec from the shape as from the data, and keeps the binary cross-entropy check on regression targets', () => {
    const input = { network: { depth: 3, width: 5 }, data: { source: 'blobs', features: 3, samples: 60 }, loss: 'categorical_crossentropy' } as const;
    expect(normalizeSpecShape(input)).toEqual(normalizeSpec(input).spec);
    expect(() => normalizeSpecShape({ network: { depth: 2 }, data: { source: 'sine' }, loss: 'binary_crossentropy' }))
      .toThrow('loss binary_crossentropy needs targets in [0, 1]');
  });
});
