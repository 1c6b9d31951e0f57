// Verdicts, theory and what-if over HTTP: POST /v1/analyses and GET /v1/theory through app.inject.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { generateOpenApi } from '../../src/openapi.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function post(body: unknown, on: FastifyInstance = app) {
  const res = await on.inject({ method: 'POST', url: '/v1/analyses', payload: body as object });
  return { status: res.statusCode, body: res.json() };
}

async function theory(query: string) {
  const res = await app.inject({ method: 'GET', url: `/v1/theory?${query}` });
  return { status: res.statusCode, body: res.json() };
}

describe('POST /v1/analyses diagnosis', () => {
  it('the textbook chain: vanishing, onset layer 18 flagged, reasons with the numbers, theory says why it does not predict', async () => {
    const { status, body } = await post(TEXTBOOK_CHAIN);
    expect(status).toBe(200);
    const r = body.result;
    expect(r.summary.verdict).toBe('vanishing');
    expect(r.summary.onsetLayer).toBe(18);
    expect(r.layers[18].flags).toEqual(['onset_vanishing']);
    expect(r.summary.reasons[0]).toMatch(/^vanishing: the first layer receives \d\.\de-27 of the output layer's backprop signal/);
    expect(r.summary.thresholds).toEqual({
      vanishingRatio: 0.1, explodingRatio: 10, perLayerFactor: 2, minR2: 0.9, onsetFactor: 2,
      deadFraction: 0.5, saturatedFraction: 0.5, saturationDerivative: 0.01, minGradRms: 1e-7,
    });
    expect(r.theory.applicable).toBe(false);
    expect(r.layers[0].perExample.coherence).toBe(1);
    expect(r.nonFinite.count).toBe(0);
    expect(body.spec.whatIf).toBe(false);
  });

  it('whatIf: true adds the ranking with its cost and time', async () => {
    const { status, body } = await post({ network: { depth: 8, width: 32, activation: 'sigmoid' }, data: { source: 'moons', batchSize: 32 }, whatIf: true });
    expect(status).toBe(200);
    const w = body.result.whatIf;
    expect(w.ranking[0].rank).toBe(1);
    expect(w.ranking.find((x: { id: string }) => x.id === 'none').verdict).toBe('vanishing');
    expect(w.ranking[0].id).not.toBe('none');
    expect(body.cost.whatIfRuns).toBe(w.runs);
    expect(body.timings.whatIfMs).toBeGreaterThan(0);
    expect(body.spec.whatIf).toBe(true);
  });

  it('thresholds in the request change the verdict, not the numbers', async () => {
    const spec = { network: { depth: 8, width: 32, activation: 'sigmoid' }, data: { source: 'moons', batchSize: 32 } };
    const strict = await post(spec);
    const lenient = await post({ ...spec, thresholds: { vanishingRatio: 1e-12, perLayerFactor: 100 } });
    expect(strict.body.result.summary.verdict).toBe('vanishing');
    expect(lenient.body.result.summary.verdict).toBe('healthy');
    expect(lenient.body.result.layers.map((l: { backpropNorm: number }) => l.backpropNorm))
      .toEqual(strict.body.result.layers.map((l: { backpropNorm: number }) => l.backpropNorm));
    expect(lenient.body.spec.thresholds.perLayerFactor).toBe(100);
  });

  it('what-if over the compute limit is refused with 422 before anything runs', async () => {
    const small = await testApp({ limits: { maxAnalysisFlops: 5e7 } as never });
    try {
      const spec = { network: { depth: 8, width: 64, activation: 'sigmoid' }, data: { source: 'moons', batchSize: 64 } };
      expect((await post(spec, small)).status).toBe(200);
      const { status, body } = await post({ ...spec, whatIf: true }, small);
      expect(status).toBe(422);
      expect(body.code).toBe('LIMIT_EXCEEDED');
      expect(body.message).toContain('what-if');
    } finally {
      await small.close();
    }
  });

  it('ReZero and Fixup over HTTP: zero_by_design with the layers named', async () => {
    const rz = await post({ network: { depth: 6, width: 8, init: { weights: 'he_normal' }, residual: { every: 2, variant: 'rezero' } }, data: { source: 'iris', batchSize: 16 } });
    expect(rz.status).toBe(200);
    expect(rz.body.result.summary.verdict).toBe('zero_by_design');
    expect(rz.body.result.summary.zeroByDesign.layers).toEqual([1, 2, 3, 4]);
    expect(rz.body.spec.network.residual).toEqual({ every: 2, scale: 0, variant: 'rezero' });
    const fx = await post({ network: { depth: 6, width: 8, init: { weights: 'he_normal' }, residual: { every: 2, variant: 'fixup' } }, data: { source: 'iris', batchSize: 16 } });
    expect(fx.body.result.summary.verdict).toBe('zero_by_design');
    expect(fx.body.result.layers[5].auxParameters).toBeUndefined();
    expect(fx.body.result.layers[2].auxParameters.map((a: { name: string }) => a.name)).toEqual(['fixup_bias_in', 'fixup_bias_act', 'fixup_scale']);
  });

  it('rejects bad diagnosis fields with 400', async () => {
    const base = { network: { depth: 3 }, data: { source: 'iris' } };
    const a = await post({ ...base, thresholds: { vanishingRatio: 0.1, nonsense: 1 } });
    expect(a.status).toBe(400);
    const b = await post({ ...base, network: { depth: 3, normalization: 'group' } });
    expect(b.status).toBe(400);
    const c = await post({ ...base, network: { depth: 3, residual: { every: 0, variant: 'fixup' } } });
    expect(c.status).toBe(400);
    expect(c.body.field).toBe('network.residual.variant');
  });
});

describe('GET /v1/theory', () => {
  it('ReLU: χ₁ = σ_w²/2 (1 at He, critical, no depth scale; ½ at Glorot)', async () => {
    const he = await theory('activation=relu&sigmaW2=2&depth=10');
    expect(he.status).toBe(200);
    expect(he.body.chi1).toBeCloseTo(1, 8);
    expect(he.body.phase).toBe('critical');
    expect(he.body.depthScale).toBeNull();
    expect(he.body.fixedPointKind).toBe('scale_free');
    expect(he.body.criticalSigmaW2).toBeCloseTo(2, 6);
    expect(he.body.layers).toHaveLength(10);
    const glorot = await theory('activation=relu&sigmaW2=1');
    expect(glorot.body.chi1).toBeCloseTo(0.5, 8);
    expect(glorot.body.factorPerLayer).toBeCloseTo(Math.SQRT1_2, 8);
    expect(glorot.body.layers[0].predictedBackpropRelative).toBeCloseTo(Math.SQRT1_2 ** 19, 8);
  });

  it('tanh σ_w² = 2: q* = 0.618, χ₁ = 1.106, chaotic; sigmoid σ_w² = 1: χ₁ = 0.0557; leaky ReLU takes alpha', async () => {
    const t = await theory('activation=tanh&sigmaW2=2&sigmaB2=0');
    expect(t.body.qStar).toBeCloseTo(0.618, 3);
    expect(t.body.chi1).toBeCloseTo(1.106, 3);
    expect(t.body.phase).toBe('chaotic');
    const s = await theory('activation=sigmoid&sigmaW2=1');
    expect(s.body.chi1).toBeCloseTo(0.0557, 4);
    expect(s.body.depthScale).toBeCloseTo(0.346, 3);
    const leaky = await theory('activation=leaky_relu&alpha=0.5&sigmaW2=1.6');
    expect(leaky.body.activation).toBe('leaky_relu(0.5)');
    expect(leaky.body.chi1).toBeCloseTo(1, 8);
  });

  it('rejects unknown activations, softmax and missing parameters with 400', async () => {
    expect((await theory('activation=swishy&sigmaW2=1')).status).toBe(400);
    expect((await theory('activation=softmax&sigmaW2=1')).status).toBe(400);
    expect((await theory('activation=relu')).status).toBe(400);
    expect((await theory('activation=relu&sigmaW2=-1')).status).toBe(400);
  });

  it('is documented in the OpenAPI document with a description on every query parameter and response field', async () => {
    const doc = JSON.parse(await generateOpenApi());
    const op = doc.paths['/v1/theory'].get;
    expect(op.description).toContain('χ₁');
    for (const p of op.parameters) expect(p.description ?? p.schema?.description, p.name).toBeTruthy();
    const props = op.responses['200'].content['application/json'].schema.properties;
    for (const [k, v] of Object.entries<Record<string, unknown>>(props)) expect(v.description, k).toBeTruthy();
  });
});
