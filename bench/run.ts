// npm run bench: the fixed workloads of issue 5 on each requested backend (one process per workload) against PyTorch, as a table and JSON.
//
//   npm run bench                                     native and wasm, every workload, PyTorch if installed
//   npm run bench -- --backend native,wasm,cpu        backends to compare (each in its own processes; also native-wasm)
//   npm run bench -- --only W2,MNIST                  some workloads: W1 W2 W2stats W3 W3stats MNIST MNISTx SWEEP TRAIN
//   npm run bench -- --workers 2 --quick --no-torch   pool size for the HTTP workloads; shorter runs; skip PyTorch
//   npm run bench -- --split 2e9                      split analyses of >= 2 GFLOP across idle workers (GRADLENS_SHARD_MIN_FLOPS)
//   npm run bench -- --out bench/results/x.json       where the JSON goes (default bench/results/latest.json)
//
// See bench/README.md for what each workload measures and how the PyTorch side is made comparable.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKLOADS, WORKLOAD_INFO, MNIST_BIG_BATCH, mnistAnalysisSpec, sweepSpec, trainingSpec, W2, W3, SWEEP_ACTIVATIONS, SWEEP_INITS, type WorkloadName } from './workloads.js';
import { cpuMs, measure, planFor, quantile, type Timing } from './measure.js';
import type { BackendChoice } from '../src/engine/backend.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: dist/bench/ when compiled, bench/ under tsx. */
const root = here.includes(`${join('dist', 'bench')}`) ? join(here, '..', '..') : join(here, '..');
// native-wasm: the native path's other design (wasm backend + OpenBLAS matmul), GRADLENS_NATIVE_DESIGN=wasm.
const BACKENDS = ['native', 'native-wasm', 'wasm', 'cpu', 'auto'] as const;
type BenchBackend = (typeof BACKENDS)[number];

export interface Row {
  workload: WorkloadName;
  title: string;
  requested: string;
  backend?: string;
  tfjsBackend?: string;
  workers: number;
  ok: boolean;
  reason?: string;
  unit: string;
  /** ms per unit of work (median) for every workload; rates are derived from it. */
  medianMs?: number;
  p95Ms?: number;
  minMs?: number;
  /** Median process CPU time per unit of work (all threads: HTTP, workers, GC). */
  cpuMs?: number;
  /** cells/s, steps/s or analyses/s where the unit is a rate. */
  rate?: number;
  gflops?: number;
  runs?: number;
  warmup?: number;
  note?: string;
  torchMs?: number;
  ratio?: number;
  torchCpuMs?: number;
  cpuRatio?: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

// ---------------------------------------------------------------------------------------------------
// Child: one workload on one backend.

async function engineWorkload(name: 'W2' | 'W2stats' | 'W3' | 'W3stats', backend: BackendChoice, quick: boolean): Promise<Partial<Row>> {
  const { initBackend } = await import('../src/engine/backend.js');
  const { denseBench } = await import('./engine.js');
  const info = await initBackend(backend);
  const bench = denseBench(name.startsWith('W2') ? W2 : W3);
  const fn = name.endsWith('stats') ? bench.stats : bench.step;
  const t0 = performance.now();
  fn();
  const timing = await measure(fn, planFor(performance.now() - t0, quick));
  bench.dispose();
  return { backend: info.name, tfjsBackend: info.tfjsBackend, workers: 1, ...fromTiming(timing) };
}

function fromTiming(t: Timing): Partial<Row> {
  return { medianMs: t.medianMs, p95Ms: t.p95Ms, minMs: t.minMs, cpuMs: t.cpuMedianMs, runs: t.samples.length, warmup: t.warmup };
}

async function httpWorkload(name: 'W1' | 'MNIST' | 'MNISTx' | 'MNISTbig' | 'SWEEP' | 'TRAIN', backend: BackendChoice, workers: number, quick: boolean): Promise<Partial<Row>> {
  const httpLib = await import('./http.js');
  const { startServer, postJson } = httpLib;
  const { TEXTBOOK_CHAIN_EXAMPLE } = await import('../src/schemas/examples.js');
  const server = await startServer(backend, workers);
  const env = server.app.backend;
  const base = { backend: env.name, tfjsBackend: env.tfjsBackend, workers };
  try {
    let seed = 1;
    switch (name) {
      case 'W1': {
        const fn = () => postJson(server.base, '/v1/analyses', TEXTBOOK_CHAIN_EXAMPLE);
        const t = await measure(fn, { minWarmup: 100, maxWarmup: 100, warmupMs: 0, minReps: quick ? 200 : 1000, maxReps: quick ? 200 : 1000, budgetMs: 0 });
        return { ...base, ...fromTiming(t), note: 'sequential requests; p95 in the p95 column' };
      }
      case 'MNIST': {
        // A new seed per request: every analysis draws its weights afresh, as a user's would.
        const fn = () => postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++));
        const t0 = performance.now();
        await fn();
        const t = await measure(fn, { ...planFor(performance.now() - t0, quick), minWarmup: 40 });
        return { ...base, ...fromTiming(t), note: 'sequential requests, new seed each' };
      }
      case 'MNISTbig': {
        const fn = () => postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++, MNIST_BIG_BATCH));
        const t0 = performance.now();
        await fn();
        const t = await measure(fn, { ...planFor(performance.now() - t0, quick), minWarmup: 10 });
        const min = Number(process.env['GRADLENS_SHARD_MIN_FLOPS'] ?? 0);
        const split = min > 0 ? `split over idle workers (GRADLENS_SHARD_MIN_FLOPS=${min})` : 'not split (GRADLENS_SHARD_MIN_FLOPS=0)';
        return { ...base, ...fromTiming(t), note: `sequential requests, ${split}` };
      }
      case 'MNISTx': {
        // Keep one request in flight per worker; warm every worker first.
        const lanes = Math.max(1, workers);
        const burst = async (n: number): Promise<number> => {
          const t0 = performance.now();
          let next = 0;
          await Promise.all(Array.from({ length: lanes }, async () => {
            while (next++ < n) await postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++));
          }));
          return performance.now() - t0;
        };
        await burst(40 * lanes);
        const n = quick ? 20 * lanes : 60 * lanes;
        const c = cpuMs();
        const ms = await burst(n);
        return { ...base, medianMs: ms / n, cpuMs: (cpuMs() - c) / n, rate: (n * 1000) / ms, runs: n, warmup: 40 * lanes, note: `${lanes} in flight` };
      }
      case 'SWEEP': {
        const cells = SWEEP_ACTIVATIONS.length * SWEEP_INITS.length;
        return { ...base, ...(await timeJobs(httpLib, server.base, '/v1/sweeps', sweepSpec, seed, cells, quick)), note: `POST /v1/sweeps, ${cells} cells, polled` };
      }
      case 'TRAIN': {
        const steps = trainingSpec(0)['steps'] as number;
        return { ...base, ...(await timeJobs(httpLib, server.base, '/v1/trainings', trainingSpec, seed, steps, quick)), note: 'POST /v1/trainings incl. records + evaluation, polled' };
      }
    }
  } finally {
    await server.close();
  }
}

async function child(workload: WorkloadName, requested: BenchBackend, workers: number, quick: boolean): Promise<void> {
  const info = WORKLOAD_INFO[workload];
  const backend: BackendChoice = requested === 'native-wasm' ? 'native' : requested;
  let row: Row = { workload, title: info.title, requested, workers, ok: true, unit: info.unit };
  try {
    const part = workload === 'W2' || workload === 'W2stats' || workload === 'W3' || workload === 'W3stats'
      ? await engineWorkload(workload, backend, quick)
      : await httpWorkload(workload, backend, workers, quick);
    row = { ...row, ...part };
    if (row.ok && row.medianMs !== undefined) row.gflops = info.flops / (row.medianMs * 1e6);
  } catch (err) {
    row = { ...row, ok: false, reason: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
  process.stdout.write(`RESULT ${JSON.stringify(row)}\n`);
  // Worker threads and keep-alive sockets would hold the process open.
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------
// Parent: spawn the children, run PyTorch, print and write the table.

interface TorchResult {
  ok: boolean;
  reason?: string;
  torch?: string;
  threads?: number;
  workloads?: Record<string, { medianMs: number; cpuMedianMs?: number; p95Ms?: number; minMs?: number; runs?: number; note?: string }>;
}

function torchAvailable(): { python: string; ok: boolean; reason?: string } {
  const python = process.env['GRADLENS_BENCH_PYTHON'] ?? '/usr/bin/python3';
  const check = spawnSync(python, ['-c', 'import torch'], { env: torchEnv(), encoding: 'utf8' });
  if (check.error || check.status !== 0) return { python, ok: false, reason: `${python} -c 'import torch' failed: PyTorch comparison skipped` };
  return { python, ok: true };
}

function torchEnv(): NodeJS.ProcessEnv {
  return { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
}

/** One workload in PyTorch, run right before gradlens's runs of it so that both see the same machine. */
function runTorch(python: string, workload: WorkloadName, quick: boolean): TorchResult {
  const args = [join(root, 'bench', 'torch_reference.py'), '--only', workload, '--mnist-dir', join(root, 'node_modules', 'mnist', 'src', 'digits')];
  if (quick) args.push('--quick');
  const run = spawnSync(python, args, { env: torchEnv(), encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.status !== 0) return { ok: false, reason: `torch_reference.py exited with ${run.status ?? run.signal}: ${(run.stderr ?? '').trim().split('\n').pop()}` };
  try {
    return { ok: true, ...(JSON.parse(run.stdout) as Omit<TorchResult, 'ok'>) };
  } catch {
    return { ok: false, reason: 'torch_reference.py printed no JSON' };
  }
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function printTable(rows: Row[]): void {
  const header = ['workload', 'backend', 'workers', 'median', 'p95', 'CPU', 'rate', 'GFLOP/s', 'PyTorch', 'ratio', 'PyTorch CPU', 'CPU ratio', 'note'];
  const lines = rows.map((r) => r.ok
    ? [r.workload, r.requested === 'native-wasm' ? 'native (wasm)' : r.backend ?? r.requested, String(r.workers), `${fmtMs(r.medianMs)} ms`,
      r.p95Ms !== undefined ? `${fmtMs(r.p95Ms)} ms` : '—', r.cpuMs !== undefined ? `${fmtMs(r.cpuMs)} ms` : '—',
      r.rate !== undefined ? `${r.rate.toFixed(1)} ${r.unit}` : '—', r.gflops !== undefined ? r.gflops.toFixed(2) : '—',
      r.torchMs !== undefined ? `${fmtMs(r.torchMs)} ms` : '—', r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : '—',
      r.torchCpuMs !== undefined ? `${fmtMs(r.torchCpuMs)} ms` : '—', r.cpuRatio !== undefined ? `${r.cpuRatio.toFixed(2)}x` : '—', r.note ?? '']
    : [r.workload, r.requested, String(r.workers), 'skipped', '', '', '', '', '', '', '', '', r.reason ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => (i >= 2 && i <= 11 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
}

async function parent(): Promise<void> {
  const backends = (arg('backend') ?? 'native,wasm').split(',').map((b) => b.trim()) as BenchBackend[];
  for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`--backend: unknown backend ${b} (use ${BACKENDS.join(', ')})`);
  const only = (arg('only')?.split(',').map((w) => w.trim()) ?? [...WORKLOADS]) as WorkloadName[];
  for (const w of only) if (!WORKLOADS.includes(w)) throw new Error(`--only: unknown workload ${w} (use ${WORKLOADS.join(', ')})`);
  const workers = Number(arg('workers') ?? availableParallelism());
  const quick = flag('quick');
  const out = arg('out') ?? join(root, 'bench', 'results', 'latest.json');

  console.log(`gradlens benchmark: node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${availableParallelism()}, pool ${workers} worker(s)`);
  console.log(`workloads ${only.join(' ')}; backends ${backends.join(' ')}; OPENBLAS_NUM_THREADS=1 in every process\n`);
  const torchCheck = flag('no-torch') ? { python: '', ok: false, reason: '--no-torch' } : torchAvailable();
  console.log(torchCheck.ok ? `PyTorch: ${torchCheck.python}, one thread, run before each workload` : `PyTorch: ${torchCheck.reason}`);
  const torchRuns: Record<string, TorchResult> = {};

  const rows: Row[] = [];
  for (const workload of only) {
    const torch: TorchResult = torchCheck.ok ? runTorch(torchCheck.python, workload, quick) : { ok: false, reason: torchCheck.reason ?? '' };
    torchRuns[workload] = torch;
    const t = torch.workloads?.[workload];
    if (torchCheck.ok) console.log(t ? `  ${workload} on PyTorch ${torch.torch}: ${fmtMs(t.medianMs)} ms` : `  ${workload} on PyTorch: ${torch.reason}`);
    for (const backend of backends) {
      const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', workload, '--backend', backend,
        '--workers', String(workers), ...(quick ? ['--quick'] : [])], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 24,
        env: {
          ...process.env, OPENBLAS_NUM_THREADS: '1', GRADLENS_NATIVE_DESIGN: backend === 'native-wasm' ? 'wasm' : 'cpu',
          ...(arg('split') !== undefined ? { GRADLENS_SHARD_MIN_FLOPS: String(Number(arg('split'))) } : {}),
        },
      });
      const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      const row: Row = line
        ? (JSON.parse(line.slice(7)) as Row)
        : { workload, title: WORKLOAD_INFO[workload].title, requested: backend, workers, ok: false, unit: WORKLOAD_INFO[workload].unit, reason: `child exited with ${run.status ?? run.signal}` };
      if (row.ok && t && row.medianMs !== undefined) {
        row.torchMs = t.medianMs;
        row.ratio = row.medianMs / t.medianMs;
        if (t.cpuMedianMs !== undefined && row.cpuMs !== undefined) {
          row.torchCpuMs = t.cpuMedianMs;
          row.cpuRatio = row.cpuMs / t.cpuMedianMs;
        }
      }
      rows.push(row);
      console.log(row.ok ? `  ${workload} on ${row.backend}: ${fmtMs(row.medianMs)} ms` : `  ${workload} on ${backend}: skipped (${row.reason})`);
    }
  }
  console.log('');
  printTable(rows);
  if (torchCheck.ok) {
    console.log('\nratio = gradlens median wall time / PyTorch median wall time for the same work (one thread each side; rates compared as time per cell/step/analysis);');
    console.log('CPU ratio = the same with process CPU time, which moves far less when other work shares the machine.');
    console.log('W1 and MNIST are HTTP round trips on the gradlens side and in-process calls on the PyTorch side.');
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: availableParallelism(), workers, quick, torch: torchRuns, rows }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
}

const childWorkload = arg('child');
if (childWorkload !== undefined) {
  await child(childWorkload as WorkloadName, (arg('backend') ?? 'auto') as BenchBackend, Number(arg('workers') ?? 1), flag('quick'));
} else {
  await parent();
}

/** Submits one warm-up job, then times `runs` jobs from POST to done; times are per unit (cell or step). */
async function timeJobs(http: typeof import('./http.js'), base: string, path: string, specOf: (seed: number) => Record<string, unknown>, seed: number, units: number, quick: boolean) {
  const { postJson, waitForJob } = http;
  await waitForJob(base, (await postJson(base, path, specOf(seed), 202))['id'] as string);
  const runs = quick ? 1 : 3;
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = cpuMs();
    const t0 = performance.now();
    const job = await postJson(base, path, specOf(++seed), 202);
    await waitForJob(base, job['id'] as string);
    times.push(performance.now() - t0);
    cpu.push(cpuMs() - c);
  }
  const med = quantile(times, 0.5);
  return { medianMs: med / units, minMs: Math.min(...times) / units, cpuMs: quantile(cpu, 0.5) / units, rate: (units * 1000) / med, runs, warmup: 1 };
}
