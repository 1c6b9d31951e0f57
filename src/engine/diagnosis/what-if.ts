// What-if: the same spec re-run with each standard cure applied alone, ranked by how close it brings the flow to healthy.
import type { AnalysisSpecInput } from '../../schemas/spec.js';
import type { ActivationSpec } from '../model/activations.js';
import { initializerMoments, type InitializerInput } from '../model/initializers.js';
import { specToInput, type NormalizedSpec, type SpecLimits, normalizeSpecShape, datasetOf } from '../spec/normalize.js';
import { estimateCost, checkCost, type CostEstimate, type FlopBudget } from '../spec/cost.js';
import { runAnalysis, type AnalysisResult } from '../measure/measure.js';
import { initParameters } from '../model/network.js';
import { structuralZeros } from './zero-by-design.js';
import { diagnose, fmt, type FlowVerdict, type Verdict } from './verdict.js';
import { criticalSigmaW2 } from '../theory/mean-field.js';
import { graphCures } from './graph-cures.js';
import { noStructuralZeros } from './zero-by-design.js';
import { runGraphAnalysis } from '../measure/graph-analysis.js';
import { initGraphParameters } from '../model/graph-params.js';

export interface Cure {
  /** Stable identifier, e.g. 'activation:relu', 'init:variance_preserving', 'residual', 'normalization:batch'. */
  id: string;
  kind: 'none' | 'activation' | 'init' | 'activation+init' | 'residual' | 'normalization';
  description: string;
  /** The spec fields the cure sets (request form). */
  change: Record<string, unknown>;
}

export interface WhatIfRow extends Cure {
  rank: number;
  verdict: Verdict;
  flowVerdict: FlowVerdict | null;
  /** backpropNorm of the first measured layer / that of the output layer. */
  backpropFirstToLastRatio: number;
  /** weightGradNorm of the first layer / that of the output layer. */
  firstToLastRatio: number;
  /** Fitted backprop log-slope per layer (fitLogSlope convention) and its r². */
  backpropLogSlope: number | null;
  r2: number | null;
  /** Orders of magnitude from healthy: ½(|log10 backprop ratio| + |slope|·(n − 1)/ln 10); 0 is perfectly flat. */
  distance: number;
  loss: number;
}

export interface WhatIfResult {
  /** Every run, the unchanged spec ('none', the original analysis) included, best first. */
  ranking: WhatIfRow[];
  /** Cures that do not apply to this spec, with the reason. */
  skipped: { id: string; reason: string }[];
  /** The best cure's sentence, or a note that leaving the network alone is already best. */
  summary: string;
  /** Extra analyses run (the original is not repeated). */
  runs: number;
  computeMs: number;
}

const RELU_LIKE = new Set(['relu', 'leaky_relu', 'relu6', 'elu', 'gelu', 'swish', 'silu', 'mish', 'softplus']);
const SIGMOID_LIKE = new Set(['sigmoid', 'hard_sigmoid']);
const TANH_LIKE = new Set(['tanh', 'softsign']);

/**
 * The variance-preserving initialiser for an activation (χ₁ = 1 at its fixed point): the textbook
 * names where they exist (He for ReLU, 2/(1+a²) for leaky ReLU, LeCun for SELU, tanh, softsign and
 * linear), and the mean-field critical σ_w² (criticalSigmaW2) as a plain normal otherwise.
 */
export function variancePreservingInit(act: ActivationSpec, sigmaB2: number): { init: InitializerInput; sigmaW2: number; why: string } | null {
  switch (act.name) {
    case 'relu':
      return { init: 'he_normal', sigmaW2: 2, why: 'He: σ_w² = 2 gives χ₁ = 1 for ReLU' };
    case 'leaky_relu': {
      const a = act.alpha ?? 0.01;
      const s = 2 / (1 + a * a);
      return { init: { name: 'variance_scaling', scale: s, mode: 'fan_in', distribution: 'normal' }, sigmaW2: s, why: `He for leaky ReLU: σ_w² = 2/(1 + a²) = ${fmt(s, 4)}` };
    }
    case 'selu':
      return { init: 'lecun_normal', sigmaW2: 1, why: 'LeCun normal: the self-normalising fixed point of SELU (Klambauer et al. 2017)' };
    case 'tanh':
    case 'softsign':
    case 'linear':
      return { init: 'lecun_normal', sigmaW2: 1, why: `LeCun: σ_w² = 1 gives χ₁ = ${act.name === 'linear' ? '1' : '1 at q → 0'} for ${act.name}` };
    default: {
      const s = criticalSigmaW2(act, sigmaB2, 1);
      if (s === null) return null;
      const v = Number(s.toPrecision(4));
      return { init: { name: 'variance_scaling', scale: v, mode: 'fan_in', distribution: 'normal' }, sigmaW2: v, why: `mean-field critical σ_w² = ${fmt(v, 4)} (χ₁ = 1 at the fixed point q*)` };
    }
  }
}

function hiddenSigmaW2(spec: NormalizedSpec): number | null {
  const net = spec.network;
  if (net.depth < 3) return null;
  const m = initializerMoments(net.init.weights, net.widths[0]!, net.widths[1] ?? net.outputUnits);
  return m ? net.widths[0]! * m.variance : null;
}

/** The cures that apply to `spec`, each as a change to its request form, and those that do not. */
export function curesFor(spec: NormalizedSpec): { cures: Cure[]; skipped: { id: string; reason: string }[] } {
  const net = spec.network;
  if (net.graph) return graphCures(spec, net.layers ?? [], variancePreservingInit);
  const cures: Cure[] = [];
  const skipped: { id: string; reason: string }[] = [];
  const acts = net.activations;
  const uniform = acts.length > 0 && acts.every((a) => a.name === acts[0]!.name && a.alpha === acts[0]!.alpha);
  const act = uniform ? acts[0]! : null;
  if (net.depth < 2) {
    skipped.push({ id: 'all', reason: 'a single layer has no depth-wise flow to cure' });
    return { cures, skipped };
  }

  const targets: string[] = [];
  if (!act) targets.push('relu', 'tanh');
  else if (SIGMOID_LIKE.has(act.name)) targets.push('tanh', 'relu');
  else if (TANH_LIKE.has(act.name) || act.name === 'linear') targets.push('relu');
  else if (RELU_LIKE.has(act.name)) targets.push('selu');
  else if (act.name === 'selu') targets.push('relu');
  for (const name of targets) {
    cures.push({ id: `activation:${name}`, kind: 'activation', description: `hidden activation ${name}, everything else unchanged`, change: { 'network.activation': name } });
  }

  const sigmaB2 = net.useBias ? initializerMoments(net.init.bias, 1, 1)?.variance ?? 0 : 0;
  if (act) {
    const vp = variancePreservingInit(act, sigmaB2);
    const current = hiddenSigmaW2(spec);
    if (!vp) skipped.push({ id: 'init:variance_preserving', reason: `no σ_w² in [1e-3, 1e4] puts ${act.name} at χ₁ = 1` });
    else if (current !== null && Math.abs(current - vp.sigmaW2) <= 0.01 * vp.sigmaW2) {
      skipped.push({ id: 'init:variance_preserving', reason: `the weights already have the variance-preserving σ_w² = ${fmt(vp.sigmaW2, 3)} for ${act.name}` });
    } else {
      cures.push({ id: 'init:variance_preserving', kind: 'init', description: `variance-preserving initialisation for ${act.name}: ${vp.why}`, change: { 'network.init.weights': vp.init } });
    }
  } else {
    skipped.push({ id: 'init:variance_preserving', reason: 'the hidden layers mix activations: no single variance-preserving initialiser' });
  }
  if (!(act?.name === 'relu' && net.init.weights.name === 'he_normal')) {
    cures.push({ id: 'activation+init:relu+he_normal', kind: 'activation+init', description: 'ReLU with He initialisation (σ_w² = 2, critical)', change: { 'network.activation': 'relu', 'network.init.weights': 'he_normal' } });
  }
  if (!(act?.name === 'selu' && net.init.weights.name === 'lecun_normal')) {
    cures.push({ id: 'activation+init:selu+lecun_normal', kind: 'activation+init', description: 'SELU with LeCun normal initialisation (self-normalising)', change: { 'network.activation': 'selu', 'network.init.weights': 'lecun_normal' } });
  }

  const inner = net.depth - 2;
  if (net.residual.every > 0) skipped.push({ id: 'residual', reason: 'the network already has residual blocks' });
  else if (inner < 2) skipped.push({ id: 'residual', reason: 'fewer than two hidden-to-hidden layers to put in a block' });
  else if (!net.widths.every((w) => w === net.widths[0])) skipped.push({ id: 'residual', reason: 'residual blocks need equal hidden widths' });
  else {
    const blocks = Math.floor(inner / 2);
    const scale = Number((1 / Math.sqrt(blocks)).toPrecision(4));
    cures.push({
      id: 'residual', kind: 'residual',
      description: `residual blocks of 2 layers with branch scale 1/√${blocks} = ${fmt(scale, 3)} (growth < e over the depth)`,
      change: { 'network.residual': { every: 2, scale, variant: 'plain' } },
    });
  }
  if (net.normalization !== 'none') skipped.push({ id: 'normalization', reason: `the network already has ${net.normalization} normalisation` });
  else {
    cures.push({ id: 'normalization:batch', kind: 'normalization', description: 'batch normalisation before every hidden activation', change: { 'network.normalization': 'batch' } });
    cures.push({ id: 'normalization:layer', kind: 'normalization', description: 'layer normalisation before every hidden activation', change: { 'network.normalization': 'layer' } });
  }
  return { cures, skipped };
}

/** Applies a cure's dotted-path changes to a copy of the request form. */
export function applyCure(input: AnalysisSpecInput, cure: Cure): AnalysisSpecInput {
  const out = structuredClone(input) as Record<string, unknown>;
  for (const [path, value] of Object.entries(cure.change)) {
    const keys = path.split('.');
    let node = out;
    for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[keys[keys.length - 1]!] = structuredClone(value);
  }
  // A what-if run is one analysis: no nested what-if, no parameters or batches echoed.
  return { ...(out as AnalysisSpecInput), whatIf: false, include: [] };
}

/** ½(|log10 R| + |slope|·(n − 1)/ln 10): the endpoints and the trend, both in orders of magnitude. */
export function distanceToHealthy(ratio: number, slope: number | null, n: number): number {
  if (!Number.isFinite(ratio) || ratio <= 0) return Infinity;
  const trend = slope === null || !Number.isFinite(slope) ? Math.abs(Math.log10(ratio)) : (Math.abs(slope) * (n - 1)) / Math.LN10;
  return 0.5 * (Math.abs(Math.log10(ratio)) + trend);
}

export interface PreparedWhatIf {
  cures: Cure[];
  skipped: { id: string; reason: string }[];
  runs: { cure: Cure; spec: NormalizedSpec; cost: CostEstimate }[];
  /** Cost of the original analysis plus every what-if run, relative to the original alone. */
  multiplier: number;
}

/**
 * Builds every what-if run and checks the summed cost against the limits before anything runs
 * (throws LimitError). The unchanged spec is not re-run: its row comes from the original analysis.
 */
export function prepareWhatIf(spec: NormalizedSpec, limits: SpecLimits, budget: FlopBudget = 'analysis'): PreparedWhatIf {
  const { cures, skipped } = curesFor(spec);
  const base = specToInput(spec);
  const runs = cures.map((cure) => {
    // Validated from the data's shape: the runs draw their data only when they run (runWhatIf).
    const s = normalizeSpecShape(applyCure(base, cure), limits);
    return { cure, spec: s, cost: estimateCost(s) };
  });
  const baseCost = estimateCost(spec);
  const multiplier = 1 + runs.reduce((sum, p) => sum + p.cost.flops, 0) / baseCost.flops;
  checkCost(baseCost, limits, { budget, multiplier, what: `analysis with what-if (${runs.length} extra runs)` });
  for (const p of runs) checkCost(p.cost, limits, { budget, what: `what-if run "${p.cure.id}"` });
  return { cures, skipped, runs, multiplier };
}

/** Runs the prepared cures and ranks them with the original analysis (`baseResult`) as "leave it alone". */
export async function runWhatIf(spec: NormalizedSpec, prepared: PreparedWhatIf, baseResult: AnalysisResult): Promise<WhatIfResult> {
  const t0 = performance.now();
  const none: Cure = { id: 'none', kind: 'none', description: 'leave the network as it is', change: {} };
  const measured = [{ cure: none, spec, result: baseResult }];
  for (const p of prepared.runs) {
    const graph = p.spec.network.graph;
    const run = graph
      ? await runGraphAnalysis(p.spec, datasetOf(p.spec), initGraphParameters(graph, p.spec.seed))
      : await runAnalysis(p.spec, datasetOf(p.spec), {}, initParameters(p.spec.network, p.spec.seed));
    measured.push({ cure: p.cure, spec: p.spec, result: run.result });
  }
  const rows: Omit<WhatIfRow, 'rank'>[] = measured.map((p) => {
    const result = p.result;
    const graph = p.spec.network.graph;
    // A layer graph: no zero-by-design structure, projection shortcuts off the main path (as its own diagnosis).
    const d = graph
      ? diagnose(result, noStructuralZeros(graph.rows.length), null, spec.thresholds, new Set(graph.rows.filter((r) => r.shortcut).map((r) => r.index)))
      : diagnose(result, structuralZeros(p.spec), null, spec.thresholds);
    const m = d.metrics;
    const slope = m?.fit?.slope ?? null;
    return {
      ...p.cure,
      verdict: d.verdict,
      flowVerdict: d.flowVerdict,
      backpropFirstToLastRatio: m?.backpropRatio ?? NaN,
      firstToLastRatio: result.summary.firstToLastRatio,
      backpropLogSlope: slope,
      r2: m?.fit?.r2 ?? null,
      distance: m ? distanceToHealthy(m.backpropRatio, slope, m.layers.length) : Infinity,
      loss: result.loss,
    };
  });
  const ranking = rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.distance - b.r.distance || a.i - b.i)
    .map(({ r }, k) => ({ ...r, rank: k + 1 }));
  const best = ranking[0]!;
  const asIs = ranking.find((r) => r.id === 'none')!;
  const summary = best.id === 'none'
    ? `Leaving the network alone is already closest to healthy (backprop ratio ${fmt(asIs.backpropFirstToLastRatio)}, ${fmt(asIs.distance)} orders of magnitude from flat).`
    : `Best single change: ${best.description} — backprop ratio first/last ${fmt(best.backpropFirstToLastRatio)} (${best.flowVerdict ?? best.verdict}) against ${fmt(asIs.backpropFirstToLastRatio)} (${asIs.flowVerdict ?? asIs.verdict}) as it is; ${fmt(best.distance)} against ${fmt(asIs.distance)} orders of magnitude from flat.`;
  return { ranking, skipped: prepared.skipped, summary, runs: prepared.runs.length, computeMs: performance.now() - t0 };
}
