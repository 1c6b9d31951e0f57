// Layer graphs in the other kinds of work: a sweep whose cells are layer graphs (He against Glorot on a ReLU
// CNN: the Glorot cell loses ½ of ‖δ‖² per conv layer more), trainings over HTTP (event stream, budget, cancel),
// and both on worker threads.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { getJob, poolApp, readEvents, tempDir, type SseEvent } from '../support/jobs.js';
import { until } from '../support/until.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

const DEPTH = 6;
const GRAPH = {
  seed: 2,
  network: {
    input: [6, 6, 4],
    layers: [
      ...Array.from({ length: DEPTH }, () => ({ kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu', useBias: false })),
      { kind: 'flatten' }, { kind: 'dense', units: 2, useBias: false },
    ],
  },
  data: { source: 'blobs', features: 144, classes: 2, batchSize: 4 },
  loss: 'output',
};

describe('layer graphs in sweeps', () => {
  it('sweeps a layer graph: one row per cell, the Glorot cell\'s slope ½·ln ½ per conv layer below He\'s', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/sweeps', payload: { base: GRAPH, grid: { 'network.init.weights': ['he_uniform', 'glorot_uniform'] } } });
    expect(res.statusCode).toBe(202);
    const done = await until(() => getJob(app, res.json().id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status));
    expect(done.status).toBe('succeeded');
    const [he, glorot] = done.result.rows;
    expect(done.result.rows).toHaveLength(2);
    // ReLU is positively homogeneous and there are no biases, so with loss "output" (∂L/∂logits fixed) the
    // Glorot net's δ at conv layer l is He's times c^(DEPTH−1−l)·r: c = 1/√2 per conv layer above it (uniform
    // limits √(6/(36+36)) vs √(6/36)) and r = √(144/146) for the dense head. The summary fits ln‖δ‖ over every
    // row against the distance x from the output (x = 0 the head): fit those differences the same way.
    const c = Math.sqrt(0.5), r = Math.sqrt(144 / 146);
    const xs = Array.from({ length: DEPTH + 1 }, (_, x) => x);
    const ys = xs.map((x) => (x === 0 ? 0 : (x - 1) * Math.log(c) + Math.log(r)));
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length, my = ys.reduce((a, b) => a + b, 0) / ys.length;
    const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    expect(Math.abs(glorot.backpropLogSlope - he.backpropLogSlope - slope), `Glorot ${glorot.backpropLogSlope} He ${he.backpropLogSlope}, expected difference ${slope}`).toBeLessThan(1e-4);
  });

});

/** A small CNN with batch norm and a residual block on 8×8 shapes (4 classes): learns within tens of Adam steps. */
const CNN_TRAINING = {
  seed: 1,
  network: {
    layers: [
      { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm', activation: 'relu' },
      { kind: 'residual', activation: 'relu', layers: [
        { kind: 'conv2d', filters: 4, kernel: 3, useBias: false }, { kind: 'batch_norm', activation: 'relu' }, { kind: 'conv2d', filters: 4, kernel: 3 },
      ] },
      { kind: 'max_pool', size: 2 }, { kind: 'global_avg_pool' }, { kind: 'dense' },
    ],
  },
  data: { source: 'shapes', height: 8, width: 8, samples: 200, batchSize: 16 },
  steps: 60,
  optimizer: { name: 'adam', learningRate: 0.01 },
  recordEvery: 20,
};

describe('trainings of layer graphs over HTTP', () => {
  let base: string;
  beforeAll(async () => {
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  it('trains a CNN with batch norm and a shortcut on shapes: records by path on the event stream, the loss falls', async () => {
    const res = await fetch(`${base}/v1/trainings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CNN_TRAINING) });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const events: SseEvent[] = [];
    for await (const event of readEvents((await fetch(`${base}/v1/jobs/${id}/events`)).body!)) events.push(event);
    expect(events.at(-1)!.event).toBe('done');
    const records = events.filter((e) => e.event === 'record');
    expect(records.map((e) => e.data.record.step)).toEqual([0, 20, 40, 60]);
    const result = events.at(-1)!.data.result;
    expect(result.layers.map((l: { path: string; kind: string; block: string | null }) => `${l.path} ${l.kind} ${l.block}`)).toEqual([
      'conv1 conv2d null', 'block1.conv1 conv2d block1', 'block1.conv2 conv2d block1', 'dense1 dense null',
    ]);
    for (const e of records) {
      expect(e.data.record.layers).toHaveLength(4);
      for (const l of e.data.record.layers) expect(l.weightGradNorm).toBeGreaterThan(0);
    }
    expect(result.status, result.reasons.join('; ')).toBe('learning');
    expect(result.finalLoss).toBeLessThan(0.8 * result.initialLoss);
    expect(result.finalAccuracy).toBeGreaterThan(result.chanceAccuracy);
  });

  it('refuses a layer graph training over the FLOP budget with a 422 before it runs', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: {
      network: { preset: 'resnet', blocksPerStage: 9 }, data: { source: 'mnist', batchSize: 256 }, steps: 100_000, recordEvery: 1000,
    } });
    expect(res.statusCode).toBe(422);
    expect(JSON.stringify(res.json())).toMatch(/maxTrainingFlops/);
  });

  it('cancels a running layer graph training at its next step', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...CNN_TRAINING, steps: 100_000, recordEvery: 1000 } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    await until(() => getJob(app, id), (j) => j.status === 'running');
    expect((await app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).statusCode).toBe(200);
    const done = await until(() => getJob(app, id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status));
    expect(done.status).toBe('canceled');
  });
});

describe('a layer graph on worker threads', () => {
  const tmp = tempDir();
  let pool: FastifyInstance;
  beforeAll(async () => {
    pool = await poolApp(tmp.db('graph.db'), { jobs: { workers: 1 } });
  });
  afterAll(async () => {
    await pool.close();
    tmp.remove();
  });

  it('runs the normalised graph that crossed to the worker (wasm) and gives the in-process rows\' paths and shapes', async () => {
    const res = await pool.inject({ method: 'POST', url: '/v1/analyses', payload: GRAPH });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.environment.backend).toBe('wasm');
    expect(body.result.layers.map((l: { path: string; outputShape: number[] }) => `${l.path} ${l.outputShape.join('x')}`)).toEqual([
      ...Array.from({ length: DEPTH }, (_, i) => `conv${i + 1} 6x6x4`), 'dense1 2',
    ]);
  });

  it('trains the layer graph on a worker (wasm, whose conv filter gradient is Conv2D\'s): the loss falls there too', async () => {
    const res = await pool.inject({ method: 'POST', url: '/v1/trainings', payload: CNN_TRAINING });
    expect(res.statusCode).toBe(202);
    const done = await until(() => getJob(pool, res.json().id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status), 120_000);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.result.records.at(-1).layers.map((l: { index: number }) => l.index)).toEqual([0, 1, 2, 3]);
    expect(done.result.finalLoss).toBeLessThan(0.8 * done.result.initialLoss);
  });
});
