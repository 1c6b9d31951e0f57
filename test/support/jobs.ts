// Helpers for job tests: apps with a worker pool on a real SQLite file, specs of known duration, an SSE reader.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildOptions } from '../../src/app.js';
import { loadConfig, type ConfigOverrides } from '../../src/config.js';
import { DEFAULT_LIMITS, type SpecLimits } from '../../src/engine/spec/normalize.js';
import { TEST_API_MODE, distributedJobs } from './api-mode.js';

/** Limits high enough for the deliberately endless work below (tests cancel or interrupt it). */
export const TEST_LIMITS: SpecLimits = { ...DEFAULT_LIMITS, maxAnalysisFlops: 1e15, maxAsyncAnalysisFlops: 1e15, maxTrainingFlops: 1e15, maxSweepFlops: 1e15 };

/** A fresh directory for database files; remove() deletes it with everything in it. */
export function tempDir(): { dir: string; db: (name?: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'gradlens-jobs-'));
  return { dir, db: (name = 'jobs.db') => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const QUIET_ENV = { GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0', GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0' };

/** An app whose compute runs on worker threads (src/jobs/worker.ts, from the sources through tsx) with the wasm backend. */
export async function poolApp(db: string, overrides: ConfigOverrides = {}, options: BuildOptions = {}): Promise<FastifyInstance> {
  // Rate limits and load shedding (plugins/protection.ts) are tested on their own; polling tests must not trip them.
  const config = loadConfig(QUIET_ENV, {
    backend: 'wasm',
    logLevel: 'silent',
    ...overrides,
    limits: { ...TEST_LIMITS, ...overrides.limits },
    jobs: { workers: 2, db, ...overrides.jobs },
  });
  const scaled = TEST_API_MODE === 'distributed' ? distributedJobs(config.jobs, Math.max(1, config.jobs.workers)) : undefined;
  const app = await buildApp(scaled ? { ...config, jobs: scaled.jobs } : config, { logger: false, ...options });
  if (scaled) app.addHook('onClose', scaled.cleanup);
  await app.ready();
  return app;
}

/** A small analysis: tens of milliseconds. */
export const SMALL_ANALYSIS = { network: { depth: 3, width: 8 }, data: { source: 'moons', batchSize: 16 } } as const;

/** A training of minutes (needs TEST_LIMITS; the tests cancel or interrupt it), a record about every half second. */
export const ENDLESS_TRAINING = {
  network: { depth: 6, width: 64 },
  data: { source: 'moons', batchSize: 64 },
  steps: 100_000,
  recordEvery: 200,
} as const;

/** An analysis of minutes (needs TEST_LIMITS). */
export const ENDLESS_ANALYSIS = { network: { depth: 30, width: 512 }, data: { source: 'moons', batchSize: 1024, batches: 64 } } as const;

/** A short training: a fraction of a second with wasm, 5 records. */
export const SHORT_TRAINING = {
  network: { depth: 3, width: 16 },
  data: { source: 'moons', batchSize: 32 },
  steps: 40,
  recordEvery: 10,
} as const;

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

/** Reads a text/event-stream body event by event until it ends. */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line.startsWith('retry:')) continue;
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const val = line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'id') id = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length) yield { id, event, data: JSON.parse(data.join('\n')) };
    }
  }
}

export async function getJob(app: FastifyInstance, id: string): Promise<any> {
  return (await app.inject({ url: `/v1/jobs/${id}` })).json();
}
