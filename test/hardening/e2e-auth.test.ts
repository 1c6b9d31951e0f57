// The real server with API keys: 401/200 over HTTP, an EventSource-style stream with access_token, and logs without keys.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { json, startServer, stop, type Server } from '../support/server.js';
import { until } from '../support/until.js';

const KEY = 'e2e-secret-key-0123456789abcdef';

describe('API keys on the real server', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer({ GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: ':memory:', GRADLENS_API_KEYS: KEY, LOG_LEVEL: 'info' });
  }, 60_000);
  afterAll(async () => {
    await stop(server, 'SIGTERM');
  });

  it('401 without a key, 200 with it; probes open', async () => {
    const refused = await fetch(`${server.url}/v1/jobs`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="gradlens"');
    expect((await json(`${server.url}/v1/jobs`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });

  it('streams a job\'s events with ?access_token= (what EventSource sends), and never logs the key', async () => {
    const submitted = await json(`${server.url}/v1/analyses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, prefer: 'respond-async', 'x-request-id': 'trace-me-42' },
      body: JSON.stringify({ network: { depth: 3, width: 8 }, data: { source: 'moons', batchSize: 16 } }),
    });
    expect(submitted.status).toBe(202);
    const events = await fetch(`${server.url}/v1/jobs/${submitted.body.id}/events?access_token=${encodeURIComponent(KEY)}`);
    expect(events.status).toBe(200);
    const text = await events.text();
    expect(text).toMatch(/event: done/);
    expect((await fetch(`${server.url}/v1/jobs/${submitted.body.id}/events?access_token=wrong-wrong-wrong-wrong`)).status).toBe(401);
    // Request lines are logged at info; give the logger a moment to flush.
    await until(async () => server.output(), (out) => out.includes('access_token=[REDACTED]'), 5000);
    const out = server.output();
    expect(out).not.toContain(KEY);
    expect(out).toMatch(/"reqId":"trace-me-42"/);
  });
});
