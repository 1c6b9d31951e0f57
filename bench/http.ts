// A real listening gradlens server inside the benchmark process, and a keep-alive JSON client for it.
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { BackendChoice } from '../src/engine/index.js';

export interface Server {
  app: FastifyInstance;
  base: string;
  workers: number;
  close(): Promise<void>;
}

/**
 * buildApp + listen on port 0, as src/server.ts does, in the default configuration (issue 11): jobs in a
 * SQLite file (WAL), info-level JSON logging (one line per request, written to /dev/null), the given worker
 * pool size (0 would compute on the event loop, which is not what a deployment does).
 */
export async function startServer(backend: BackendChoice, workers: number): Promise<Server> {
  // No rate limits or load shedding: the benchmark is the only client and sends thousands of requests.
  // The training workload (200 steps plus records and evaluation) is estimated above the default
  // 2e10-FLOP budget of one job.
  const env = {
    ...process.env, GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0', GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0',
    GRADLENS_MAX_ANALYSIS_FLOPS: '1000000000000',
  };
  const dir = mkdtempSync(join(tmpdir(), 'gradlens-bench-'));
  const config = loadConfig(env, {
    backend,
    host: '127.0.0.1',
    port: 0,
    jobs: { workers, db: join(dir, 'gradlens.db') },
  });
  const devNull = openSync('/dev/null', 'w');
  const app = await buildApp(config, { logStream: { write: (line: string) => void writeSync(devNull, line) } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { app, base: `http://127.0.0.1:${port}`, workers, close };
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  body: unknown;
}

/** One request; node:http with a keep-alive agent adds ~0.1 ms, fetch ~0.5 ms to a sub-millisecond floor. */
export function call(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, {
      method,
      agent,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text.length > 0 ? JSON.parse(text) : null;
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export async function postJson(base: string, path: string, body: unknown, expect = 200): Promise<Record<string, unknown>> {
  const r = await call(base, 'POST', path, body);
  if (r.status !== expect) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`);
  return r.body as Record<string, unknown>;
}

/** Polls an asynchronous job until it is terminal; returns it. */
export async function waitForJob(base: string, id: string, pollMs = 5): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await call(base, 'GET', `/v1/jobs/${id}`);
    const job = r.body as Record<string, unknown>;
    const status = job['status'];
    if (status === 'succeeded') return job;
    if (status === 'failed' || status === 'canceled') throw new Error(`job ${id} ${String(status)}: ${JSON.stringify(job['error'])}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
