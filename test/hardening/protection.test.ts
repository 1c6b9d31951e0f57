// Rate limits (per key, per IP, job creation, 404s), body size, request ids, helmet, CORS and load shedding.
import { describe, it, expect, afterEach } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { testApp } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { workerEntry } from '../../src/jobs/pool.js';
import { fileURLToPath } from 'node:url';

const KEY_A = 'rate-key-a-0123456789abcdef';
const KEY_B = 'rate-key-b-0123456789abcdef';
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const SMALL = { network: { depth: 2, width: 4 }, data: { source: 'moons', batchSize: 8 } };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('rate limits', () => {
  it('a burst gets 429 with Retry-After and a body naming the variable; each key has its own budget', async () => {
    app = await testApp({ security: { apiKeys: [KEY_A, KEY_B], rateLimitMax: 5, rateLimitWindowMs: 60_000 } });
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 8; i++) {
      last = await app.inject({ url: '/v1/jobs', headers: auth(KEY_A) });
      statuses.push(last.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(last!.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(last!.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests' });
    expect(last!.json().message).toMatch(/GRADLENS_RATE_LIMIT_MAX/);
    // Another key is not affected; neither are the probes.
    expect((await app.inject({ url: '/v1/jobs', headers: auth(KEY_B) })).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    }
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/gradlens_rate_limited_total\{bucket="all"\} 3/);
  });

  it('without keys the budget is per client address', async () => {
    app = await testApp({ security: { rateLimitMax: 2 } });
    const from = (remoteAddress: string) => app!.inject({ url: '/v1/jobs', remoteAddress });
    expect([(await from('10.0.0.1')).statusCode, (await from('10.0.0.1')).statusCode, (await from('10.0.0.1')).statusCode]).toEqual([200, 200, 429]);
    expect((await from('10.0.0.2')).statusCode).toBe(200);
  });

  it('job creation has its own, stricter bucket shared by every POST under /v1', async () => {
    app = await testApp({ security: { rateLimitMax: 100, rateLimitCreateMax: 3 } });
    const post = (url: string, payload: object) => app!.inject({ method: 'POST', url, payload, headers: { prefer: 'respond-async' } });
    const a = await post('/v1/analyses', SMALL);
    const b = await post('/v1/analyses', SMALL);
    const c = await post('/v1/trainings', { ...SMALL, steps: 2 });
    expect([a.statusCode, b.statusCode, c.statusCode]).toEqual([202, 202, 202]);
    const d = await post('/v1/sweeps', { base: SMALL, grid: { 'network.depth': [2, 3] } });
    expect(d.statusCode).toBe(429);
    expect(d.json().code).toBe('RATE_LIMITED');
    expect(d.json().message).toMatch(/GRADLENS_RATE_LIMIT_CREATE_MAX/);
    expect(Number(d.headers['retry-after'])).toBeGreaterThan(0);
    // Theory runs on the HTTP thread: same bucket. Reading is still allowed.
    expect((await app.inject({ url: '/v1/theory?activation=tanh&sigmaW2=1' })).statusCode).toBe(429);
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/gradlens_rate_limited_total\{bucket="create"\} 2/);
  });

  it('rate-limits the 404 handler: scanning unknown paths spends the same budget', async () => {
    app = await testApp({ security: { rateLimitMax: 3 } });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await app.inject({ url: `/wp-admin/${i}.php` })).statusCode);
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(429);
    const open = await testApp({ security: { rateLimitMax: 0 } });
    try {
      const notFound = await open.inject({ url: '/nope?access_token=secret-secret-secret' });
      expect(notFound.json()).toEqual({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no route GET /nope' });
    } finally {
      await open.close();
    }
  });
});

describe('request size and identity', () => {
  it('refuses a body over GRADLENS_BODY_LIMIT with 413 before reading it, naming the limit', async () => {
    app = await testApp({ bodyLimitBytes: 2048, security: { rateLimitMax: 0 } });
    const big = { ...TEXTBOOK_CHAIN, data: { source: 'inline', x: Array.from({ length: 400 }, () => [1.2345]) } };
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: big });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large' });
    expect(res.json().message).toMatch(/GRADLENS_BODY_LIMIT\) is 2048 bytes/);
  });

  it('keeps a plain x-request-id and replaces anything else', async () => {
    app = await testApp({ security: { rateLimitMax: 0 } });
    const id = (await app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123_x.y:z' } })).headers['x-request-id'];
    expect(id).toBe('abc-123_x.y:z');
    for (const given of ['a'.repeat(200), 'has space', '<script>', '']) {
      const echoed = (await app.inject({ url: '/health', headers: { 'x-request-id': given } })).headers['x-request-id'];
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('headers', () => {
  it('sets helmet headers on the API, and a CSP under which the Swagger UI at /docs loads (no inline scripts)', async () => {
    app = await testApp({ security: { rateLimitMax: 0 } });
    const api = await app.inject({ url: '/health' });
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    expect(api.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(api.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const docs = await app.inject({ url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    const csp = String(docs.headers['content-security-policy']);
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).toMatch(/style-src 'self' https: 'unsafe-inline'/);
    // upgrade-insecure-requests would make browsers fetch the UI's assets over https from a plain-http server.
    expect(csp).not.toMatch(/upgrade-insecure-requests/);
    // The page only loads same-origin scripts, which script-src 'self' allows.
    expect(docs.body).not.toMatch(/<script>(?!\s*<\/script>)|<script(?![^>]*\bsrc=)[^>]*>/);
    for (const src of docs.body.match(/src="([^"]+)"/g) ?? []) expect(src).toMatch(/src="\.\/static\//);
    expect((await app.inject({ url: '/docs/static/swagger-initializer.js' })).statusCode).toBe(200);
  });

  it('keeps the dashboard\'s own, stricter CSP on its page', async () => {
    app = await testApp({ security: { rateLimitMax: 0 } });
    const page = await app.inject({ url: '/' });
    if (page.statusCode !== 200) return; // dashboard not built in this checkout
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });

  it('CORS: only configured origins, exposing Location/Retry-After/x-request-id, also on 401', async () => {
    app = await testApp({ security: { corsOrigins: ['https://app.example'], apiKeys: [KEY_A], rateLimitMax: 0 } });
    const preflight = await app.inject({
      method: 'OPTIONS', url: '/v1/analyses',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/authorization/);
    const refused = await app.inject({ url: '/v1/jobs', headers: { origin: 'https://app.example' } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(refused.headers['access-control-expose-headers'])).toMatch(/retry-after/);
    const other = await app.inject({ url: '/health', headers: { origin: 'https://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('no CORS headers at all unless GRADLENS_CORS_ORIGINS is set', async () => {
    app = await testApp({ security: { rateLimitMax: 0 } });
    const res = await app.inject({ url: '/health', headers: { origin: 'https://app.example' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('load shedding', () => {
  it('over a memory threshold: 503 with Retry-After on the API, while /health and /metrics answer and /ready says why', async () => {
    app = await testApp({ security: { maxRssBytes: 1, pressureSampleMs: 10, pressureRetryAfterSeconds: 7, rateLimitMax: 0 } });
    await new Promise((r) => setTimeout(r, 50));
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: TEXTBOOK_CHAIN });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json()).toMatchObject({ statusCode: 503, code: 'OVERLOADED', error: 'Service Unavailable', retryAfter: 7 });
    expect(res.json().message).toMatch(/rssBytes/);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.load.ok).toBe(false);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/gradlens_shed_requests_total\{reason="rssBytes"\} 1/);
    expect(metrics.body).toMatch(/gradlens_under_pressure 1/);
  });

  it('ignores event-loop delay while compute runs on this thread (an analysis would trip it)', async () => {
    app = await testApp({ security: { maxEventLoopDelayMs: 1, pressureSampleMs: 10, rateLimitMax: 0 } });
    const t0 = Date.now();
    while (Date.now() - t0 < 300) { /* block the loop */ }
    await new Promise((r) => setTimeout(r, 0));
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
  });

  it('with worker threads, a blocked event loop sheds until it recovers', async () => {
    const config = loadConfig({}, {
      backend: 'cpu', logLevel: 'silent',
      jobs: { workers: 1, db: ':memory:' },
      security: { maxEventLoopDelayMs: 20, pressureSampleMs: 200, rateLimitMax: 0 },
    });
    app = await buildApp(config, { logger: false });
    await app.ready();
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) { /* a main thread that cannot keep up */ }
    await new Promise((r) => setTimeout(r, 0));
    const shed = await app.inject({ url: '/v1/jobs' });
    expect(shed.statusCode).toBe(503);
    expect(shed.json().message).toMatch(/eventLoopDelay/);
    expect(Number(shed.headers['retry-after'])).toBeGreaterThan(0);
    // A quiet sample later it serves again.
    await new Promise((r) => setTimeout(r, 450));
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
  });
});
