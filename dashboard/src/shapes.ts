// The API's response shapes as the dashboard reads them, with small adapters where a field is optional.
import type { ApiNum } from './format.js';
import type { JobKind, JobStatus, Verdict } from '../../src/schemas/vocabulary.js';
import type { ThroughTimeEntryBody } from '../../src/schemas/through-time.js';

// The lists are the API's own (src/schemas/vocabulary.ts): type-only, so nothing of it reaches the bundle.
export type { JobKind, JobStatus, Verdict };

export interface LayerResult {
  index: number;
  name: string;
  inputUnits: number;
  units: number;
  activation: string;
  residualBlock: number | null;
  weightNorm: ApiNum;
  weightGradNorm: ApiNum;
  weightGradRms: ApiNum;
  backpropNorm: ApiNum;
  gradToWeightRatio: ApiNum;
  preActivationRms: ApiNum;
  outputRms: ApiNum;
  deadFraction: ApiNum;
  saturatedFraction: ApiNum;
  /** Diagnosis flags (onset of vanishing/exploding, dead, saturated), where the server gives them. */
  flags?: unknown;
  [key: string]: unknown;
}

export interface LogSlope {
  slope: ApiNum;
  factorPerLayer: ApiNum;
  r2: ApiNum;
  layers: number[];
}

export interface AnalysisSummary {
  firstToLastRatio: ApiNum;
  backpropFirstToLastRatio: ApiNum;
  weightGradLogSlope: LogSlope | null;
  backpropLogSlope: LogSlope | null;
  verdict?: Verdict;
  reasons?: unknown[];
  [key: string]: unknown;
}

export interface AnalysisResult {
  loss: ApiNum;
  batchSize: number;
  batches: number;
  layers: LayerResult[];
  summary: AnalysisSummary;
  nonFinite: { count: number; paths: string[] };
  data?: { source: string; examples: number; inputUnits: number; task: string; description: string };
  theory?: unknown;
  whatIf?: unknown;
  /** Layer graphs with recurrent layers: gradient flow through time, one entry per recurrent layer. */
  throughTime?: ThroughTimeEntryBody[];
  [key: string]: unknown;
}

export interface AnalysisResponse {
  id: string;
  kind: 'analysis';
  status: string;
  spec: Record<string, unknown>;
  result: AnalysisResult;
  cost?: { parameters: number; flops: number };
  environment?: { backend: string; tfjsVersion: string; gradlensVersion: string };
  timings?: { totalMs: number };
  [key: string]: unknown;
}


export interface Job {
  id: string;
  kind: JobKind;
  status: JobStatus;
  progress?: number;
  createdAt?: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  spec?: Record<string, unknown>;
  result?: unknown;
  error?: { code?: string; message?: string } | null;
  [key: string]: unknown;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A list body: a bare array, or { items | jobs | data: [...] , nextCursor? }. */
export function listItems<T>(body: unknown): { items: T[]; next: string | null } {
  if (Array.isArray(body)) return { items: body as T[], next: null };
  if (isObject(body)) {
    const arr = body.items ?? body.jobs ?? body.data;
    const next = body.nextCursor ?? body.next ?? null;
    if (Array.isArray(arr)) return { items: arr as T[], next: typeof next === 'string' ? next : null };
  }
  return { items: [], next: null };
}

export const TERMINAL: readonly string[] = ['succeeded', 'failed', 'canceled'];

/** A short human description of a spec: depth, width, activation, init, residual. */
export function describeSpec(spec: unknown): string {
  if (!isObject(spec)) return '';
  // A sweep describes its base spec.
  const base = isObject(spec.base) ? spec.base : spec;
  const net = isObject(base.network) ? base.network : {};
  const parts: string[] = [];
  if (typeof net.depth === 'number') parts.push(`depth ${net.depth}`);
  if (typeof net.width === 'number') parts.push(`width ${net.width}`);
  else if (Array.isArray(net.widths) && net.widths.length > 0) {
    const ws = new Set(net.widths as unknown[]);
    parts.push(ws.size === 1 ? `width ${String(net.widths[0])}` : `widths ${net.widths.length}`);
  }
  const name = (v: unknown): string => (typeof v === 'string' ? v : isObject(v) && typeof v.name === 'string' ? v.name : '');
  const act = Array.isArray(net.activation) ? 'mixed' : name(net.activation);
  if (act) parts.push(act);
  const init = isObject(net.init) ? net.init : {};
  const w = init.weights;
  if (w !== undefined) parts.push(isObject(w) && typeof w.value === 'number' ? `${name(w)} ${w.value}` : name(w));
  if (isObject(net.residual) && typeof net.residual.every === 'number' && net.residual.every > 0) parts.push(`residual every ${net.residual.every}`);
  const data = isObject(base.data) ? base.data : {};
  if (typeof data.source === 'string') parts.push(`${data.source} data`);
  return parts.join(' · ');
}
