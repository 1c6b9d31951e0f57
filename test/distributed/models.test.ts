// Uploaded models in the scaled-out deployment (real processes on the test Redis and PostgreSQL): a model uploaded
// to an API process with no compute is analysed by a `gradlens worker` on a job database of its own (GRADLENS_DB in
// another directory: it cannot read the API's SQLite file), because the model lives in the jobs' PostgreSQL schema.
// The result equals the embedded mode's for the same model and data, and PyTorch's float64 gradient norms.
import { describe, it, expect, afterEach, beforeAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { deployment, DISTRIBUTED, type Deployment } from '../support/distributed.js';
import { poolApp, tempDir } from '../support/jobs.js';
import { json } from '../support/server.js';
import { TEST_POSTGRES } from '../support/stores.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const onnx = readFileSync(join(FIXTURES, 'residual.onnx'));
interface Fixture { input: { shape: number[]; data: number[] }; target: number[]; loss64: number; parameters: { name: string; gradNorm64: number }[] }
const fixture = JSON.parse(readFileSync(join(FIXTURES, 'residual.json'), 'utf8')) as Fixture;

/** The flat fixture input as nested arrays of its shape (NCHW, as PyTorch exported it): what a client sends inline. */
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const analysis = (id: string) => ({ model: { id }, data: { source: 'inline', x: nested(fixture.input.data, fixture.input.shape), y: fixture.target } });
/** The result with the model's id (which differs between the two deployments) replaced. */
const withoutId = (result: unknown, id: string): unknown => JSON.parse(JSON.stringify(result).replaceAll(id, '<model>'));
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/** The embedded mode (in-process queue, SQLite, one compute thread on wasm, as the workers below): the oracle. */
async function embeddedResult(): Promise<unknown> {
  const tmp = tempDir();
  const app = await poolApp(tmp.db(), { jobs: { workers: 1 } });
  try {
    const up = await app.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: onnx });
    expect(up.statusCode).toBe(201);
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: analysis(up.json().id) });
    expect(res.statusCode, res.body).toBe(200);
    return withoutId(res.json().result, up.json().id);
  } finally {
    await app.close();
    tmp.remove();
  }
}

describe.runIf(DISTRIBUTED)('scale-out: uploaded models', () => {
  let d: Deployment | undefined;
  const dirs: ReturnType<typeof tempDir>[] = [];
  afterEach(async () => {
    await d?.cleanup();
    d = undefined;
    for (const dir of dirs.splice(0)) dir.remove();
  });

  let oracle: unknown;
  beforeAll(async () => {
    oracle = await embeddedResult();
  });

  it('a model uploaded to the API is analysed by a worker without the API\'s SQLite file, as in the embedded mode', async () => {
    const apiDir = tempDir();
    const workerDir = tempDir();
    dirs.push(apiDir, workerDir);
    d = deployment();
    const [api, worker] = await Promise.all([
      d.api({ GRADLENS_DB: apiDir.db('api.db') }),
      d.worker({ GRADLENS_DB: workerDir.db('worker.db'), GRADLENS_WORKER_PORT: '0' }),
    ]);
    const up = await json(`${api.url}/v1/models`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: onnx });
    expect(up.status, up.text).toBe(201);
    const id = up.body.id as string;
    expect((await json(`${api.url}/v1/models/${id}`)).body).toEqual(up.body);

    const res = await json(`${api.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(analysis(id)) });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: 'succeeded', spec: { model: { id } }, environment: { backend: 'wasm' } });
    expect(withoutId(res.body.result, id)).toEqual(oracle);
    // And the figures are PyTorch's (float64 autograd, stored beside the fixture).
    expect(rel(res.body.result.loss, fixture.loss64)).toBeLessThan(1e-3);
    for (const p of fixture.parameters) {
      const got = res.body.result.parameters.find((q: { name: string }) => q.name === p.name);
      expect(rel(got.gradNorm, p.gradNorm64), p.name).toBeLessThan(1e-3);
    }

    // The worker computed it (the API has no compute: GRADLENS_WORKERS=0, no local consumer).
    const ops = worker.lines().find((l) => l.msg === 'gradlens worker ready')!.ops as string;
    expect(await (await fetch(`${ops}/metrics`)).text()).toMatch(/gradlens_jobs_finished_total\{kind="analysis",status="succeeded"\} 1/);
    // Neither process wrote a SQLite file: the model is a row of the jobs' schema, its file the bytes uploaded.
    expect([existsSync(apiDir.db('api.db')), existsSync(workerDir.db('worker.db'))]).toEqual([false, false]);
    const client = new pg.Client({ connectionString: TEST_POSTGRES!, options: `-c search_path=${d.schema}` });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT id, file, description FROM imported_models');
      expect(rows.map((r) => r.id)).toEqual([id]);
      expect(Buffer.compare(rows[0].file, onnx)).toBe(0);
      expect(rows[0].description.parameters.map((p: { name: string }) => p.name)).toEqual(up.body.parameters.map((p: { name: string }) => p.name));
    } finally {
      await client.end();
    }

    // Deleted on the API, the model is gone for the worker too: a new analysis is refused before it is queued.
    expect((await fetch(`${api.url}/v1/models/${id}`, { method: 'DELETE' })).status).toBe(204);
    const gone = await json(`${api.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(analysis(id)) });
    expect(gone.status).toBe(400);
    expect(gone.body).toMatchObject({ field: 'model.id' });
  });
});
