// Where the time of one synchronous MNIST analysis over HTTP goes, hop by hop (issue 11), with the server in its
// default configuration: SQLite file store, info-level JSON logging (to /dev/null), default FLOP limits, one worker.
//
//   npm run build && node dist/bench/hops.js [--backend native] [--runs 60] [--warmup 40] [--name before]
//
// Writes bench/results/<date>-hops-<name>.json (every request's hops) and prints the medians. Timestamps are
// performance.timeOrigin + performance.now() on each thread (comparable across threads); the worker side comes
// from bench/hops-worker.ts, the real worker with its message times reported; the store is the real
// SqliteJobStore behind a timing proxy; the HTTP phases come from Fastify hooks. Rate limits are off (the
// benchmark sends hundreds of requests a minute); every other setting is the default.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Worker } from 'node:worker_threads';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { BackendChoice } from '../src/engine/index.js';
import { WorkerPool } from '../src/jobs/pool.js';
import { SqliteJobStore, type JobStore } from '../src/jobs/store.js';
import { call } from './http.js';
import { mnistAnalysisSpec } from './workloads.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 && args[at + 1] ? args[at + 1]! : fallback;
};
const backend = flag('backend', 'native') as BackendChoice;
const runs = Number(flag('runs', '60'));
const warmup = Number(flag('warmup', '40'));
const name = flag('name', 'latest');

const clock = (): number => performance.timeOrigin + performance.now();

/** The marks of the request in flight (the benchmark sends one at a time). */
let marks: Record<string, number> = {};
const mark = (key: string): void => { marks[key] = clock(); };

function timedStore(store: JobStore): JobStore {
  const timed = new Set(['create', 'start', 'finish']);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (typeof prop !== 'string' || !timed.has(prop)) return fn;
      return async (...a: unknown[]) => {
        mark(`${prop}:in`);
        const out = await fn(...a);
        mark(`${prop}:out`);
        return out;
      };
    },
  });
}

/** Watches the pool's worker threads: when a task is posted, when its reply arrives, the worker's own marks. */
function watchWorkers(pool: WorkerPool): void {
  const slots = (pool as unknown as { slots: Set<{ worker: Worker }> }).slots;
  for (const { worker } of slots) {
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (msg: unknown) => {
      mark('post:in');
      post(msg);
      mark('post:out');
    };
    // prependListener: before the pool's own handler settles the task.
    worker.prependListener('message', (msg: { type: string; receivedAt?: number; sentAt?: number }) => {
      if (msg.type === 'done' || msg.type === 'error') mark('reply:in');
      if (msg.type === 'hops') Object.assign(marks, { 'worker:in': msg.receivedAt!, 'worker:out': msg.sentAt! });
    });
  }
}

const HOPS: [string, string, string][] = [
  ['client → route entry (socket, HTTP parse, onRequest hooks)', 'client:send', 'onRequest'],
  ['onRequest → preValidation (protection, auth, body JSON.parse)', 'onRequest', 'preValidation'],
  ['schema validation (Ajv)', 'preValidation', 'preHandler'],
  ['admission: normalise + datasets + cost check (route + prepare)', 'preHandler', 'create:in'],
  ['store.create', 'create:in', 'create:out'],
  ['enqueue → dispatch (queue, pump)', 'create:out', 'start:in'],
  ['store.start', 'start:in', 'start:out'],
  ['runner → postMessage to worker (incl. clone)', 'start:out', 'post:out'],
  ['message latency to worker', 'post:out', 'worker:in'],
  ['worker: whole task (engine totalMs inside)', 'worker:in', 'worker:out'],
  ['result message back (clone + latency)', 'worker:out', 'reply:in'],
  ['reply → store.finish (environment, checks)', 'reply:in', 'finish:in'],
  ['store.finish (encoding, UPDATE, any read back)', 'finish:in', 'finish:out'],
  ['finish → onSend (emit, wait, job view, reply encoding)', 'finish:out', 'onSend'],
  ['  of which the reply serializer (absent for a pre-encoded body)', 'preSerialization', 'onSend'],
  ['onSend → onResponse (headers, write)', 'onSend', 'onResponse'],
  ['onResponse → client has the body', 'onResponse', 'client:end'],
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gradlens-hops-'));
  const devNull = openSync('/dev/null', 'w');
  const env = { ...process.env, GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0' };
  const config = loadConfig(env, { backend, host: '127.0.0.1', port: 0, jobs: { workers: 1, db: join(dir, 'gradlens.db') } });
  const pool = new WorkerPool({ size: 1, backend, limits: config.limits, workerUrl: new URL('./hops-worker.js', import.meta.url) });
  const store = timedStore(new SqliteJobStore(config.jobs.db));
  const app = await buildApp(config, { runner: pool, store, logStream: { write: (line: string) => void writeSync(devNull, line) } });
  for (const hook of ['onRequest', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse'] as const) {
    app.addHook(hook, async () => mark(hook));
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  watchWorkers(pool);
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const samples: { hops: Record<string, number>; timings: Record<string, number>; bytes: number; totalMs: number }[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    marks = {};
    mark('client:send');
    const r = await call(base, 'POST', '/v1/analyses', mnistAnalysisSpec(i + 1));
    mark('client:end');
    if (r.status !== 200) throw new Error(`POST /v1/analyses: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    if (i < warmup) continue;
    const body = r.body as { timings: Record<string, number> };
    const hops: Record<string, number> = {};
    // preSerialization runs only for an object payload: a pre-encoded body skips the serializer (0 ms).
    for (const [label, from, to] of HOPS) hops[label] = marks[from] === undefined && from === 'preSerialization' ? 0 : marks[to]! - marks[from]!;
    samples.push({ hops, timings: body.timings, bytes: Buffer.byteLength(JSON.stringify(r.body)), totalMs: marks['client:end']! - marks['client:send']! });
  }
  await app.close();
  closeSync(devNull);
  rmSync(dir, { recursive: true, force: true });

  const med = (f: (s: (typeof samples)[number]) => number): number => median(samples.map(f));
  const table: [string, number][] = Object.keys(samples[0]!.hops).map((k) => [k, med((s) => s.hops[k]!)]);
  for (const k of Object.keys(samples[0]!.timings)) table.push([`  engine timings.${k}`, med((s) => s.timings[k]!)]);
  table.push(['worker task outside engine totalMs', med((s) => s.hops['worker: whole task (engine totalMs inside)']! - s.timings.totalMs!)]);
  table.push(['whole request (client)', med((s) => s.totalMs)]);
  table.push(['outside the worker task (client total − worker task)', med((s) => s.totalMs - s.hops['worker: whole task (engine totalMs inside)']!)]);
  const date = new Date().toISOString().slice(0, 10);
  const out = join('bench', 'results', `${date}-hops-${name}.json`);
  writeFileSync(out, `${JSON.stringify({
    command: `node dist/bench/hops.js ${args.join(' ')}`.trim(), date: new Date().toISOString(), backend, runs, warmup,
    node: process.version, replyBytes: med((s) => s.bytes),
    medians: Object.fromEntries(table.map(([k, v]) => [k.trim(), Number(v.toFixed(3))])),
    samples: samples.map((s) => ({ totalMs: s.totalMs, ...s.hops, ...Object.fromEntries(Object.entries(s.timings).map(([k, v]) => [`timings.${k}`, v])) })),
  }, null, 1)}\n`);
  console.log(`median of ${runs} sequential requests (after ${warmup} warm-up), ${backend}, reply ${med((s) => s.bytes)} bytes -> ${out}`);
  for (const [k, v] of table) console.log(`${v.toFixed(2).padStart(8)} ms  ${k}`);
  process.exit(0);
}

await main();
