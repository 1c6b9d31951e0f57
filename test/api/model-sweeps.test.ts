// POST /v1/sweeps with base.model over app.inject: a grid over the mode, the loss and the data of an uploaded
// PyTorch export gives one row per cell, the mode cells carrying PyTorch's own float64 losses (train and eval
// BatchNorm, the committed fixtures of scripts/onnx-fixtures.py); a loss × batchSize grid tabulates exactly the
// analyses POST /v1/analyses gives for the same cells, as JSON and CSV; init and network paths, unknown models
// and cells that do not fit the model are 400 naming the grid path before anything is queued.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { until } from '../support/until.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, '..', 'fixtures', 'onnx');
interface Fixture { input: { shape: number[]; data: number[] }; target: number[]; targetShape: number[]; loss64: number; eval?: { loss64: number } }
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

interface Row { index: number; values: Record<string, unknown>; verdict: string | null; loss: number; firstToLastRatio: number; backpropFirstToLastRatio: number; nonFinite: number }
interface SweepJob { id: string; status: string; result: { paths: string[]; cellCount: number; rows: Row[] }; error?: { message: string }; links: { csv?: string } }

let app: FastifyInstance;
const ids = new Map<string, string>();
const sweep = (payload: object) => app.inject({ method: 'POST', url: '/v1/sweeps', payload });
async function swept(payload: object): Promise<SweepJob> {
  const res = await sweep(payload);
  expect(res.statusCode, res.body).toBe(202);
  return until(async () => (await app.inject({ url: res.headers.location as string })).json() as SweepJob, (j) => j.status === 'succeeded' || j.status === 'failed', 120_000);
}

beforeAll(async () => {
  app = await testApp();
  for (const name of ['mlp', 'cnn_bn']) {
    const res = await app.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(join(FIXTURES, `${name}.onnx`)) });
    expect(res.statusCode).toBe(201);
    ids.set(name, res.json().id as string);
  }
});
afterAll(async () => {
  await app.close();
});

describe('POST /v1/sweeps with base.model', () => {
  it("a mode grid: the train and eval cells carry PyTorch's float64 losses (BatchNorm on batch and on running statistics)", async () => {
    const f = fixture('cnn_bn');
    const base = { model: { id: ids.get('cnn_bn') }, data: { source: 'inline', x: nested(f.input.data, f.input.shape), y: f.target } };
    const job = await swept({ base, grid: { mode: ['train', 'eval'] } });
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.result).toMatchObject({ paths: ['mode'], cellCount: 2 });
    const [train, evalRow] = job.result.rows;
    expect(train!.values).toEqual({ mode: 'train' });
    expect(rel(train!.loss, f.loss64)).toBeLessThan(1e-3);
    expect(rel(evalRow!.loss, f.eval!.loss64)).toBeLessThan(1e-3);
    for (const r of job.result.rows) expect(['healthy', 'vanishing', 'exploding']).toContain(r.verdict);
  });

  it('a loss × data.batchSize grid: row-major cells, each the analysis POST /v1/analyses gives, as JSON and CSV', async () => {
    const base = { seed: 5, model: { id: ids.get('mlp') }, data: { source: 'gaussian_images', batchSize: 4 } };
    const grid = { loss: ['categorical_crossentropy', 'mse'], 'data.batchSize': [4, 16] };
    const job = await swept({ base, grid });
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.result.rows.map((r) => r.values)).toEqual([
      { loss: 'categorical_crossentropy', 'data.batchSize': 4 }, { loss: 'categorical_crossentropy', 'data.batchSize': 16 },
      { loss: 'mse', 'data.batchSize': 4 }, { loss: 'mse', 'data.batchSize': 16 },
    ]);
    for (const row of job.result.rows) {
      const one = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...base, loss: row.values.loss, data: { ...base.data, batchSize: row.values['data.batchSize'] } } });
      expect(one.statusCode, one.body).toBe(200);
      const s = one.json().result;
      expect(row).toMatchObject({ loss: s.loss, verdict: s.summary.verdict, firstToLastRatio: s.summary.firstToLastRatio, backpropFirstToLastRatio: s.summary.backpropFirstToLastRatio, nonFinite: 0 });
    }
    // Cross-entropy on 4 logits starts near ln 4; the cells differ.
    expect(new Set(job.result.rows.map((r) => r.loss)).size).toBe(4);
    const csv = await app.inject({ url: job.links.csv! });
    expect(csv.statusCode).toBe(200);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toMatch(/^index,loss,data\.batchSize,verdict,/);
    expect(lines).toHaveLength(5);
    expect(Number(lines[3]!.split(',')[8])).toBe(job.result.rows[2]!.loss);
  });
});

describe('POST /v1/sweeps with base.model: refused before anything is queued', () => {
  const base = () => ({ model: { id: ids.get('mlp') }, data: { source: 'gaussian_images', batchSize: 4 } });
  const cases: [string, () => object, string][] = [
    ['an init grid', () => ({ base: base(), grid: { 'init.weights': ['he_normal'] } }), 'grid["init.weights"]'],
    ['a network path', () => ({ base: base(), grid: { 'network.depth': [2] } }), 'grid["network.depth"]'],
    ['an unknown model', () => ({ base: { ...base(), model: { id: 'nope' } }, grid: { loss: ['mse'] } }), 'base.model.id'],
    ['a cell that does not fit the model (mnist into 8 features)', () => ({ base: base(), grid: { 'data.source': ['gaussian_images', 'mnist'] } }), 'grid["data.source"][1]'],
    ['a batch over GRADLENS_MAX_BATCH_SIZE', () => ({ base: base(), grid: { 'data.batchSize': [4, 1_000_000] } }), 'GRADLENS_MAX_BATCH_SIZE'],
  ];
  for (const [what, body, named] of cases) {
    it(`${what}: 4xx naming ${named}`, async () => {
      const res = await sweep(body());
      expect([400, 422], res.body).toContain(res.statusCode);
      const { field, limit, message } = res.json() as { field?: string; limit?: string; message: string };
      expect(`${field ?? limit} ${message}`).toContain(named);
    });
  }
  it('the init refusal says why', async () => {
    const res = await sweep(cases[0]![1]());
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/does not re-initialise imported graphs/);
  });
});
