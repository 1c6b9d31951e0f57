// npm run bench: the fixed workloads on each backend against PyTorch, sampled alternately (pairs), as a table and raw JSON.
//
//   npm run bench                                 native and wasm, every row of ROW_PLANS, PyTorch if installed
//   npm run bench -- --backend native,wasm,cpu    backends (also native-wasm: the native path's other design)
//   npm run bench -- --only W2,MNIST              some workloads: W1 W2 W2stats W3 W3stats MNIST MNISTx MNISTbig SWEEP TRAIN CNN-resnet20 CNN-plain20 TF-6block LSTM-100 R18-onnx
//   npm run bench -- --pairing 1v1                only the one-against-one rows (or 2v2)
//   npm run bench -- --quick --no-torch           shorter runs; gradlens alone
//   npm run bench -- --name full                  raw results to bench/results/<date>-full.json (committable)
//   npm run bench -- --out path.json              …or to any path (default bench/results/latest.json, git-ignored)
//   npm run bench -- --distributed [--name N]     the scaled-out mode: one sweep on 1 vs 2 `gradlens worker` processes (bench/distributed.ts)
//                    [--poll-ms MS]               the client polls the job every MS ms instead of reading its event stream
//
// Each row starts one gradlens process (bench/sampler.ts) and one or two PyTorch processes
// (bench/torch_reference.py --serve), warms each up, then alternates: gradlens sample, PyTorch sample, …
// The JSON keeps every sample of both sides; `npm run bench:table` turns a committed file into the
// README's tables. See bench/README.md for the workloads and how the sides are made comparable.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_BACKENDS, PAIRINGS, ROW_PLANS, WORKLOADS, WORKLOAD_INFO, sidesOf, type BenchBackend, type Pairing, type RowPlan, type WorkloadName } from './workloads.js';
import { runPairs, Side, summarize, torchSample, type Pair, type PairPlan } from './pairs.js';
import type { Sample } from './measure.js';
import { loadNativeKernels } from '../src/engine/index.js';
import { fromSampleRows, serializeResults, toSampleRows, type ResultFile, type ResultRow } from './result-file.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: dist/bench/ when compiled, bench/ under tsx. */
const root = here.includes(`${join('dist', 'bench')}`) ? join(here, '..', '..') : join(here, '..');
const ONE_THREAD = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
/** PyTorch's environment: one thread, and the OpenBLAS core the native side uses ({@link torchBlasCore}). */
const torchEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...ONE_THREAD, ...torchBlasCore() });

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

/**
 * The OpenBLAS core PyTorch's side multiplies with. Debian's PyTorch links the same OpenBLAS as the native addon;
 * on a CPU model OpenBLAS does not know it falls back to its SSE3 (Prescott) kernels, which the addon replaces
 * with the core the CPU supports (native/src/gradlens_native.c, fix_blas_core). Left alone, PyTorch would
 * multiply on the fallback (a 3136x576x64 sgemm: 14.8 ms against 2.0 ms with SkylakeX on such a VM) and the
 * ratio would measure OpenBLAS's detection, not the work: so PyTorch gets the same core through the variable
 * OpenBLAS itself reads. A user's own OPENBLAS_CORETYPE is passed on untouched.
 */
export function torchBlasCore(): Record<string, string> {
  if (process.env['OPENBLAS_CORETYPE']) return {};
  const native = loadNativeKernels();
  const fixed = native.loaded ? /core (\w+): \w+ instead of the Prescott fallback/.exec(native.blas) : null;
  return fixed ? { OPENBLAS_CORETYPE: fixed[1]! } : {};
}

function python(): string {
  return process.env['GRADLENS_BENCH_PYTHON'] ?? '/usr/bin/python3';
}

function torchVersion(): { version?: string; reason?: string } {
  const check = spawnSync(python(), ['-c', 'import torch; print(torch.__version__)'], { env: torchEnv(), encoding: 'utf8' });
  if (check.error || check.status !== 0) return { reason: `${python()} -c 'import torch' failed: PyTorch comparison skipped` };
  return { version: check.stdout.trim() };
}

function pairPlan(sampleMs: number, quick: boolean): PairPlan {
  const budgetMs = (quick ? 6 : 20) * 1000;
  return { budgetMs, minPairs: sampleMs > 2000 ? (quick ? 2 : 5) : (quick ? 5 : 10), maxPairs: quick ? 100 : 400 };
}

async function runRow(plan: RowPlan, backend: BenchBackend, withTorch: boolean, quick: boolean): Promise<ResultRow> {
  const info = WORKLOAD_INFO[plan.workload];
  const { workers, torchProcesses } = PAIRINGS[plan.pairing];
  const row: ResultRow = {
    workload: plan.workload, title: info.title, pairing: plan.pairing, sides: sidesOf(plan), requested: backend,
    workers, torchProcesses: withTorch ? torchProcesses : 0, unit: info.unit, units: info.units, ok: false,
  };
  const gradlens = new Side(process.execPath, [join(root, 'dist', 'bench', 'sampler.js')], {
    ...process.env, ...ONE_THREAD, GRADLENS_NATIVE_DESIGN: backend === 'native-wasm' ? 'wasm' : 'cpu',
  });
  const torch = withTorch
    ? Array.from({ length: torchProcesses }, () => new Side(python(), [join(root, 'bench', 'torch_reference.py'), '--serve', '--mnist-dir', join(root, 'node_modules', 'mnist', 'src', 'digits')], torchEnv()))
    : [];
  try {
    // Set up one side at a time: warm-up runs must not compete with each other.
    const g = await gradlens.request<{ ok: boolean; reason?: string; backend: string; tfjsBackend: string; adapter?: ResultRow['adapter']; warmup: number }>({ op: 'setup', workload: plan.workload, backend, workers, quick });
    if (!g.ok) return { ...row, reason: `gradlens: ${g.reason}` };
    const t: { ok: boolean; reason?: string; warmup: number }[] = [];
    for (const [share, p] of torch.entries()) t.push(await p.request({ op: 'setup', workload: plan.workload, share, shares: torch.length, count: info.units, quick }));
    const failed = t.find((x) => !x.ok);
    if (failed) return { ...row, reason: `PyTorch: ${failed.reason}` };
    const sampleG = async (): Promise<Sample> => {
      const s = await gradlens.request<Sample & { ok?: false; reason?: string }>({ op: 'sample' });
      if (s.ok === false) throw new Error(`gradlens: ${s.reason}`);
      return s;
    };
    const first: Pair = { gradlens: await sampleG(), ...(withTorch ? { torch: await torchSample(torch) } : {}) };
    const pairs = [first, ...(await runPairs(sampleG, withTorch ? () => torchSample(torch) : undefined, pairPlan(first.gradlens.wallMs + (first.torch?.wallMs ?? 0), quick)))];
    // The summary is made of the samples as stored, so that anyone can recompute it from the file.
    const samples = toSampleRows(pairs);
    return {
      ...row, ok: true, backend: g.backend, tfjsBackend: g.tfjsBackend, ...(g.adapter ? { adapter: g.adapter } : {}),
      warmup: { gradlens: g.warmup, ...(withTorch ? { torch: t.map((x) => x.warmup) } : {}) },
      summary: summarize(fromSampleRows(samples), info.units), samples,
    };
  } catch (err) {
    return { ...row, reason: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  } finally {
    await Promise.all([gradlens.close(), ...torch.map((p) => p.close())]);
  }
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function progressLine(r: ResultRow): string {
  const head = `  ${r.workload} ${r.pairing} on ${r.backend ?? r.requested} (${r.sides.gradlens} vs ${r.sides.torch})`;
  if (!r.ok || !r.summary) return `${head}: skipped (${r.reason})`;
  const s = r.summary;
  const torch = s.torch && s.ratio && s.cpuRatio
    ? `; PyTorch ${fmtMs(s.torch.medianMs)} ms (CPU ${fmtMs(s.torch.cpuMedianMs)}); ratio ${s.ratio.median.toFixed(2)}x [${s.ratio.q25.toFixed(2)}-${s.ratio.q75.toFixed(2)}], CPU ${s.cpuRatio.median.toFixed(2)}x`
    : '';
  const gflops = (WORKLOAD_INFO[r.workload].flops / (s.gradlens.medianMs / 1000)) / 1e9;
  const adapter = r.adapter
    ? `; adapter ${r.adapter.vendor} ${r.adapter.architecture} ${r.adapter.device}${r.adapter.isFallbackAdapter ? ' (FALLBACK: software Vulkan, correctness only)' : ''}`
    : '';
  return `${head}: ${fmtMs(s.gradlens.medianMs)} ms (CPU ${fmtMs(s.gradlens.cpuMedianMs)}, ${gflops.toFixed(2)} GFLOP/s)${torch}; ${s.pairs} pairs${adapter}`;
}

function outPath(): string {
  const name = arg('name');
  if (name !== undefined) {
    if (!/^[a-z0-9-]+$/.test(name)) throw new Error('--name: lower-case letters, digits and dashes');
    return join(root, 'bench', 'results', `${new Date().toISOString().slice(0, 10)}-${name}.json`);
  }
  return arg('out') ?? join(root, 'bench', 'results', 'latest.json');
}

async function main(): Promise<void> {
  if (flag('distributed')) {
    // The scaled-out mode's throughput (bench/distributed.ts): needs Redis and PostgreSQL, compares no PyTorch.
    const name = arg('name');
    const pollMs = arg('poll-ms');
    const wait = pollMs ? { kind: 'poll' as const, pollMs: Number(pollMs) } : { kind: 'events' as const };
    await (await import('./distributed.js')).runDistributedBench({ quick: flag('quick'), wait, ...(name ? { name } : {}) });
    return;
  }
  const backends = (arg('backend') ?? 'native,wasm').split(',').map((b) => b.trim()) as BenchBackend[];
  for (const b of backends) if (!BENCH_BACKENDS.includes(b)) throw new Error(`--backend: unknown backend ${b} (use ${BENCH_BACKENDS.join(', ')})`);
  const only = (arg('only')?.split(',').map((w) => w.trim()) ?? [...WORKLOADS]) as WorkloadName[];
  for (const w of only) if (!WORKLOADS.includes(w)) throw new Error(`--only: unknown workload ${w} (use ${WORKLOADS.join(', ')})`);
  const pairing = arg('pairing') as Pairing | undefined;
  const plans = ROW_PLANS.filter((p) => only.includes(p.workload) && (pairing === undefined || p.pairing === pairing));
  const quick = flag('quick');
  const out = outPath();
  const torch = flag('no-torch') ? { reason: '--no-torch' } : torchVersion();

  const file: ResultFile = {
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { node: process.version, cpu: cpus()[0]?.model ?? 'unknown CPU', cores: availableParallelism(), loadavgStart: loadavg() },
    torch, quick, rows: [],
  };
  console.log(`gradlens benchmark: node ${process.version}, ${file.machine.cpu} x ${file.machine.cores}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`rows: ${plans.map((p) => `${p.workload}/${p.pairing}`).join(' ')}; backends ${backends.join(' ')}; OPENBLAS_NUM_THREADS=1 in every process`);
  const core = torchBlasCore()['OPENBLAS_CORETYPE'];
  if (torch.version && core) torch.version += ` (OPENBLAS_CORETYPE=${core}, the core the native addon uses)`;
  console.log(torch.version ? `PyTorch ${torch.version} (${python()}), alternated with gradlens sample by sample` : `PyTorch: ${torch.reason}`);
  for (const plan of plans) {
    for (const backend of backends) {
      const row = await runRow(plan, backend, torch.version !== undefined, quick);
      file.rows.push(row);
      console.log(progressLine(row));
    }
  }
  file.machine.loadavgEnd = loadavg();
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, serializeResults(file));
  const { renderTable } = await import('./table.js');
  console.log(`\n${renderTable(file, { full: true })}`);
  console.log(`\nraw samples: ${out}  (README tables: npm run bench:table -- ${out})`);
}

await main();
