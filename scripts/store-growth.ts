// Measures how much the job database grows per stored job, and what retention gives back: `npx tsx scripts/store-growth.ts [jobs]`.
// Each workload runs through the real HTTP routes (app.inject) into a fresh SQLite file; sizes are the database
// file plus its write-ahead log after a full checkpoint, so they are what `ls -l` shows at rest.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { SqliteJobStore } from '../src/jobs/store.js';

const jobs = Number(process.argv[2] ?? 200);
const backend = (process.env.GRADLENS_BACKEND ?? 'wasm') as 'wasm';

const TEXTBOOK_CHAIN = {
  seed: 42,
  network: { depth: 20, width: 1, activation: 'sigmoid', outputActivation: 'sigmoid', useBias: false, init: { weights: { name: 'constant', value: 0.17 } } },
  data: { source: 'inline', x: [[1]] },
  loss: 'output',
};

/** What the user ran ~5 800 of, and two heavier kinds; `share` scales the count (trainings are slower). */
const WORKLOADS: { label: string; url: string; body: object; share: number }[] = [
  { label: 'analysis: README example (20 × 1 sigmoid chain)', url: '/v1/analyses', body: TEXTBOOK_CHAIN, share: 1 },
  { label: 'analysis: moons, depth 3, width 8', url: '/v1/analyses', body: { network: { depth: 3, width: 8 }, data: { source: 'moons', batchSize: 16 } }, share: 1 },
  { label: 'training: moons, depth 6, width 48, 800 steps, 9 records', url: '/v1/trainings', body: { network: { depth: 6, width: 48 }, data: { source: 'moons', batchSize: 32 }, steps: 800, recordEvery: 100 }, share: 0.1 },
  { label: 'sweep: 4 cells (activation × init) of the moons analysis', url: '/v1/sweeps', body: { base: { network: { depth: 3, width: 8 }, data: { source: 'moons', batchSize: 16 } }, grid: { 'network.activation': ['relu', 'tanh'], 'network.init.weights': ['he_normal', 'glorot_normal'] } }, share: 0.2 },
];

const onDisk = (db: string): number => statSync(db).size + (statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0);

async function settle(app: FastifyInstance, id: string): Promise<void> {
  for (;;) {
    const { status } = (await app.inject({ url: `/v1/jobs/${id}` })).json() as { status: string };
    if (status === 'succeeded') return;
    if (status === 'failed' || status === 'canceled') throw new Error(`job ${id} ${status}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function measure(workload: (typeof WORKLOADS)[number], n: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gradlens-growth-'));
  const db = join(dir, 'jobs.db');
  try {
    const config = loadConfig({}, {
      backend, logLevel: 'silent',
      jobs: { workers: 0, db, retention: { maxAgeMs: 0, maxJobs: 0, maxBytes: 0, intervalMs: 86_400_000 } },
      security: { rateLimitMax: 0, rateLimitCreateMax: 0, maxEventLoopDelayMs: 0 },
    });
    const app = await buildApp(config, { logger: false });
    const store = new SqliteJobStore(db, { identityCheckMs: 0 });
    const checkpoint = () => store.db.pragma('wal_checkpoint(TRUNCATE)');
    checkpoint();
    const empty = onDisk(db);
    for (let i = 0; i < n; i++) {
      const res = await app.inject({ method: 'POST', url: workload.url, payload: workload.body, headers: { prefer: 'respond-async' } });
      if (res.statusCode !== 202) throw new Error(`${workload.url}: ${res.statusCode} ${res.body}`);
      await settle(app, res.json().id);
    }
    checkpoint();
    const full = onDisk(db);
    const { dataBytes } = await store.stats();
    // Retention down to a tenth, as the periodic pass would do it.
    const keep = Math.max(1, Math.floor(n / 10));
    const pruned = await store.prune({ maxAgeMs: 0, maxJobs: keep, maxBytes: 0 });
    const after = onDisk(db);
    await store.close();
    await app.close();
    const perJob = (full - empty) / n;
    return `| ${workload.label} | ${n} | ${(perJob / 1024).toFixed(1)} KiB | ${(dataBytes / n / 1024).toFixed(1)} KiB | ${(full / 1e6).toFixed(2)} MB | ${pruned.deleted.count} → ${keep} kept: ${(after / 1e6).toFixed(2)} MB |`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`Job database growth per stored job: \`npx tsx scripts/store-growth.ts ${jobs}\` (${backend} backend; database file + WAL after a full checkpoint; retention off while filling).`);
  console.log('');
  console.log('| workload | jobs | file growth per job | job data per job (GRADLENS_RETENTION_MAX_BYTES counts this) | file after all | retention to a tenth |');
  console.log('|---|---|---|---|---|---|');
  for (const w of WORKLOADS) console.log(await measure(w, Math.max(5, Math.round(jobs * w.share))));
}

await main();
