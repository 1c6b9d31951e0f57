// What a request must not get out of the server: a key in the log under an encoded name, unlimited key guesses, its own megabytes echoed back.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { FailureLimiter, redactUrl } from '../../src/plugins/auth.js';
import { TEST_BACKEND } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';

const KEY = 'leak-test-key-0123456789abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** An app with API keys whose JSON log lines are kept in `lines`. */
async function loggedApp(security: Record<string, unknown> = {}): Promise<{ app: FastifyInstance; lines: string[] }> {
  const lines: string[] = [];
  const config = loadConfig({ LOG_LEVEL: 'info' }, {
    backend: TEST_BACKEND,
    jobs: { workers: 0, db: ':memory:' },
    security: { apiKeys: [KEY], rateLimitMax: 0, ...security },
  });
  const app = await buildApp(config, { logStream: { write: (line) => { lines.push(line); } } });
  await app.ready();
  return { app, lines };
}

describe('access_token under an encoded name', () => {
  let app: FastifyInstance;
  let lines: string[];
  beforeAll(async () => {
    ({ app, lines } = await loggedApp());
  });
  afterAll(async () => {
    await app.close();
  });

  it('is accepted as the query parser reads it, and never reaches the log in clear', async () => {
    const names = ['access%5Ftoken', '%61ccess_token', 'access_%74oken', '%61%63%63%65%73%73%5F%74%6F%6B%65%6E', 'access_token'];
    for (const name of names) {
      const res = await app.inject({ url: `/v1/jobs?limit=2&${name}=${encodeURIComponent(KEY)}` });
      // The parser decodes the name, so the authentication reads it: it is the same parameter.
      expect(res.statusCode, name).toBe(200);
    }
    const log = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(names.length);
    expect(log).not.toContain(KEY);
    expect(log).toContain('access%5Ftoken=[REDACTED]');
  });

  it('is redacted from a url by its decoded name, whatever the encoding or case', () => {
    expect(redactUrl(`/v1/jobs?access%5Ftoken=${KEY}`)).toBe('/v1/jobs?access%5Ftoken=[REDACTED]');
    expect(redactUrl(`/v1/jobs?limit=1&%41CCESS_TOKEN=${KEY}#x`)).toBe('/v1/jobs?limit=1&%41CCESS_TOKEN=[REDACTED]#x');
    // A name that does not decode could be anything: redacted as well.
    expect(redactUrl(`/v1/jobs?access%E0_token=${KEY}`)).toBe('/v1/jobs?access%E0_token=[REDACTED]');
    expect(redactUrl('/v1/jobs?xaccess%5Ftoken=1&limit=2')).toBe('/v1/jobs?xaccess%5Ftoken=1&limit=2');
    expect(redactUrl('/v1/jobs?flag&access_token')).toBe('/v1/jobs?flag&access_token');
  });
});

describe('invalid API keys from one address', () => {
  it('get 429 with Retry-After past GRADLENS_AUTH_FAILURE_MAX per window, a right key included; other addresses are unaffected', async () => {
    const { app } = await loggedApp({ authFailureMax: 5 });
    try {
      const from = (remoteAddress: string, key: string) => app.inject({ url: '/v1/jobs', remoteAddress, headers: bearer(key) });
      for (let i = 0; i < 5; i++) expect((await from('10.0.0.1', `wrong-key-number-${i}-xxxxxxxx`)).statusCode).toBe(401);
      const limited = await from('10.0.0.1', 'wrong-key-number-6-xxxxxxxx');
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.json()).toMatchObject({ code: 'TOO_MANY_AUTH_FAILURES' });
      expect(limited.json().message).toMatch(/GRADLENS_AUTH_FAILURE_MAX/);
      // Answering a right key normally would tell a guesser it had found one.
      expect((await from('10.0.0.1', KEY)).statusCode).toBe(429);
      expect((await from('10.0.0.2', KEY)).statusCode).toBe(200);
      expect((await from('10.0.0.2', 'wrong-key-from-elsewhere-xx')).statusCode).toBe(401);
      // Open paths stay open.
      expect((await app.inject({ url: '/health', remoteAddress: '10.0.0.1' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/gradlens_rate_limited_total\{bucket="auth"\} [1-9]/);
    } finally {
      await app.close();
    }
  });

  it('700 wrong keys in a burst: at most the limit reach the key check, the rest are 429', async () => {
    const { app } = await loggedApp();
    try {
      const statuses = await Promise.all(Array.from({ length: 700 }, (_, i) => app.inject({ url: '/v1/jobs', headers: bearer(`guess-${i}-0123456789abcdef`) }).then((r) => r.statusCode)));
      const limit = loadConfig({}).security.authFailureMax;
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(limit);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(700 - limit);
    } finally {
      await app.close();
    }
  });

  it('counts in fixed windows and forgets an address when its window ends; tracks a bounded number of addresses', () => {
    let now = 0;
    const limiter = new FailureLimiter({ max: 2, windowMs: 10_000, now: () => now, capacity: 3 });
    limiter.recordFailure('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    limiter.recordFailure('a');
    now = 2500;
    expect(limiter.retryAfterSeconds('a')).toBe(8);
    now = 10_000;
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    limiter.recordFailure('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    for (const address of ['b', 'c', 'd', 'e']) limiter.recordFailure(address);
    expect(limiter.tracked).toBe(3);
    // Full, the oldest windows went first ('a', then 'b'); the newest are still counted.
    limiter.recordFailure('e');
    expect(limiter.retryAfterSeconds('e')).toBe(10);
    limiter.recordFailure('a');
    expect(limiter.retryAfterSeconds('a')).toBe(0);
    expect(limiter.retryAfterSeconds('e')).toBe(10);
  });

  it('GRADLENS_AUTH_FAILURE_MAX=0 turns the limit off; the default is 20 per GRADLENS_RATE_LIMIT_WINDOW_MS', async () => {
    expect(loadConfig({}).security.authFailureMax).toBe(20);
    expect(loadConfig({ GRADLENS_AUTH_FAILURE_MAX: '0' }).security.authFailureMax).toBe(0);
    expect(() => loadConfig({ GRADLENS_AUTH_FAILURE_MAX: '-1' })).toThrow(/GRADLENS_AUTH_FAILURE_MAX/);
    const { app } = await loggedApp({ authFailureMax: 0 });
    try {
      for (let i = 0; i < 30; i++) expect((await app.inject({ url: '/v1/jobs', headers: bearer(`wrong-${i}-0123456789abcdef`) })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});

describe('error bodies', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    ({ app } = await loggedApp({ apiKeys: [] }));
  });
  afterAll(async () => {
    await app.close();
  });

  const MB3 = 'A'.repeat(3 * 1024 * 1024);
  const sweep = (grid: Record<string, unknown[]>) => app.inject({ method: 'POST', url: '/v1/sweeps', payload: { base: TEXTBOOK_CHAIN, grid } });

  it('quote at most a little of a 3 MB input, whichever field it is in', async () => {
    for (const res of [
      await sweep({ 'network.activation': [MB3] }),
      await sweep({ 'network.init.weights': [{ name: MB3 }] }),
      await sweep({ [`network.${MB3}`]: [1] }),
      await sweep({ 'network.activation': ['relu', MB3.slice(0, 1.5 * 1024 * 1024), MB3.slice(0, 1.5 * 1024 * 1024)] }),
    ]) {
      expect(res.statusCode).toBe(400);
      expect(res.body.length).toBeLessThan(2500);
      expect(res.json().message).toMatch(/characters/);
    }
  });
});
