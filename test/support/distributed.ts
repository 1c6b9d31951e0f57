// Real processes of a scaled-out deployment for the distributed suites: API servers and `gradlens worker` processes
// from the sources (tsx), on the test Redis and PostgreSQL, with a key prefix and a schema of their own that
// cleanup() removes (BullMQ queue obliterated, Redis keys deleted, schema dropped).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { CLI_ARGS, startServer, type Server } from './server.js';
import { dropSchema, testSchema, TEST_POSTGRES, TEST_REDIS } from './stores.js';
import { QUEUE_NAME } from '../../src/jobs/distributed/bull-queue.js';

/** Whether the distributed suites can run here: both services named (CI sets both, see .ci/run). */
export const DISTRIBUTED = Boolean(TEST_REDIS && TEST_POSTGRES);

export interface Deployment {
  /** Environment shared by every process of this deployment. */
  env: Record<string, string>;
  prefix: string;
  schema: string;
  api(env?: Record<string, string>): Promise<Server>;
  worker(env?: Record<string, string>): Promise<WorkerProcess>;
  cleanup(): Promise<void>;
}

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** The JSON log lines so far. */
  lines(): Record<string, unknown>[];
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Small, fast settings: tiny lock so a killed worker's job is taken over in seconds; wasm everywhere. */
export function deployment(overrides: Record<string, string> = {}): Deployment {
  const prefix = `gradlens-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const schema = testSchema();
  const env: Record<string, string> = {
    GRADLENS_QUEUE: TEST_REDIS!,
    GRADLENS_STORE: TEST_POSTGRES!,
    GRADLENS_STORE_SCHEMA: schema,
    GRADLENS_QUEUE_PREFIX: prefix,
    GRADLENS_BACKEND: 'wasm',
    GRADLENS_WORKER_LOCK_MS: '3000',
    GRADLENS_JOB_BACKOFF_MS: '200',
    GRADLENS_RATE_LIMIT_MAX: '0',
    GRADLENS_RATE_LIMIT_CREATE_MAX: '0',
    GRADLENS_MAX_EVENT_LOOP_DELAY_MS: '0',
    GRADLENS_RETENTION_INTERVAL_MS: '3600000',
    ...overrides,
  };
  const servers: Server[] = [];
  const workers: WorkerProcess[] = [];
  return {
    env,
    prefix,
    schema,
    async api(extra = {}) {
      // No compute in the API: it only enqueues (GRADLENS_LOCAL_WORKERS=0), the main thread answers theory.
      const server = await startServer({ ...env, GRADLENS_WORKERS: '0', GRADLENS_LOCAL_WORKERS: '0', ...extra });
      servers.push(server);
      return server;
    },
    async worker(extra = {}) {
      const w = await startWorker({ ...env, ...extra });
      workers.push(w);
      return w;
    },
    async cleanup() {
      await Promise.all([...workers.map((w) => w.kill('SIGKILL')), ...servers.map(async (s) => {
        if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
        await s.exited;
      })]);
      const connection = new Redis(TEST_REDIS!, { maxRetriesPerRequest: null });
      const queue = new Queue(QUEUE_NAME, { connection, prefix });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      for (;;) {
        const keys = await connection.keys(`${prefix}:*`);
        if (keys.length === 0) break;
        await connection.del(...keys);
      }
      connection.disconnect();
      await dropSchema(TEST_POSTGRES!, schema);
    },
  };
}

/** Starts `gradlens worker` from the sources and waits for its "ready" log line. */
export async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [...CLI_ARGS, 'worker'], {
    env: { ...process.env, LOG_LEVEL: 'info', GRADLENS_WORKER_CONCURRENCY: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  // 'close', not 'exit': by then all it wrote has been read.
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
  const lines = (): Record<string, unknown>[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  // Generous: three processes starting from the sources at once on a loaded 2-core runner took over 60 s.
  const deadline = Date.now() + 120_000;
  while (!lines().some((l) => l.msg === 'gradlens worker ready')) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker exited (${child.exitCode ?? child.signalCode}): ${stdout}${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`worker not ready within 120 s: ${stdout}${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    pid: child.pid!,
    lines,
    exited,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls GET /v1/jobs/{id} until the job has finished; the job. */
export async function finished(url: string, id: string, timeoutMs = 90_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await (await fetch(`${url}/v1/jobs/${id}`)).json() as { status: string };
    if (['succeeded', 'failed', 'canceled'].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
