// Recurrent layer graphs over HTTP (issue 14): an LSTM on the adding problem answers with result.throughTime
// (checked against the route's schema by the test app's contract), the row and its recurrent parameters;
// misuse answers 400 naming the field and the limit.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

const post = async (body: unknown) => {
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: body as object });
  return { status: res.statusCode, body: res.json() };
};

describe('POST /v1/analyses with recurrent layers', () => {
  it('an LSTM on the adding problem returns throughTime: one norm per step, horizon, forget gate, Pascanu\'s conditions, verdict', async () => {
    const T = 40;
    const res = await post({
      seed: 1, data: { source: 'adding', length: T, samples: 128, batchSize: 32 },
      network: { layers: [{ kind: 'lstm', units: 16 }, { kind: 'dense' }] }, include: ['parameters'],
    });
    expect(res.status).toBe(200);
    const r = res.body.result;
    expect(r.layers.map((l: { kind: string }) => l.kind)).toEqual(['lstm', 'dense']);
    expect(r.layers[0].inputUnits).toBe(2);
    expect(r.layers[0].auxParameters.map((a: { name: string }) => a.name)).toEqual(['recurrent_kernel']);
    expect(r.parameters[0].weights).toHaveLength(2);
    expect(r.parameters[0].weights[0]).toHaveLength(4 * 16);
    expect(r.throughTime).toHaveLength(1);
    const e = r.throughTime[0];
    expect(e).toMatchObject({ layer: 0, path: 'lstm1', kind: 'lstm', steps: T });
    expect(e.norms).toHaveLength(T);
    expect(e.relative[T - 1]).toBe(1);
    expect(e.gates.name).toBe('forget');
    expect(e.gates.mean).toHaveLength(T);
    // Zero biases: the forget gate sits near σ(0) = 1/2 at initialisation, so the gradient fades fast.
    expect(Math.abs(e.gates.overallMean - 0.5)).toBeLessThan(0.1);
    expect(e.verdict).toBe('vanishing');
    expect(e.memoryHorizon).toBeGreaterThan(0);
    expect(e.cures.map((c: { id: string }) => c.id)).toContain('forget_bias');
    expect(e.recurrentMatrix.block).toBe('U_g');
    expect(Math.abs(e.recurrentMatrix.largestSingularValue - 1)).toBeLessThan(1e-4);
    expect(r.summary.reasons.at(-1)).toMatch(/Through time, lstm1 \(lstm\): vanishing after ~\d+ steps/);
  });

  it.each([
    [{ network: { layers: [{ kind: 'gru', units: 4 }, { kind: 'dense' }] }, data: { source: 'blobs' } }, /gru needs a sequence input \[time, features\] but gets \[2\]/],
    [{ network: { layers: [{ kind: 'simple_rnn', units: 5000 }, { kind: 'dense' }] }, data: { source: 'adding', length: 10 } }, /units is 5000 but the limit is/],
    [{ network: { layers: [{ kind: 'lstm', units: 4 }, { kind: 'dense' }] }, data: { source: 'adding', length: 5000 } }, /data\.length|data\/length/],
    [{ network: { layers: [{ kind: 'lstm', units: 4 }, { kind: 'dense' }] }, data: { source: 'sequential_mnist', length: 50 } }, /data\.length for sequential_mnist is 28 .* or 784/],
  ])('answers 400 naming the field for %o', async (body, message) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });
});
