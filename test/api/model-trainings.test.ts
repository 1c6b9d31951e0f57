// POST /v1/trainings with "model": {"id"} over app.inject: an uploaded PyTorch export (the committed fixtures of
// scripts/onnx-fixtures.py) trained by gradlens with SGD, momentum and Adam gives, step by step, the batch loss
// and every parameter's norm and gradient norm (under its state_dict name) of the same training replayed in
// PyTorch float64 from the fixture's seeded source model (test/support/model_train_reference.py); records
// stream as events; bad requests are 400/422 naming the field before anything is queued; every response keeps
// to the route's schema (testApp's contract check).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { torchOracle } from '../support/torch-oracle.js';
import { until } from '../support/until.js';
import { readEvents, type SseEvent } from '../support/jobs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, '..', 'fixtures', 'onnx');
const dirOf = (name: string): string => (name === 'mnist_cnn' ? join(HERE, '..', 'fixtures', 'onnx-mnist') : FIXTURES);

interface Fixture { input: { shape: number[]; data: number[] }; target: number[]; targetShape: number[] }
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(dirOf(name), `${name}.json`), 'utf8')) as Fixture;
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const inline = (f: Fixture) => ({ source: 'inline', x: nested(f.input.data, f.input.shape), y: f.targetShape.length > 1 ? nested(f.target, f.targetShape) : f.target });
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

interface Rec { step: number; loss: number; verdict: string; parameters: { name: string; norm: number; gradNorm: number }[]; layers: { index: number; backpropNorm: number }[] }
interface Result { steps: number; stepsCompleted: number; batchSize: number; records: Rec[]; initialLoss: number; finalLoss: number; status: string; learns: boolean; reasons: string[]; layers: { index: number; parameters: string[] }[] }
interface Replay { steps: { step: number; loss: number; parameters: Record<string, { norm: number; gradNorm: number }> }[] }

let app: FastifyInstance;
const ids = new Map<string, string>();
const train = (payload: object) => app.inject({ method: 'POST', url: '/v1/trainings', payload });

/** Submits, waits for the job to finish, and returns it. */
async function trained(payload: object): Promise<{ status: string; result: Result; spec: Record<string, unknown>; cost: Record<string, number>; error?: { message: string }; id: string }> {
  const res = await train(payload);
  expect(res.statusCode, res.body).toBe(202);
  const location = res.headers.location as string;
  return until(async () => (await app.inject({ url: location })).json(), (j) => j.status === 'succeeded' || j.status === 'failed', 120_000);
}

beforeAll(async () => {
  app = await testApp();
  for (const name of ['mlp', 'cnn_bn', 'residual', 'gelu_ln', 'regression', 'mnist_cnn']) {
    const res = await app.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(join(dirOf(name), `${name}.onnx`)) });
    expect(res.statusCode).toBe(201);
    ids.set(name, res.json().id as string);
  }
});
afterAll(async () => {
  await app.close();
});

/** Every step's loss and every parameter's norm and gradient norm against PyTorch float64, to rtol. */
function expectReplay(r: Result, replay: Replay, rtol: number): void {
  expect(r.records.map((x) => x.step)).toEqual(replay.steps.map((s) => s.step));
  for (const rec of r.records) {
    const ref = replay.steps[rec.step]!;
    expect(rel(rec.loss, ref.loss), `step ${rec.step} loss ${rec.loss} vs ${ref.loss}`).toBeLessThan(rtol);
    expect(rec.parameters.map((p) => p.name).sort()).toEqual(Object.keys(ref.parameters).sort());
    for (const p of rec.parameters) {
      expect(rel(p.norm, ref.parameters[p.name]!.norm), `step ${rec.step} ${p.name} norm`).toBeLessThan(rtol);
      expect(rel(p.gradNorm, ref.parameters[p.name]!.gradNorm), `step ${rec.step} ${p.name} gradNorm ${p.gradNorm} vs ${ref.parameters[p.name]!.gradNorm}`).toBeLessThan(rtol);
    }
  }
}

const CASES = [
  { name: 'mlp', optimizer: { name: 'sgd', learningRate: 0.1 }, steps: 12 },
  { name: 'cnn_bn', optimizer: { name: 'momentum', learningRate: 0.05, momentum: 0.9 }, steps: 10 },
  { name: 'residual', optimizer: { name: 'adam', learningRate: 0.01, epsilon: 1e-8 }, steps: 10 },
  { name: 'gelu_ln', optimizer: { name: 'adam', learningRate: 0.01, epsilon: 1e-8 }, steps: 10 },
  { name: 'regression', optimizer: { name: 'sgd', learningRate: 0.05 }, steps: 10, loss: 'mse' },
  // data mnist: the digits gradlens draws for seed 42, which the fixture (and so the replay) was built on.
  { name: 'mnist_cnn', optimizer: { name: 'adam', learningRate: 0.01, epsilon: 1e-8 }, steps: 10, seed: 42, data: { source: 'mnist', batchSize: 8 } },
] as const;

describe('POST /v1/trainings with model', () => {
  for (const c of CASES) {
    it(`${c.name}, ${c.optimizer.name}: every step's loss and per-parameter norms and gradient norms are PyTorch float64's to 1e-3`, async () => {
      const f = fixture(c.name);
      const data = 'data' in c ? c.data : inline(f);
      const job = await trained({ model: { id: ids.get(c.name) }, data, steps: c.steps, recordEvery: 1, optimizer: c.optimizer, ...('loss' in c ? { loss: c.loss } : {}), ...('seed' in c ? { seed: c.seed } : {}) });
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      const r = job.result;
      expect(r).toMatchObject({ steps: c.steps, stepsCompleted: c.steps, batchSize: f.input.shape[0] });
      expect(job.spec).toMatchObject({ model: { id: ids.get(c.name) }, steps: c.steps, recordEvery: 1, mode: 'train' });
      expect(job.cost).toMatchObject({ steps: c.steps, records: c.steps + 1, examples: f.input.shape[0] });
      const normalized = job.spec.optimizer as Record<string, number>;
      const replay = torchOracle<Replay>('model_train_reference.py', { name: c.name, steps: c.steps, optimizer: normalized, dtype: 'float64' });
      expectReplay(r, replay, 1e-3);
      // The parameters moved, and the loss on the batch went down.
      expect(r.finalLoss).toBeLessThan(r.initialLoss);
      expect(r.records[r.records.length - 1]!.parameters.some((p, i) => rel(p.norm, r.records[0]!.parameters[i]!.norm) > 1e-4)).toBe(true);
      for (const l of r.records[0]!.layers) expect(l.backpropNorm).toBeGreaterThan(0);
    });
  }

  it('records every recordEvery steps and after the last, streamed as events; the verdict of the run', async () => {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const f = fixture('mlp');
    const body = { model: { id: ids.get('mlp') }, data: inline(f), steps: 40, recordEvery: 15, optimizer: { name: 'sgd', learningRate: 0.5 } };
    const res = await fetch(`${base}/v1/trainings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const events: SseEvent[] = [];
    for await (const event of readEvents((await fetch(`${base}/v1/jobs/${id}/events`)).body!)) events.push(event);
    expect(events.at(-1)!.event).toBe('done');
    const result = events.at(-1)!.data.result as Result;
    expect(events.filter((e) => e.event === 'record').map((e) => e.data.record.step)).toEqual([0, 15, 30, 40]);
    expect(result.records.map((r) => r.step)).toEqual([0, 15, 30, 40]);
    const replay = torchOracle<Replay>('model_train_reference.py', { name: 'mlp', steps: 40, optimizer: { name: 'sgd', learningRate: 0.5 }, dtype: 'float64' });
    expect(rel(result.finalLoss, replay.steps[40]!.loss)).toBeLessThan(1e-3);
    // The rule of built networks' trainings, on the batch's loss (no constant-prediction baseline here).
    expect(result.status).toBe((result.initialLoss - result.finalLoss) / result.initialLoss >= 0.1 ? 'learning' : 'stalled');
    expect(result.reasons.length).toBeGreaterThan(0);
  });

  it('gaussian_images: the seeded batch of the declared shape, the same figures for the same seed', async () => {
    const body = { seed: 3, model: { id: ids.get('cnn_bn') }, data: { source: 'gaussian_images', batchSize: 6 }, steps: 3, recordEvery: 3 };
    const a = await trained(body);
    const b = await trained(body);
    expect(a.status).toBe('succeeded');
    expect(a.result.batchSize).toBe(6);
    expect(a.result.records).toEqual(b.result.records);
  });

  it('leaves no tensors behind', async () => {
    const f = fixture('residual');
    const payload = { model: { id: ids.get('residual') }, data: inline(f), steps: 3, optimizer: { name: 'adam' } };
    await trained(payload);
    const before = tf.memory().numTensors;
    await trained(payload);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('POST /v1/trainings with model: refused before anything is queued', () => {
  const f = fixture('mlp');
  const ok = () => ({ model: { id: ids.get('mlp') }, data: inline(f), steps: 5 });
  const cases: [string, () => object, number, string][] = [
    ['an unknown model id', () => ({ ...ok(), model: { id: 'no-such-model' } }), 400, 'model.id'],
    ['network with model', () => ({ ...ok(), network: { depth: 2, width: 4 } }), 400, 'network'],
    ['include with model', () => ({ ...ok(), include: ['parameters'] }), 400, 'include'],
    ['inputs of the wrong shape', () => ({ ...ok(), data: { source: 'inline', x: [[1, 2, 3]], y: [0] } }), 400, 'data.x'],
    ['mnist for a model that does not take 28×28', () => ({ ...ok(), data: { source: 'mnist', batchSize: 4 } }), 400, 'data.source'],
    ['a loss the model route has not', () => ({ ...ok(), loss: 'binary_crossentropy' }), 400, 'loss'],
    ['too many records', () => ({ ...ok(), steps: 5000, recordEvery: 1 }), 400, 'recordEvery'],
    ['an optimizer parameter the optimizer has not', () => ({ ...ok(), optimizer: { name: 'sgd', beta1: 0.5 } }), 400, 'optimizer.beta1'],
    ['minAccuracy, which a model training does not report', () => ({ ...ok(), expect: { minAccuracy: 0.5 } }), 400, 'expect.minAccuracy'],
    ['more compute than GRADLENS_MAX_TRAINING_FLOPS', () => ({ ...ok(), data: { source: 'gaussian_images', batchSize: 4096 }, steps: 1_000_000, recordEvery: 2000 }), 422, 'GRADLENS_MAX_TRAINING_FLOPS'],
  ];
  for (const [what, body, status, named] of cases) {
    it(`${what}: ${status} naming ${named}`, async () => {
      const res = await train(body());
      expect(res.statusCode, res.body).toBe(status);
      expect(res.body).toContain(named);
    });
  }

  it('mode and thresholds with a network (the request schema has them for models): 400 naming the field', async () => {
    const network = { network: { depth: 2, width: 4 }, data: { source: 'xor', samples: 32, batchSize: 8 }, steps: 2 };
    for (const [field, value] of [['mode', 'eval'], ['thresholds', { vanishingRatio: 0.01 }]] as const) {
      const res = await train({ ...network, [field]: value });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().field).toBe(field);
    }
  });

  it('queues nothing for any of them', async () => {
    const before = (await app.inject({ url: '/v1/jobs?kind=training&limit=100' })).json().jobs.length;
    for (const [, body] of cases) await train(body());
    expect((await app.inject({ url: '/v1/jobs?kind=training&limit=100' })).json().jobs.length).toBe(before);
  });
});
