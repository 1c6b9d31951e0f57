// Cheap requests that used to pin a worker or answer 500: non-finite or non-decimal query numbers, deep sweep values, lenient body types.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { InProcessRunner, type Runner } from '../../src/jobs/runner.js';
import { TheoryQuerySchema } from '../../src/schemas/diagnosis.js';
import { JobListQuerySchema } from '../../src/schemas/jobs.js';
import { MAX_GRID_VALUE_DEPTH } from '../../src/engine/runs/sweep-run.js';
import type { TheoryQuery } from '../../src/schemas/diagnosis.js';
import { TEST_BACKEND } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';

describe('cheap requests', () => {
  let app: FastifyInstance;
  const theoryCalls: TheoryQuery[] = [];
  beforeAll(async () => {
    const config = loadConfig({ GRADLENS_RATE_LIMIT_MAX: '0' }, { backend: TEST_BACKEND, jobs: { workers: 0, db: ':memory:' } });
    // The real engine, with every theory query it is given recorded; one that could not end is refused here
    // instead of pinning the test process, so a regression fails fast.
    const real = new InProcessRunner(config.limits, config.backend);
    const runner: Runner = {
      ready: () => real.ready(),
      concurrency: real.concurrency,
      analyze: (input, options) => real.analyze(input, options),
      analyzeEncoded: (input, options) => real.analyzeEncoded(input, options),
      train: (input, options) => real.train(input, options),
      analyzeModel: (task, options) => real.analyzeModel(task, options),
      theory: async (query) => {
        theoryCalls.push(query);
        if (!Number.isSafeInteger(query.depth ?? 20)) throw new Error(`the engine was asked for depth ${query.depth}`);
        return real.theory(query);
      },
      close: () => real.close(),
    };
    app = await buildApp(config, { logger: false, runner });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  const theory = (query: string) => app.inject({ url: `/v1/theory?activation=tanh&sigmaW2=1.5&${query}` });

  it('GET /v1/theory refuses depth=Infinity and every non-decimal or out-of-range number with a 400 naming the field and its bounds, before any compute', async () => {
    const cases: [string, RegExp][] = [
      ['depth=Infinity', /querystring\/depth must be an integer in decimal digits between 1 and 1000, got "Infinity"/],
      ['depth=-Infinity', /querystring\/depth .* between 1 and 1000/],
      ['depth=0x10', /querystring\/depth .*got "0x10"/],
      ['depth=1e3', /querystring\/depth/],
      ['depth=1.5', /querystring\/depth/],
      ['depth=%207', /querystring\/depth/],
      ['depth=', /querystring\/depth/],
      ['depth=1001', /querystring\/depth .* between 1 and 1000, got "1001"/],
      ['depth=0', /querystring\/depth/],
      ['depth=99999999999999999999', /querystring\/depth/],
      ['depth=2&depth=3', /querystring\/depth .*got 2 values/],
      ['q0=Infinity', /querystring\/q0 must be a finite decimal number between 0 and 1000000/],
      ['q0=1e999', /querystring\/q0/],
      ['q0=NaN', /querystring\/q0/],
      ['sigmaB2=-1', /querystring\/sigmaB2 .* between 0 and 1000000/],
      ['sigmaB2=0x1', /querystring\/sigmaB2/],
      ['alpha=1e300', /querystring\/alpha .* between -1000 and 1000/],
    ];
    for (const [query, message] of cases) {
      const res = await theory(query);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().message, query).toMatch(message);
      expect(res.json().field, query).toMatch(/^querystring\//);
    }
    const sigma = await app.inject({ url: '/v1/theory?activation=tanh&sigmaW2=Infinity' });
    expect(sigma.statusCode).toBe(400);
    expect(sigma.json().message).toMatch(/querystring\/sigmaW2 .* between 0 and 1000000/);
    expect(theoryCalls).toEqual([]);
  });

  it('GET /v1/theory still takes decimal numbers, signs and exponents, and answers as the engine does', async () => {
    const res = await theory('depth=1000&q0=2.5e-1&sigmaB2=%2B0.05');
    expect(res.statusCode).toBe(200);
    expect(theoryCalls.at(-1)).toMatchObject({ depth: 1000, q0: 0.25, sigmaB2: 0.05 });
    expect(res.json().layers).toHaveLength(1000);
    // The same compute answers the next request: nothing is left pinned.
    expect((await theory('depth=3')).json().layers).toHaveLength(3);
  });

  it('bounds every numeric theory and job-list parameter on both sides', () => {
    for (const schema of [TheoryQuerySchema, JobListQuerySchema]) {
      for (const [name, p] of Object.entries(schema.properties as Record<string, { type?: string; minimum?: number; maximum?: number; maxLength?: number }>)) {
        if (p.type === 'integer' || p.type === 'number') {
          expect(Number.isFinite(p.minimum), name).toBe(true);
          expect(Number.isFinite(p.maximum), name).toBe(true);
        } else if (p.type === 'string') {
          expect(Number.isFinite(p.maxLength) || name === 'kind' || name === 'status', name).toBe(true);
        }
      }
    }
  });

  it('GET /v1/jobs?limit=Infinity is a 400 naming limit and its bounds, not a database error', async () => {
    for (const limit of ['Infinity', '1e1', '0x10', '101', '0', '-5']) {
      const res = await app.inject({ url: `/v1/jobs?limit=${limit}` });
      expect(res.statusCode, limit).toBe(400);
      expect(res.json().message).toMatch(/querystring\/limit must be an integer in decimal digits between 1 and 100/);
    }
    expect((await app.inject({ url: '/v1/jobs?limit=100' })).statusCode).toBe(200);
  });

  it('a sweep grid value nested 100 000 deep is a 400 naming the grid entry and the depth limit', async () => {
    // Built as text: the value itself could not be serialised by JSON.stringify.
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const payload = `{"base":${JSON.stringify(TEXTBOOK_CHAIN)},"grid":{"network.activation":["relu",${deep}]}}`;
    const res = await app.inject({ method: 'POST', url: '/v1/sweeps', headers: { 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().field).toBe('grid["network.activation"][1]');
    expect(res.json().message).toMatch(new RegExp(`more than ${MAX_GRID_VALUE_DEPTH} levels deep`));
    // Nesting up to the limit is allowed (and then judged as a value: here not an activation).
    const ok = `${'['.repeat(MAX_GRID_VALUE_DEPTH)}${']'.repeat(MAX_GRID_VALUE_DEPTH)}`;
    const fine = await app.inject({ method: 'POST', url: '/v1/sweeps', headers: { 'content-type': 'application/json' }, payload: payload.replace(deep, ok) });
    expect(fine.statusCode).toBe(400);
    expect(fine.json().message).not.toMatch(/levels deep/);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('a body number must be a JSON number: "0x10", "16" and true are 400s, not 16 or 1 layers', async () => {
    for (const depth of ['0x10', '16', true, '1e1', [3]]) {
      const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...TEXTBOOK_CHAIN, network: { ...TEXTBOOK_CHAIN.network, depth } } });
      expect(res.statusCode, JSON.stringify(depth)).toBe(400);
      expect(res.json().message).toMatch(/body\/network\/depth must be integer/);
    }
    for (const [field, value] of [['seed', '7'], ['useBias', 'false']] as const) {
      const body = field === 'seed' ? { ...TEXTBOOK_CHAIN, seed: value } : { ...TEXTBOOK_CHAIN, network: { ...TEXTBOOK_CHAIN.network, useBias: value } };
      expect((await app.inject({ method: 'POST', url: '/v1/analyses', payload: body })).statusCode, field).toBe(400);
    }
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { ...TEXTBOOK_CHAIN, network: { ...TEXTBOOK_CHAIN.network, depth: 3 } } });
    expect(res.statusCode).toBe(200);
    expect(res.json().result.layers).toHaveLength(3);
  });
});
