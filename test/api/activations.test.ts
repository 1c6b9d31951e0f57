// POST /v1/analyses with every documented hidden activation in every network shape answers 200 on the suite's backend (relu6 answered 500 on native).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp, TEST_BACKEND } from '../support/app.js';
import { ACTIVATION_NAMES } from '../../src/engine/model/activations.js';

const SHAPES: Record<string, object> = {
  plain: {},
  residual: { residual: { every: 2 } },
  'layer norm': { normalization: 'layer' },
  'batch norm': { normalization: 'batch' },
};

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

describe(`every activation × {plain, residual, layer norm, batch norm} over HTTP on ${TEST_BACKEND}`, () => {
  it.each(ACTIVATION_NAMES.filter((a) => a !== 'softmax'))('%s', async (activation) => {
    const problems: string[] = [];
    for (const [shape, extra] of Object.entries(SHAPES)) {
      const payload = { seed: 2, network: { depth: 4, width: 8, activation, ...extra }, data: { source: 'moons', batchSize: 16 } };
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload });
      if (res.statusCode !== 200) {
        problems.push(`${shape}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        continue;
      }
      const body = res.json();
      expect(body.environment.backend).toBe(TEST_BACKEND);
      // Every layer measured, with finite gradients.
      expect(body.result.layers).toHaveLength(4);
      for (const layer of body.result.layers) expect(typeof layer.weightGradNorm === 'number' && Number.isFinite(layer.weightGradNorm), `${shape}`).toBe(true);
    }
    expect(problems).toEqual([]);
  });
});
