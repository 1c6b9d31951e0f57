// Layer graphs in the other kinds of work: a sweep whose cells are layer graphs (He against Glorot on a ReLU
// CNN: the Glorot cell loses ½ of ‖δ‖² per conv layer more), and trainings, which refuse them with a 400 for now.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { getJob, poolApp, tempDir } from '../support/jobs.js';
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

describe('layer graphs in sweeps and trainings', () => {
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

  it('refuses a training of a layer graph with a 400 naming network.layers', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...GRAPH, steps: 2 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ field: 'network.layers' });
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
});
