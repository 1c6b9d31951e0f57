// The README's benchmark tables, generated from a committed raw results file (bench/results/<date>-<name>.json).
//
//   npm run bench:table -- bench/results/2026-05-01-full.json   rewrite the generated blocks of README.md and
//                                                               bench/README.md from that file
//   npm run bench:table                                         regenerate from the file the blocks name now
//
// The blocks sit between `<!-- bench-table … -->` and `<!-- /bench-table -->` markers; the opening marker
// names the results file, and test/docs/bench-tables.test.ts fails when a block differs from what this
// script makes of that file.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WORKLOAD_INFO } from './workloads.js';
import { fromSampleRows, type ResultFile, type ResultRow } from './result-file.js';
import { summarize, type PairSummary, type Spread } from './pairs.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');

export const DOCS = { readme: 'README.md', bench: 'bench/README.md' } as const;
type Doc = keyof typeof DOCS;
const MARKER = /<!-- bench-table(-full)? (\S+) [^>]*-->\n[\s\S]*?<!-- \/bench-table -->/g;

function ms(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const perUnit = (r: ResultRow): string => ({ 'cells/s': 'ms/cell', 'steps/s': 'ms/step', 'analyses/s': 'ms/analysis', ms: 'ms' })[r.unit as 'ms'] ?? 'ms';
const x = (v: number): string => `${v.toFixed(2)}×`;
const iqr = (s: Spread): string => `${x(s.median)} (${s.q25.toFixed(2)}–${s.q75.toFixed(2)})`;

function backendName(r: ResultRow): string {
  return r.requested === 'native-wasm' ? 'native (wasm design)' : r.backend ?? r.requested;
}

/** Summaries are recomputed from the stored samples: the raw data are what the tables quote. */
const summaryOf = (r: ResultRow): PairSummary | undefined => (r.ok && r.samples ? summarize(fromSampleRows(r.samples), r.units) : undefined);

function cells(r: ResultRow, full: boolean): string[] {
  const info = WORKLOAD_INFO[r.workload];
  const head = [info.short, `${r.sides.gradlens} vs ${r.sides.torch}`, backendName(r)];
  const s = summaryOf(r);
  if (!r.ok || !s) return [...head, `skipped: ${r.reason ?? ''}`, '', '', '', '', ...(full ? ['', '', ''] : [])];
  const u = perUnit(r);
  const g = full ? `${ms(s.gradlens.medianMs)} / ${ms(s.gradlens.p95Ms)} / ${ms(s.gradlens.cpuMedianMs)} ${u}` : `${ms(s.gradlens.medianMs)} / ${ms(s.gradlens.cpuMedianMs)} ${u}`;
  const t = !s.torch ? '—' : full ? `${ms(s.torch.medianMs)} / ${ms(s.torch.p95Ms)} / ${ms(s.torch.cpuMedianMs)} ${u}` : `${ms(s.torch.medianMs)} / ${ms(s.torch.cpuMedianMs)} ${u}`;
  const ratio = s.ratio ? iqr(s.ratio) : '—';
  const cpu = s.cpuRatio ? (full ? iqr(s.cpuRatio) : x(s.cpuRatio.median)) : '—';
  const extra = full ? [s.gradlens.medianMs > 0 ? (info.flops / (s.gradlens.medianMs * 1e6)).toFixed(1) : '—', `${r.warmup?.gradlens ?? '—'} / ${r.warmup?.torch?.join('+') ?? '—'}`] : [];
  return [...head, g, t, ratio, cpu, String(s.pairs), ...extra];
}

/** The machine and the command behind a results file, in one sentence. */
function provenance(file: ResultFile, path: string, doc: Doc): string {
  const load = (l: number[] | undefined): string => (l ? l.map((v) => v.toFixed(1)).join(' ') : '?');
  return `\`${file.command}\` on ${file.date.slice(0, 10)}: ${file.machine.cores}-core ${file.machine.cpu}, Node ${file.machine.node}` +
    `${file.torch.version ? `, PyTorch ${file.torch.version}` : ''}; load average ${load(file.machine.loadavgStart)} at the start, ` +
    `${load(file.machine.loadavgEnd)} at the end${file.quick ? '; --quick' : ''}. Raw samples: [${path}](${relative(dirname(DOCS[doc]), path)}).`;
}

export function renderTable(file: ResultFile, { full = false }: { full?: boolean } = {}): string {
  const header = full
    ? ['workload', 'gradlens vs PyTorch', 'backend', 'gradlens wall p50 / p95 / CPU', 'PyTorch wall p50 / p95 / CPU', 'ratio, wall (IQR)', 'ratio, CPU (IQR)', 'pairs', 'GFLOP/s', 'warm-up runs']
    : ['workload', 'gradlens vs PyTorch', 'backend', 'gradlens wall / CPU', 'PyTorch wall / CPU', 'gradlens / PyTorch, wall (IQR)', 'CPU', 'pairs'];
  const lines = [header, header.map(() => '---'), ...file.rows.map((r) => cells(r, full))];
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

/** The issue-5 targets, each with the measured per-pair ratios behind it; no verdict from a single number. */
export function renderTargets(file: ResultFile): string {
  const row = (workload: string, backend: string): ResultRow | undefined =>
    file.rows.find((r) => r.workload === workload && r.requested === backend && r.pairing === '1v1' && r.ok);
  const ratios = (r: ResultRow): number[] => fromSampleRows(r.samples ?? []).filter((p) => p.torch).map((p) => p.gradlens.wallMs / p.torch!.wallMs);
  const out: string[] = [];
  const targets = [
    ['W2', 'native', 2.5, 'native W2 step'], ['MNIST', 'native', 2.5, 'native whole MNIST analysis over HTTP'], ['W2', 'wasm', 8, 'pure-npm (wasm) W2 step'],
    // Issue 12's targets: rows appear only in results files that have them.
    ['CNN-resnet20', 'native', 1.5, 'native ResNet-20 whole analysis over HTTP'], ['CNN-plain20', 'native', 1.5, 'native plain 20-layer CNN whole analysis over HTTP'],
    // Issue 14's target.
    ['TF-6block', 'native', 2, 'native 6-block transformer whole analysis over HTTP'], ['LSTM-100', 'native', 2, 'native LSTM (100 steps, 128 units) whole analysis over HTTP'],
  ] as const;
  for (const [workload, backend, limit, what] of targets) {
    const r = row(workload, backend);
    const s = r && summaryOf(r);
    if (!r || !s?.ratio) continue;
    const rs = ratios(r);
    out.push(`- ${what} ≤ ${limit}× PyTorch: ${iqr(s.ratio)} over ${rs.length} pairs; ≤ ${limit}× in ${rs.filter((v) => v <= limit).length} of them.`);
  }
  for (const backend of ['native', 'wasm']) {
    const r = row('W1', backend);
    const s = r && summaryOf(r);
    if (!r || !s) continue;
    const walls = fromSampleRows(r.samples ?? []).map((p) => p.gradlens.wallMs);
    out.push(`- W1 p50 < 5 ms (${backend}): p50 ${ms(s.gradlens.medianMs)} ms, p95 ${ms(s.gradlens.p95Ms)} ms; under 5 ms in ${walls.filter((v) => v < 5).length} of ${walls.length} requests.`);
  }
  return out.join('\n');
}

function block(doc: Doc, path: string, file: ResultFile): string {
  const full = doc === 'bench';
  const open = `<!-- bench-table${full ? '-full' : ''} ${path} (generated by \`npm run bench:table\`; do not edit) -->`;
  const body = [provenance(file, path, doc), '', renderTable(file, { full }), '', 'Against the targets of issue 5 (per-pair ratios):', '', renderTargets(file)];
  return `${open}\n${body.join('\n')}\n<!-- /bench-table -->`;
}

export function readResults(path: string): ResultFile {
  return JSON.parse(readFileSync(join(root, path), 'utf8')) as ResultFile;
}

/** A document with every generated block re-rendered, from `path` when given, else from the file each block names. */
export function regenerate(doc: Doc, text: string, path?: string): string {
  return text.replace(MARKER, (_m, _full: string | undefined, named: string) => block(doc, path ?? named, readResults(path ?? named)));
}

/** The results files the blocks of a document name. */
export function namedResults(text: string): string[] {
  return [...text.matchAll(MARKER)].map((m) => m[2]!);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const given = process.argv[2] !== undefined ? relative(root, join(process.cwd(), process.argv[2])) : undefined;
  for (const [doc, rel] of Object.entries(DOCS) as [Doc, string][]) {
    const abs = join(root, rel);
    const before = readFileSync(abs, 'utf8');
    if (namedResults(before).length === 0) throw new Error(`${rel} has no <!-- bench-table … --> block`);
    const after = regenerate(doc, before, given);
    writeFileSync(abs, after);
    console.log(`${rel}: ${after === before ? 'unchanged' : 'updated'} from ${given ?? namedResults(before).join(', ')}`);
  }
}
