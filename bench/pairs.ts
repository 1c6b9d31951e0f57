// Paired timing: a gradlens process and PyTorch process(es) kept alive, sampled alternately, summarised as the median of per-pair ratios.
//
// On a machine shared with other work, consecutive runs of the same code differ by 2x; timing each side in
// its own stretch of time compares the neighbours' load as much as the code. Alternating sample by sample
// (gradlens, PyTorch, gradlens, …) gives both sides of a pair nearly the same machine, and the median of the
// per-pair ratios is robust to the pairs a burst of load hit anyway.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { quantile, type Sample } from './measure.js';

const PREFIX = '@@bench ';

/** A child process answering one "@@bench {json}" line per JSON request line (bench/sampler.ts, torch_reference.py --serve). */
export class Side {
  private readonly child: ChildProcess;
  private readonly waiting: ((line: string) => void)[] = [];
  private exited: string | null = null;
  private stderrTail = '';

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (line.startsWith(PREFIX)) this.waiting.shift()?.(line.slice(PREFIX.length));
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-2000); });
    this.child.on('exit', (code, signal) => {
      this.exited = `exited with ${code ?? signal}: ${this.stderrTail.trim().split('\n').slice(-3).join(' | ')}`;
      for (const w of this.waiting.splice(0)) w(JSON.stringify({ ok: false, reason: this.exited }));
    });
  }

  request<T = Record<string, unknown>>(body: Record<string, unknown>): Promise<T> {
    if (this.exited) return Promise.resolve({ ok: false, reason: this.exited } as T);
    return new Promise((resolve) => {
      this.waiting.push((line) => resolve(JSON.parse(line) as T));
      this.child.stdin!.write(`${JSON.stringify(body)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    await this.request({ op: 'exit' });
    this.child.stdin!.end();
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

interface TorchSample extends Sample {
  t0: number;
  t1: number;
  ok?: false;
  reason?: string;
}

/**
 * One PyTorch sample: every process starts its share at once; the wall time is the span from the first start
 * to the last end (CLOCK_MONOTONIC, shared by the processes), the CPU time the sum over them.
 */
export async function torchSample(procs: Side[]): Promise<Sample> {
  const parts = await Promise.all(procs.map((p) => p.request<TorchSample>({ op: 'sample' })));
  const failed = parts.find((p) => p.ok === false);
  if (failed) throw new Error(`PyTorch: ${failed.reason}`);
  const wallMs = (Math.max(...parts.map((p) => p.t1)) - Math.min(...parts.map((p) => p.t0))) * 1000;
  return { wallMs, cpuMs: parts.reduce((s, p) => s + p.cpuMs, 0) };
}

export interface Pair {
  gradlens: Sample;
  torch?: Sample;
}

export interface Spread {
  median: number;
  q25: number;
  q75: number;
}

export interface SideSummary {
  /** Per unit of work (a step, an analysis, a cell). */
  medianMs: number;
  p95Ms: number;
  cpuMedianMs: number;
}

export interface PairSummary {
  pairs: number;
  gradlens: SideSummary;
  torch?: SideSummary;
  /** gradlens / PyTorch wall time, pair by pair: median and quartiles. */
  ratio?: Spread;
  /** The same with process CPU time. */
  cpuRatio?: Spread;
}

const spread = (xs: number[]): Spread => ({ median: quantile(xs, 0.5), q25: quantile(xs, 0.25), q75: quantile(xs, 0.75) });

function sideSummary(samples: Sample[], units: number): SideSummary {
  const wall = samples.map((s) => s.wallMs / units);
  return { medianMs: quantile(wall, 0.5), p95Ms: quantile(wall, 0.95), cpuMedianMs: quantile(samples.map((s) => s.cpuMs / units), 0.5) };
}

/** Both sides do the same `units` of work per sample, so the per-pair ratios need no unit conversion. */
export function summarize(pairs: Pair[], units: number): PairSummary {
  const summary: PairSummary = { pairs: pairs.length, gradlens: sideSummary(pairs.map((p) => p.gradlens), units) };
  const both = pairs.filter((p): p is Required<Pair> => p.torch !== undefined);
  if (both.length === pairs.length && both.length > 0) {
    summary.torch = sideSummary(both.map((p) => p.torch), units);
    summary.ratio = spread(both.map((p) => p.gradlens.wallMs / p.torch.wallMs));
    summary.cpuRatio = spread(both.map((p) => p.gradlens.cpuMs / p.torch.cpuMs));
  }
  return summary;
}

export interface PairPlan {
  /** Time for all pairs of a row, after warm-up. */
  budgetMs: number;
  minPairs: number;
  maxPairs: number;
}

/**
 * Alternates gradlens and PyTorch sample by sample until the budget is spent (at least minPairs, at most
 * maxPairs). Without PyTorch processes, gradlens alone.
 */
export async function runPairs(gradlens: () => Promise<Sample>, torch: (() => Promise<Sample>) | undefined, plan: PairPlan): Promise<Pair[]> {
  const pairs: Pair[] = [];
  const t0 = performance.now();
  while (pairs.length < plan.maxPairs && (pairs.length < plan.minPairs || performance.now() - t0 < plan.budgetMs)) {
    const g = await gradlens();
    pairs.push(torch ? { gradlens: g, torch: await torch() } : { gradlens: g });
  }
  return pairs;
}
