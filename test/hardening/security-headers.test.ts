// Every answer carries the security headers, also those Fastify or Node write before any hook runs (raw HTTP to the real server).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect } from 'node:net';
import { startServer, stop, type Server } from '../support/server.js';
import { testApp, TEST_BACKEND } from '../support/app.js';
import { SECURITY_HEADERS } from '../../src/plugins/security-headers.js';

/** Sends raw bytes and returns the status line and headers of the answer. */
function raw(url: string, request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let text = '';
    socket.on('data', (d) => { text += d; });
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    setTimeout(() => socket.destroy(), 5000);
  });
}

const post = (contentType: string, body: string, extra = '') =>
  `POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Type: ${contentType}\r\n${extra}Connection: close\r\n\r\n${body}`;

describe('security headers on every answer of the real server', () => {
  let server: Server;
  let expected: Record<string, string>;
  beforeAll(async () => {
    server = await startServer({ GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1', GRADLENS_BODY_LIMIT: '8192' });
    // What helmet puts on an ordinary answer is the reference.
    const health = await fetch(`${server.url}/health`);
    expected = Object.fromEntries(Object.keys(SECURITY_HEADERS).map((name) => [name, health.headers.get(name) ?? '']));
  });
  afterAll(async () => {
    await stop(server, 'SIGTERM');
  });

  it('helmet sets the headers SECURITY_HEADERS lists', () => {
    expect(Object.keys(expected)).toEqual(expect.arrayContaining(['content-security-policy', 'x-content-type-options', 'x-frame-options', 'strict-transport-security', 'cross-origin-opener-policy']));
    expect(expected).toEqual(SECURITY_HEADERS);
  });

  const chunks = Array.from({ length: 6 }, () => `fa0\r\n${'x'.repeat(4000)}\r\n`).join('');
  const cases: [string, string, number][] = [
    ['invalid JSON', post('application/json', '{bad', 'Content-Length: 4\r\n'), 400],
    ['empty JSON body', post('application/json', '', 'Content-Length: 0\r\n'), 400],
    ['unsupported content type', post('application/xml', '<a/>', 'Content-Length: 4\r\n'), 415],
    ['chunked body over the limit', post('application/json', `${chunks}0\r\n\r\n`, 'Transfer-Encoding: chunked\r\n'), 413],
    ['declared body over the limit', post('application/json', '{}', 'Content-Length: 9000\r\n'), 413],
    ['malformed percent-encoding', 'GET /v1/jobs/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400],
    ['malformed request line', 'GARBAGE\r\n\r\n', 400],
    ['invalid header', 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: \x01\r\nConnection: close\r\n\r\n', 400],
    ['invalid Content-Length', post('application/json', '{}', 'Content-Length: abc\r\n'), 400],
    ['headers too large', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`, 431],
  ];
  for (const [name, request, status] of cases) {
    it(`${name}: ${status} with the security headers and a JSON body`, async () => {
      const res = await raw(server.url, request);
      expect(res.status).toBe(status);
      for (const [header, value] of Object.entries(expected)) expect(res.headers[header], header).toBe(value);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({ statusCode: status, code: expect.any(String), message: expect.any(String) });
    });
  }
});

describe('security headers when shedding load', () => {
  it('a 503 sent before helmet runs gets them too', async () => {
    // Any heap is over a 1-byte limit: every request is shed.
    const app = await testApp({ security: { maxHeapUsedBytes: 1, pressureSampleMs: 10, rateLimitMax: 0 } });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const res = await app.inject({ url: '/v1/jobs' });
      expect(res.statusCode).toBe(503);
      expect(res.json().code).toBe('OVERLOADED');
      for (const [header, value] of Object.entries(SECURITY_HEADERS)) expect(res.headers[header], header).toBe(value);
    } finally {
      await app.close();
    }
  });
});
