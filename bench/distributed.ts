// npm run bench -- --distributed: throughput of the scaled-out mode on the real Redis and PostgreSQL.
//
//   npm run bench -- --distributed [--quick] [--name NAME]   (GRADLENS_BENCH_REDIS, GRADLENS_BENCH_POSTGRES or their defaults)
//
// Two deployments run side by side, each with its own queue prefix and schema, one API process (no compute) each:
// A with ONE `gradlens worker` process, B with TWO (every worker process has one compute thread). Samples alternate
// A, B, A, B, …: each submits the same sweep and waits for its table; the row reports the median of the per-pair
// ratios wall(A) / wall(B), with the workers' CPU time (user + system, all threads, from /proc) beside the wall.
// The queue's overhead per job: tiny analyses one at a time through deployment A against an embedded server (SQLite,
// in-process queue, one pool worker), alternated, median difference; and per sweep cell the same with a tiny sweep.
// Raw samples go to bench/results/<date>-<name>.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
const REDIS = process.env['GRADLENS_BENCH_REDIS'] ?? 'redis://127.0.0.1:6379';
const POSTGRES = process.env['GRADLENS_BENCH_POSTGRES'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const ONE_THREAD = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };

/** The measured sweep: 16 cells of about half a second each on one wasm thread (so that compute, not the path, dominates). */
const SWEEP = {
  base: { network: { depth: 10, width: 256 }, data: { source: 'moons', batchSize: 256, batches: 4 } },
  grid: { 'network.activation': ['relu', 'tanh', 'sigmoid', 'gelu'], 'network.depth': [8, 10, 12, 14] },
};
/** For the overhead: work that costs next to nothing, so what is measured is the path, not the compute. */
const TINY_ANALYSIS = { network: { depth: 2, width: 4 }, data: { source: 'moons', batchSize: 8 } };
const TINY_SWEEP = { base: TINY_ANALYSIS, grid: { 'network.activation': ['relu', 'tanh', 'sigmoid', 'gelu'], 'network.depth': [2, 3, 4, 5] } };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

interface Proc {
  child: ChildProcess;
  url?: string;
}

function spawnProc(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...ONE_THREAD, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.resume();
  child.stderr!.on('data', (d) => process.stderr.write(d));
  return child;
}

async function startApi(env: Record<string, string>): Promise<Proc> {
  const port = await freePort();
  const child = spawnProc([join(root, 'dist', 'src', 'server.js')], { ...env, PORT: String(port), HOST: '127.0.0.1' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${url}/ready`)).ok) return { child, url };
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become ready');
}

async function startWorker(env: Record<string, string>): Promise<Proc> {
  const child = spawnProc([join(root, 'dist', 'src', 'cli', 'gradlens.js'), 'worker'], { ...env, LOG_LEVEL: 'info', GRADLENS_WORKER_CONCURRENCY: '1' });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('gradlens worker ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited ${code}`)));
  });
  return { child };
}

/** user + system seconds of a process, all its threads (Linux /proc). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function post(url: string, path: string, body: unknown): Promise<string> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'respond-async' }, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/**
 * How the client learns that a job is done: 'events' reads the job's event stream (GET /v1/jobs/{id}/events, SSE)
 * to its done event, as the dashboard does, and costs the API one stream; 'poll' asks GET /v1/jobs/{id} every
 * pollMs. Both share the measured machine with the workers: at 10 ms, polling keeps the API process and this one
 * busy for a tenth of a core or more, which a deployment with one worker absorbs on its idle core and one with two
 * takes out of compute.
 */
export type WaitMode = { kind: 'events' } | { kind: 'poll'; pollMs: number };
let waitMode: WaitMode = { kind: 'events' };

async function waitByEvents(url: string, id: string): Promise<void> {
  const res = await fetch(`${url}/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
  if (!res.ok || !res.body) throw new Error(`GET /v1/jobs/${id}/events: ${res.status}`);
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    const m = /^event: (done|failed|canceled)$/m.exec(text);
    if (!m) continue;
    await res.body.cancel().catch(() => undefined);
    if (m[1] !== 'done') throw new Error(`job ${id} ${m[1]}`);
    return;
  }
  throw new Error(`the event stream of job ${id} ended before the job did`);
}

async function waitDone(url: string, id: string): Promise<{ status: string; result?: unknown }> {
  if (waitMode.kind === 'events') await waitByEvents(url, id);
  for (;;) {
    const job = (await (await fetch(`${url}/v1/jobs/${id}`)).json()) as { status: string; result?: unknown };
    if (job.status === 'succeeded') return job;
    if (job.status === 'failed' || job.status === 'canceled') throw new Error(`job ${id} ${job.status}`);
    await new Promise((r) => setTimeout(r, waitMode.kind === 'poll' ? waitMode.pollMs : 10));
  }
}

interface Sample {
  wallMs: number;
  workerCpuS: number;
}

async function sample(url: string, path: string, body: unknown, workers: Proc[]): Promise<Sample> {
  const cpu0 = workers.reduce((s, w) => s + cpuSeconds(w.child.pid!), 0);
  const t0 = performance.now();
  await waitDone(url, await post(url, path, body));
  const wallMs = performance.now() - t0;
  return { wallMs, workerCpuS: workers.reduce((s, w) => s + cpuSeconds(w.child.pid!), 0) - cpu0 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quartiles = (xs: number[]): [number, number] => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[Math.floor((s.length - 1) / 4)]!, s[Math.ceil((3 * (s.length - 1)) / 4)]!];
};

interface Deployment {
  prefix: string;
  schema: string;
  env: Record<string, string>;
  api: Proc;
  workers: Proc[];
}

async function deploy(workers: number): Promise<Deployment> {
  const prefix = `gradlens-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  const schema = `gradlens_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const env = {
    GRADLENS_QUEUE: REDIS, GRADLENS_STORE: POSTGRES, GRADLENS_STORE_SCHEMA: schema, GRADLENS_QUEUE_PREFIX: prefix, GRADLENS_BACKEND: 'wasm',
    GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0', GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0',
  };
  const api = await startApi({ ...env, GRADLENS_WORKERS: '0', GRADLENS_LOCAL_WORKERS: '0' });
  const ws: Proc[] = [];
  for (let i = 0; i < workers; i++) ws.push(await startWorker(env));
  return { prefix, schema, env, api, workers: ws };
}

async function undeploy(d: Deployment): Promise<void> {
  for (const p of [d.api, ...d.workers]) p.child.kill('SIGKILL');
  const redis = new Redis(REDIS);
  const keys = await redis.keys(`${d.prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  const client = new pg.Client({ connectionString: POSTGRES });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${d.schema}" CASCADE`);
  await client.end();
}

export async function runDistributedBench(options: { quick: boolean; name?: string; wait?: WaitMode }): Promise<void> {
  waitMode = options.wait ?? { kind: 'events' };
  const loadAtStart = loadavg();
  const pairs = options.quick ? 4 : 10;
  const overheadPairs = options.quick ? 10 : 30;
  const one = await deploy(1);
  const two = await deploy(2);
  const tmp = mkdtempSync(join(tmpdir(), 'gradlens-bench-'));
  const embedded = await startApi({ GRADLENS_BACKEND: 'wasm', GRADLENS_WORKERS: '1', GRADLENS_DB: join(tmp, 'jobs.db'), GRADLENS_RATE_LIMIT_MAX: '0', GRADLENS_RATE_LIMIT_CREATE_MAX: '0', GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0' });
  try {
    // Warm-up: each side compiles its kernels and fills its caches once.
    await sample(one.api.url!, '/v1/sweeps', SWEEP, one.workers);
    await sample(two.api.url!, '/v1/sweeps', SWEEP, two.workers);
    await sample(embedded.url!, '/v1/analyses', TINY_ANALYSIS, []);
    const throughput: { one: Sample; two: Sample }[] = [];
    for (let i = 0; i < pairs; i++) {
      const a = await sample(one.api.url!, '/v1/sweeps', SWEEP, one.workers);
      const b = await sample(two.api.url!, '/v1/sweeps', SWEEP, two.workers);
      throughput.push({ one: a, two: b });
      console.error(`sweep pair ${i + 1}/${pairs}: 1 worker ${a.wallMs.toFixed(0)} ms, 2 workers ${b.wallMs.toFixed(0)} ms`);
    }
    const overhead: { distributed: Sample; embedded: Sample }[] = [];
    for (let i = 0; i < overheadPairs; i++) {
      overhead.push({ distributed: await sample(one.api.url!, '/v1/analyses', TINY_ANALYSIS, one.workers), embedded: await sample(embedded.url!, '/v1/analyses', TINY_ANALYSIS, []) });
    }
    const cellOverhead: { distributed: Sample; embedded: Sample }[] = [];
    for (let i = 0; i < Math.ceil(overheadPairs / 3); i++) {
      cellOverhead.push({ distributed: await sample(one.api.url!, '/v1/sweeps', TINY_SWEEP, one.workers), embedded: await sample(embedded.url!, '/v1/sweeps', TINY_SWEEP, []) });
    }
    const ratios = throughput.map((p) => p.one.wallMs / p.two.wallMs);
    const summary = {
      sweep: { cells: 16, pairs, workerThreadsPerProcess: 1, clientWaits: waitMode },
      speedupTwoOverOne: { median: median(ratios), quartiles: quartiles(ratios) },
      oneWorker: { wallMsMedian: median(throughput.map((p) => p.one.wallMs)), workerCpuSMedian: median(throughput.map((p) => p.one.workerCpuS)) },
      twoWorkers: { wallMsMedian: median(throughput.map((p) => p.two.wallMs)), workerCpuSMedian: median(throughput.map((p) => p.two.workerCpuS)) },
      overheadPerJobMs: {
        median: median(overhead.map((p) => p.distributed.wallMs - p.embedded.wallMs)),
        distributedMedianMs: median(overhead.map((p) => p.distributed.wallMs)), embeddedMedianMs: median(overhead.map((p) => p.embedded.wallMs)),
      },
      overheadPerCellMs: {
        median: median(cellOverhead.map((p) => (p.distributed.wallMs - p.embedded.wallMs) / 16)),
        distributedSweepMedianMs: median(cellOverhead.map((p) => p.distributed.wallMs)), embeddedSweepMedianMs: median(cellOverhead.map((p) => p.embedded.wallMs)),
      },
    };
    const file = {
      kind: 'distributed-throughput',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, availableParallelism: availableParallelism(), model: cpus()[0]?.model, loadavgAtStart: loadAtStart },
      redis: REDIS.replace(/:[^:@/]*@/, ':***@'), postgres: POSTGRES.replace(/:[^:@/]*@/, ':***@'),
      workloads: { SWEEP, TINY_ANALYSIS, TINY_SWEEP },
      summary,
      samples: { throughput, overhead, cellOverhead },
      loadavgAtEnd: loadavg(),
    };
    const out = options.name ? join(root, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${options.name}.json`) : join(root, 'bench', 'results', 'latest-distributed.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`);
    console.log(`16-cell sweep, 1 vs 2 worker processes (1 compute thread each), ${pairs} alternating pairs; the client waits ${waitMode.kind === 'events' ? 'on the job\'s event stream' : `by polling every ${waitMode.pollMs} ms`}:`);
    console.log(`  1 worker:  median ${summary.oneWorker.wallMsMedian.toFixed(0)} ms wall, ${summary.oneWorker.workerCpuSMedian.toFixed(2)} s worker CPU`);
    console.log(`  2 workers: median ${summary.twoWorkers.wallMsMedian.toFixed(0)} ms wall, ${summary.twoWorkers.workerCpuSMedian.toFixed(2)} s worker CPU`);
    console.log(`  speed-up (median of per-pair ratios): ${summary.speedupTwoOverOne.median.toFixed(2)}× (quartiles ${summary.speedupTwoOverOne.quartiles.map((q) => q.toFixed(2)).join('–')})`);
    console.log(`queue overhead per job (tiny analysis, distributed − embedded, ${overheadPairs} pairs): ${summary.overheadPerJobMs.median.toFixed(1)} ms`);
    console.log(`queue overhead per sweep cell (tiny 16-cell sweep): ${summary.overheadPerCellMs.median.toFixed(1)} ms`);
    console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; raw samples: ${out}`);
  } finally {
    embedded.child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
    await undeploy(one);
    await undeploy(two);
  }
}
