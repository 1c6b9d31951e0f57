// The log: one line per request, and a server's stdout that is JSON lines only (no tfjs banner, no plain text).
import { describe, it, expect } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { startServer, stop } from '../support/server.js';
import { TEST_BACKEND } from '../support/app.js';
import { TEXTBOOK_CHAIN } from '../support/textbook-chain.js';

const BANNER = /install our node backend|Hi, looks like you are running TensorFlow\.js/;

describe('request logging', () => {
  it('logs each request once at info level, with method, url, status and time', async () => {
    const lines: string[] = [];
    const config = loadConfig({ LOG_LEVEL: 'info' }, { backend: TEST_BACKEND, jobs: { workers: 0, db: ':memory:' }, security: { rateLimitMax: 0 } });
    const app = await buildApp(config, { logStream: { write: (line) => { lines.push(line); } } });
    await app.ready();
    try {
      lines.length = 0;
      const requests = [
        { url: '/health' },
        { url: '/v1/jobs?limit=3' },
        { url: '/v1/nope' },
        { method: 'POST' as const, url: '/v1/analyses', payload: TEXTBOOK_CHAIN },
        { method: 'POST' as const, url: '/v1/analyses', payload: '{bad', headers: { 'content-type': 'application/json' } },
      ];
      for (const r of requests) await app.inject(r);
      const entries = lines.map((l) => JSON.parse(l));
      const completed = entries.filter((e) => e.msg === 'request completed');
      expect(entries.filter((e) => e.msg === 'incoming request')).toEqual([]);
      expect(completed.map((e) => `${e.req.method} ${e.req.url} ${e.res.statusCode}`)).toEqual([
        'GET /health 200', 'GET /v1/jobs?limit=3 200', 'GET /v1/nope 404', 'POST /v1/analyses 200', 'POST /v1/analyses 400',
      ]);
      for (const e of completed) {
        expect(e.level).toBe(30);
        expect(typeof e.reqId).toBe('string');
        expect(e.responseTime).toBeGreaterThanOrEqual(0);
      }
      // Every request is one line: nothing else at info level per request.
      expect(entries.filter((e) => e.level === 30)).toHaveLength(requests.length);
    } finally {
      await app.close();
    }
  });
});

describe("the real server's stdout", () => {
  for (const workers of ['1', '0']) {
    it(`is JSON lines only, without the tfjs banner, with ${workers === '0' ? 'compute on the main thread' : 'a compute worker'}`, async () => {
      const server = await startServer({ GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: workers, LOG_LEVEL: 'info' });
      try {
        // Tensors are written on the compute thread: that is when tfjs's cpu backend would print its banner.
        const analysis = await fetch(`${server.url}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(TEXTBOOK_CHAIN) });
        expect(analysis.status).toBe(200);
        expect((await fetch(`${server.url}/v1/theory?activation=tanh&sigmaW2=1`)).status).toBe(200);
        expect((await fetch(`${server.url}/health`)).status).toBe(200);
      } finally {
        await stop(server, 'SIGTERM');
      }
      const lines = server.stdout().split('\n').filter((l) => l !== '');
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
      expect(server.output()).not.toMatch(BANNER);
      // The readiness polls of startServer and the three requests above, one line each.
      const completed = lines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'request completed');
      expect(completed.filter((e) => e.req.url !== '/ready').map((e) => e.req.url)).toEqual(['/v1/analyses', '/v1/theory?activation=tanh&sigmaW2=1', '/health']);
    });
  }
});
