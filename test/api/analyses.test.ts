// POST /v1/analyses through app.inject: numbers against closed forms, reproducibility, and every kind of bad input.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance } from 'fastify';
import { testApp, TEST_BACKEND } from '../support/app.js';
import { sigmoidChain, TEXTBOOK_CHAIN } from '../support/textbook-chain.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function post(body: unknown) {
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: body as object });
  return { status: res.statusCode, body: res.json() };
}

describe('POST /v1/analyses', () => {
  it('returns the textbook chain gradients of the closed form, with backend and spec', async () => {
    const { status, body } = await post(TEXTBOOK_CHAIN);
    expect(status).toBe(200);
    const expected = sigmoidChain(20, Math.fround(0.17), 1);
    expect(body.status).toBe('succeeded');
    expect(body.result.layers).toHaveLength(20);
    expect(body.result.layers[0].weightGradNorm / expected.weightGrads[0]!).toBeCloseTo(1, 4);
    expect(body.result.layers[19].weightGradNorm / expected.weightGrads[19]!).toBeCloseTo(1, 5);
    expect(body.result.layers[0].weightGradNorm).toBeLessThan(1e-26);
    expect(body.environment.backend).toBe(TEST_BACKEND);
    expect(body.environment.tfjsVersion).toBe(tf.version.tfjs);
    expect(body.spec.network.widths).toEqual(new Array(19).fill(1));
    expect(body.spec.seed).toBe(42);
    expect(body.result.nonFinite.count).toBe(0);
  });

  it('gives the same numbers for the same seed, different ones for another seed, and accepts its own normalised spec', async () => {
    const spec = { seed: 7, network: { depth: 4, width: 16, activation: 'tanh' }, data: { source: 'moons', batchSize: 32, batches: 2 } };
    const a = await post(spec);
    const b = await post(spec);
    const c = await post({ ...spec, seed: 8 });
    const again = await post(a.body.spec);
    expect(a.status).toBe(200);
    expect(b.body.result.layers).toEqual(a.body.result.layers);
    expect(again.body.result.layers).toEqual(a.body.result.layers);
    expect(c.body.result.layers[0].weightGradNorm).not.toBe(a.body.result.layers[0].weightGradNorm);
    // Two batches: spread is reported, and the mean lies within it.
    const l0 = a.body.result.layers[0];
    expect(l0.spread.weightGradNorm.min).toBeLessThanOrEqual(l0.weightGradNorm);
    expect(l0.spread.weightGradNorm.max).toBeGreaterThanOrEqual(l0.weightGradNorm);
    expect(a.body.result.lossSpread.std).toBeGreaterThan(0);
  });

  it('returns parameters and batch so the numbers can be reproduced elsewhere', async () => {
    const { body } = await post({
      network: { depth: 2, width: 3, activation: 'relu', init: { weights: 'he_uniform', bias: { name: 'constant', value: 0.1 } } },
      data: { source: 'inline', x: [[1, 2], [3, -1]], y: [[0.5], [1.5]] },
      loss: 'mse',
      include: ['parameters', 'batch'],
    });
    const p = body.result.parameters;
    expect(p).toHaveLength(2);
    expect(p[0].weights).toHaveLength(2);
    expect(p[0].weights[0]).toHaveLength(3);
    expect(p[0].bias).toEqual([0.1, 0.1, 0.1].map(Math.fround));
    expect(p[1].weights).toHaveLength(3);
    expect(body.result.batch[0].x).toEqual([[1, 2], [3, -1]]);
    // Recompute the mse loss by hand from the returned parameters.
    const forward = (x: number[]) => {
      const h = [0, 1, 2].map((j) => Math.max(0, x[0]! * p[0].weights[0][j] + x[1]! * p[0].weights[1][j] + p[0].bias[j]));
      return h.reduce((s, v, j) => s + v * p[1].weights[j][0], 0) + p[1].bias[0];
    };
    const loss = ((forward([1, 2]) - 0.5) ** 2 + (forward([3, -1]) - 1.5) ** 2) / 2;
    expect(body.result.loss).toBeCloseTo(loss, 5);
  });

  it('reports an exploding network as a normal result with its non-finite values listed', async () => {
    const { status, body } = await post({
      network: { depth: 50, width: 16, activation: 'relu', useBias: false, init: { weights: { name: 'constant', value: 1 } } },
      data: { source: 'blobs', batchSize: 8, normalize: 'minmax' },
      loss: 'mse',
    });
    expect(status).toBe(200);
    expect(body.result.nonFinite.count).toBeGreaterThan(0);
    const firstPath: string = body.result.nonFinite.paths[0];
    // The path points at a value that really is one of the explicit strings.
    const value = firstPath.split(/\.|\[|\]/).filter(Boolean).reduce((o: any, k: string) => o[k], body.result);
    expect(['NaN', 'Infinity', '-Infinity']).toContain(value);
    expect(['Infinity', 'NaN']).toContain(body.result.layers[49].outputRms);
  });

  it('does not grow the tfjs tensor count across repeated analyses', async () => {
    await post({ network: { depth: 6, width: 8, residual: { every: 2 } }, data: { source: 'iris', batches: 2 } });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      await post({ seed: i, network: { depth: 6, width: 8, residual: { every: 2 } }, data: { source: 'iris', batches: 2 } });
      await post({ network: { depth: 3, activation: 'bogus' }, data: { source: 'iris' } });
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('POST /v1/analyses with bad input', () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['unknown activation', { network: { depth: 3, activation: 'relux' }, data: { source: 'iris' } }, 400, /network\.activation.*relux/],
    ['unknown initialiser', { network: { depth: 3, init: { weights: 'kaiming' } }, data: { source: 'iris' } }, 400, /network\.init\.weights/],
    ['initialiser parameter that does not exist', { network: { depth: 3, init: { weights: { name: 'he_normal', gain: 2 } } }, data: { source: 'iris' } }, 400, /network\.init\.weights\.gain/],
    ['residual widths that differ inside a block', { network: { depth: 5, widths: [8, 8, 4, 8], residual: { every: 2 } }, data: { source: 'iris' } }, 400, /residual block/],
    ['widths of the wrong length', { network: { depth: 4, widths: [8, 8] }, data: { source: 'iris' } }, 400, /network\.widths has 2 entries but depth 4 needs 3/],
    ['ragged inline rows', { network: { depth: 2 }, data: { source: 'inline', x: [[1, 2], [3]], y: [0, 1] } }, 400, /data\.x\[1\]/],
    ['inline y of the wrong length', { network: { depth: 2 }, data: { source: 'inline', x: [[1], [2]], y: [[1]] }, loss: 'mse' }, 400, /data\.y/],
    ['string in the data', { network: { depth: 2 }, data: { source: 'inline', x: [['NaN']], y: [[1]] }, loss: 'mse' }, 400, /x/],
    ['depth over the limit', { network: { depth: 5000 }, data: { source: 'iris' } }, 400, /network\.depth is 5000 but the limit is 200/],
    ['width over the limit', { network: { depth: 3, width: 100000 }, data: { source: 'iris' } }, 400, /network\.width is 100000 but the limit is 4096/],
    ['compute budget', { network: { depth: 150, width: 4096 }, data: { source: 'mnist', batchSize: 4096, batches: 64 } }, 422, /GRADLENS_MAX_(ANALYSIS_FLOPS|PARAMETERS)/],
    ['negative depth', { network: { depth: -1 }, data: { source: 'iris' } }, 400, /depth/],
    ['unknown field', { network: { depth: 3, dropout: 0.5 }, data: { source: 'iris' } }, 400, /additional|dropout/],
    ['missing data', { network: { depth: 3 } }, 400, /data/],
    ['softmax as hidden activation', { network: { depth: 3, activation: 'softmax' }, data: { source: 'iris' } }, 400, /softmax/],
    ['cross-entropy on regression data', { network: { depth: 3 }, data: { source: 'sine' }, loss: 'categorical_crossentropy' }, 400, /regression/],
  ];
  for (const [name, body, status, message] of cases) {
    it(`answers ${status} for ${name}, naming the field or limit`, async () => {
      const res = await post(body);
      expect(res.status).toBe(status);
      expect(res.body.statusCode).toBe(status);
      expect(typeof res.body.code).toBe('string');
      expect(res.body.error).toBeTruthy();
      expect(res.body.message).toMatch(message);
    });
  }

  it('answers 400 for a body that is not JSON (NaN is not JSON)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', headers: { 'content-type': 'application/json' }, payload: '{"network":{"depth":2},"data":{"source":"inline","x":[[NaN]]}}' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/JSON/i);
  });

  it('names the limit in a 422 and runs nothing', async () => {
    const res = await post({ network: { depth: 150, width: 2048 }, data: { source: 'mnist', batchSize: 2048, batches: 10 } });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('LIMIT_EXCEEDED');
    expect(['maxAnalysisFlops', 'maxParameters']).toContain(res.body.limit);
  });
});

describe('GET /health', () => {
  it('names the backend and tfjs version', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json().environment).toMatchObject({ backend: TEST_BACKEND, tfjsBackend: TEST_BACKEND === 'native' ? 'cpu' : TEST_BACKEND, tfjsVersion: tf.version.tfjs });
  });
});
