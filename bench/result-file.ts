// The raw results file of `npm run bench` (bench/results/*.json): every sample of both sides, and the summaries made of them.
import type { Pair, PairSummary } from './pairs.js';
import type { BenchBackend, Pairing, WorkloadName } from './workloads.js';

export interface ResultRow {
  workload: WorkloadName;
  title: string;
  pairing: Pairing;
  /** What each side ran, in words. */
  sides: { gradlens: string; torch: string };
  requested: BenchBackend;
  backend?: string;
  tfjsBackend?: string;
  /** webgpu: the GPU adapter the row ran on (a fallback one, lavapipe, is software Vulkan: correctness only). */
  adapter?: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter: boolean };
  workers: number;
  torchProcesses: number;
  unit: string;
  /** Units of work per sample (cells, steps, analyses); summaries are per unit, raw samples per sample. */
  units: number;
  ok: boolean;
  reason?: string;
  warmup?: { gradlens: number; torch?: number[] };
  summary?: PairSummary;
  /** Every sample, pair by pair in the order taken (gradlens first): the columns of SAMPLE_COLUMNS, in ms. */
  samples?: number[][];
}

export interface ResultFile {
  date: string;
  command: string;
  machine: { node: string; cpu: string; cores: number; loadavgStart: number[]; loadavgEnd?: number[] };
  torch: { version?: string; reason?: string };
  quick: boolean;
  rows: ResultRow[];
}

/** A sample row: one pair, per sample (not per unit of work); the PyTorch columns are absent without PyTorch. */
export const SAMPLE_COLUMNS = ['gradlensWallMs', 'gradlensCpuMs', 'torchWallMs', 'torchCpuMs'] as const;

const us = (ms: number): number => Math.round(ms * 1000) / 1000;

export function toSampleRows(pairs: Pair[]): number[][] {
  return pairs.map((p) => [p.gradlens.wallMs, p.gradlens.cpuMs, ...(p.torch ? [p.torch.wallMs, p.torch.cpuMs] : [])].map(us));
}

export function fromSampleRows(rows: number[][]): Pair[] {
  return rows.map(([gw, gc, tw, tc]) => ({
    gradlens: { wallMs: gw!, cpuMs: gc! },
    ...(tw !== undefined && tc !== undefined ? { torch: { wallMs: tw, cpuMs: tc } } : {}),
  }));
}

/** JSON with one line per sample pair: readable and diffable, a fraction of the size of one number per line. */
export function serializeResults(file: ResultFile): string {
  const text = JSON.stringify(file, (key, value: unknown) => (key === 'samples' ? (value as number[][]).map((r) => `@@${r.join(',')}@@`) : value), 1);
  return `${text.replace(/"@@([^"]*)@@"/g, '[$1]')}\n`;
}
