// result.throughTime of a layer graph with recurrent layers (issue 14): measured after the depth-wise
// analysis on the same batches, and attached with one line per layer in summary.reasons.
import type { NormalizedSpec } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import type { GraphParameters } from '../model/graph-params.js';
import type { DiagnosedResult } from '../diagnosis/with-diagnosis.js';
import { measureThroughTime, type StepReadings } from '../measure/through-time.js';
import { throughTimeEntry, type ThroughTimeEntry } from '../diagnosis/through-time-verdict.js';

/**
 * Every recurrent layer's through-time entry, or null when the graph has none: from the readings the analysis's
 * own pass took (measure/graph-analysis.ts), else measured on a pass of their own.
 */
export async function throughTimeOf(spec: NormalizedSpec, dataset: Dataset, params: GraphParameters, measured: StepReadings[] | null = null): Promise<ThroughTimeEntry[] | null> {
  const readings = measured ?? await measureThroughTime(spec, dataset, params);
  return readings.length > 0 ? readings.map((r) => throughTimeEntry(r, params, spec.thresholds)) : null;
}

/**
 * The diagnosed result with throughTime and a summary reason per recurrent layer. A recurrent network's gradient
 * can vanish (or explode) through time while its layers, read depth-wise, look healthy: then the headline
 * verdict (and flowVerdict) is the through-time one, exploding before vanishing, and the first reason says so.
 */
export function withThroughTime(d: DiagnosedResult, entries: ThroughTimeEntry[] | null): DiagnosedResult & { throughTime?: ThroughTimeEntry[] } {
  if (!entries) return d;
  const lines = entries.map((e, i) => `Through time, ${e.path} (${e.kind}): ${e.verdict}${e.verdict === 'vanishing' ? ` after ~${e.memoryHorizon} steps` : ''} (result.throughTime[${i}]).`);
  const worst = entries.find((e) => e.verdict === 'exploding') ?? entries.find((e) => e.verdict === 'vanishing');
  if (!worst || d.summary.verdict !== 'healthy') return { ...d, summary: { ...d.summary, reasons: [...d.summary.reasons, ...lines] }, throughTime: entries };
  const lead = `The gradient is ${worst.verdict} through time in ${worst.path} although the layers, read depth-wise, are healthy: the verdict is the through-time one.`;
  const summary = { ...d.summary, verdict: worst.verdict, flowVerdict: d.summary.flowVerdict === 'healthy' ? worst.verdict : d.summary.flowVerdict, reasons: [lead, ...d.summary.reasons, ...lines] };
  return { ...d, summary, throughTime: entries };
}
