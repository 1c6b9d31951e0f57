// API keys (header, access_token, open paths, constant-time check), their configuration, and log redaction.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { keyChecker, pathMatcher, redactUrl, serializeRequest } from '../../src/plugins/auth.js';

const KEY = 'test-key-0123456789abcdef';
const OTHER = 'other-key-9876543210fedcba';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('with API keys configured', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await testApp({ security: { apiKeys: [KEY, OTHER], rateLimitMax: 0 } });
  });
  afterAll(async () => {
    await app.close();
  });

  it('refuses /v1 without a key: 401, WWW-Authenticate: Bearer, a JSON body naming the header', async () => {
    for (const [method, url] of [['GET', '/v1/jobs'], ['POST', '/v1/analyses'], ['GET', '/v1/jobs/x'], ['DELETE', '/v1/jobs/x'], ['POST', '/v1/trainings'], ['POST', '/v1/sweeps']] as const) {
      const res = await app.inject({ method, url, ...(method === 'POST' ? { payload: TEXTBOOK_CHAIN } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="gradlens"');
      expect(res.json()).toMatchObject({ statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized' });
      expect(res.json().message).toMatch(/Authorization: Bearer/);
      expect(res.headers['x-request-id']).toBeTruthy();
    }
  });

  it('refuses a wrong key with error="invalid_token", and malformed schemes as missing', async () => {
    const wrong = await app.inject({ url: '/v1/jobs', headers: bearer('not-the-key-0123456789') });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('INVALID_API_KEY');
    expect(wrong.headers['www-authenticate']).toMatch(/^Bearer realm="gradlens", error="invalid_token"/);
    // A prefix, a suffix, another case, an empty key: all wrong.
    for (const key of [KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase(), ' ']) {
      expect((await app.inject({ url: '/v1/jobs', headers: bearer(key) })).statusCode).toBe(401);
    }
    for (const authorization of [`Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`, KEY, 'Bearer', `Token ${KEY}`]) {
      const res = await app.inject({ url: '/v1/jobs', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
    }
  });

  it('accepts either configured key, any case of the scheme', async () => {
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(KEY) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/jobs', headers: { authorization: `bearer ${OTHER}` } })).statusCode).toBe(200);
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', headers: bearer(KEY), payload: TEXTBOOK_CHAIN });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('succeeded');
  });

  it('accepts ?access_token= on GET (EventSource), removed before strict query validation; never on POST', async () => {
    const list = await app.inject({ url: `/v1/jobs?limit=5&access_token=${encodeURIComponent(KEY)}` });
    expect(list.statusCode).toBe(200);
    const { jobs } = list.json();
    expect(jobs.length).toBeGreaterThan(0);
    const job = await app.inject({ url: `/v1/jobs/${jobs[0].id}?access_token=${KEY}` });
    expect(job.statusCode).toBe(200);
    // The event stream of a finished job: state, done, end.
    const events = await app.inject({ url: `/v1/jobs/${jobs[0].id}/events?access_token=${KEY}` });
    expect(events.statusCode).toBe(200);
    expect(events.headers['content-type']).toMatch(/text\/event-stream/);
    expect(events.body).toMatch(/event: done/);
    const wrong = await app.inject({ url: `/v1/jobs?access_token=nope-nope-nope-nope` });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().message).toMatch(/access_token/);
    const post = await app.inject({ method: 'POST', url: `/v1/analyses?access_token=${KEY}`, payload: TEXTBOOK_CHAIN });
    expect(post.statusCode).toBe(401);
  });

  it('keeps probes, metrics, docs, the OpenAPI document and the dashboard open', async () => {
    for (const url of ['/health', '/ready', '/metrics', '/openapi.json', '/docs', '/docs/', '/docs/static/swagger-ui.css', '/docs/json', '/']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBeLessThan(400);
    }
  });

  it('answers CORS-free preflights without asking for a key', async () => {
    const res = await app.inject({ method: 'OPTIONS', url: '/v1/jobs' });
    expect(res.statusCode).not.toBe(401);
  });

  it('asks for a key on unknown paths too, so they reveal nothing', async () => {
    expect((await app.inject({ url: '/v1/nope' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/nope', headers: bearer(KEY) })).statusCode).toBe(404);
  });

  it('decides on the matched route, so encoded or dotted paths cannot pass as open ones', async () => {
    const urls = ['/health/../v1/jobs', '/docs/..%2F..%2Fv1/jobs', '/%2e%2e/v1/jobs', '/v1/jobs/..%2f..%2fhealth', '/docs%2f../v1/jobs',
      '/docs/static/../../v1/jobs', '/v1%2fjobs', '/V1/jobs', '/v1/jobs/', '//v1/jobs'];
    for (const url of urls) {
      const res = await app.inject({ url });
      // Either the key is required or nothing matched; never the job list.
      expect([401, 404], url).toContain(res.statusCode);
      expect(res.body).not.toMatch(/"jobs"/);
    }
  });

  it('counts refusals in /metrics', async () => {
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/gradlens_auth_refused_total\{reason="missing"\} [1-9]/);
    expect(text).toMatch(/gradlens_auth_refused_total\{reason="invalid"\} [1-9]/);
  });
});

describe('without API keys', () => {
  it('serves /v1 to anyone, and still tolerates (and drops) an access_token', async () => {
    const app = await testApp({ security: { rateLimitMax: 0 } });
    try {
      expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/v1/jobs?access_token=whatever' })).statusCode).toBe(200);
      expect((await app.inject({ url: '/v1/jobs', headers: bearer('anything-at-all-here') })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('open paths are configurable', () => {
  it('GRADLENS_OPEN_PATHS without /metrics protects it', async () => {
    const app = await testApp({ security: { apiKeys: [KEY], openPaths: ['/health', '/ready'], rateLimitMax: 0 } });
    try {
      expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/metrics', headers: bearer(KEY) })).statusCode).toBe(200);
      expect((await app.inject({ url: '/docs/' })).statusCode).toBe(401);
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('matches globs on route patterns: * within a segment, ** across', () => {
    const open = pathMatcher(['/health', '/docs/**', '/*.js', '/']);
    expect(open('/health')).toBe(true);
    expect(open('/health/x')).toBe(false);
    expect(open('/docs/static/*')).toBe(true);
    expect(open('/app.js')).toBe(true);
    expect(open('/v1/app.js')).toBe(false);
    expect(open('/')).toBe(true);
    expect(open('/v1/jobs')).toBe(false);
  });
});

describe('the key check', () => {
  it('finds the matching key whatever its position, and nothing else', () => {
    const checker = keyChecker(['a'.repeat(16), 'b'.repeat(16), 'c'.repeat(16)]);
    expect(checker.check('b'.repeat(16))).toMatch(/^[0-9a-f]{12}$/);
    expect(checker.check('c'.repeat(16))).not.toBe(checker.check('b'.repeat(16)));
    expect(checker.check('b'.repeat(15))).toBeNull();
    expect(checker.check('')).toBeNull();
    expect(checker.check('x'.repeat(10_000))).toBeNull();
  });
});

describe('key configuration', () => {
  it('reads GRADLENS_API_KEYS (comma-separated) and GRADLENS_API_KEYS_FILE (one per line, # comments)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradlens-keys-'));
    try {
      const file = join(dir, 'keys');
      writeFileSync(file, `# team keys\n${OTHER}\n\n  ${'f'.repeat(20)}  \n`);
      const config = loadConfig({ GRADLENS_API_KEYS: ` ${KEY} ,${OTHER}`, GRADLENS_API_KEYS_FILE: file });
      expect(config.security.apiKeys).toEqual([KEY, OTHER, 'f'.repeat(20)]);
      expect(() => loadConfig({ GRADLENS_API_KEYS_FILE: join(dir, 'missing') })).toThrow(/GRADLENS_API_KEYS_FILE: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses short keys and keys with spaces, without echoing them', () => {
    expect(() => loadConfig({ GRADLENS_API_KEYS: 'short' })).toThrow(ConfigError);
    try {
      loadConfig({ GRADLENS_API_KEYS: 'secret but has spaces in it' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/16 to 256 visible ASCII/);
      expect((err as Error).message).not.toMatch(/secret/);
    }
  });

  it('has the documented defaults', () => {
    const s = loadConfig({}).security;
    expect(s.apiKeys).toEqual([]);
    expect(s.openPaths).toEqual(expect.arrayContaining(['/health', '/ready', '/metrics', '/docs', '/docs/**', '/openapi.json', '/']));
    expect(s.corsOrigins).toEqual([]);
    expect(s.rateLimitMax).toBe(600);
    expect(s.rateLimitCreateMax).toBe(60);
    expect(s.rateLimitWindowMs).toBe(60_000);
    expect(s.trustProxy).toBe(false);
    expect(loadConfig({ GRADLENS_TRUST_PROXY: '2' }).security.trustProxy).toBe(2);
    expect(loadConfig({ GRADLENS_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).security.trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ GRADLENS_RATE_LIMIT_MAX: '-1' })).toThrow(/GRADLENS_RATE_LIMIT_MAX/);
    expect(() => loadConfig({ GRADLENS_MAX_EVENT_LOOP_UTILIZATION: '1.5' })).toThrow(/GRADLENS_MAX_EVENT_LOOP_UTILIZATION/);
  });
});

describe('log redaction', () => {
  it('removes access_token from logged urls, wherever it is in the query', () => {
    expect(redactUrl(`/v1/jobs/1/events?access_token=${KEY}`)).toBe('/v1/jobs/1/events?access_token=[REDACTED]');
    expect(redactUrl(`/v1/jobs?limit=2&ACCESS_TOKEN=${KEY}&kind=sweep`)).toBe('/v1/jobs?limit=2&ACCESS_TOKEN=[REDACTED]&kind=sweep');
    expect(redactUrl('/v1/jobs?xaccess_token=1')).toBe('/v1/jobs?xaccess_token=1');
    expect(redactUrl('/health')).toBe('/health');
    const logged = serializeRequest({ method: 'GET', url: `/x?access_token=${KEY}`, host: 'h', ip: '1.2.3.4', socket: { remotePort: 5 } } as never);
    expect(JSON.stringify(logged)).not.toContain(KEY);
    expect(logged).toMatchObject({ method: 'GET', host: 'h', remoteAddress: '1.2.3.4', remotePort: 5 });
  });
});
