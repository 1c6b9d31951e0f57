// Regenerates every number table of docs/reading-the-results.md in place, between its
// <!-- table:NAME --> … <!-- /table:NAME --> markers: `npm run docs:tables` rewrites them all,
// `npm run docs:tables -- --check` only compares (exit 1 on drift), `--only NAME,NAME` picks regions.
// Quick regions run on the pure-JS cpu backend (deterministic; test/docs/tables.test.ts compares them
// on every test run); the slope tables measure hundreds of networks on the fastest backend.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { backendOptions } from '../src/config.js';
import { analyze, initBackend, DEFAULT_THRESHOLDS, type Thresholds, theoryReport, fmt } from '../src/engine/index.js';
import type { AnalysisSpecInput } from '../src/schemas/spec.js';
import { SLOPE_CONFIGS, SLOPE_TEST_SETTINGS, measureSlopes, seedRange, type SlopeSettings } from './lib/theory-slopes.js';

export const DOC_PATH = fileURLToPath(new URL('../docs/reading-the-results.md', import.meta.url));
const COMMAND = '`npm run docs:tables` (scripts/docs-tables.ts)';

export interface Region {
  name: string;
  /** quick: the cpu backend, a few seconds, checked by the test suite; slow: minutes of measurements. */
  cost: 'quick' | 'slow';
  render(): string | Promise<string>;
}

const THRESHOLD_WHY: Record<keyof Thresholds, string> = {
  vanishingRatio: 'One order of magnitude between the first and the output layer: with plain SGD the first layer then learns 10× slower. Schoenholz et al.\'s trainability edge L ≈ 6ξ corresponds to e^−3 ≈ 1/20 in norm.',
  explodingRatio: 'The same, upward. SELU\'s real growth (χ₁ = 1.072, ×1.035 per layer, ×3 over 32 layers) stays healthy, as it should.',
  perLayerFactor: 'Halving (doubling) per layer with a clean exponential fit is a problem at any depth.',
  minR2: 'Fit quality the per-layer rule needs.',
  onsetFactor: 'See "onset" below.',
  deadFraction: 'SageMaker Debugger\'s DeadRelu rule: a layer is flagged when more than half its units are dead.',
  saturatedFraction: 'SageMaker Debugger\'s SaturatedActivation rule: more than half the entries saturated.',
  saturationDerivative: 'An entry is saturated where \\|φ\'(h)\\| < 1% of the activation\'s peak derivative (sigmoid, tanh, hard_sigmoid, softsign, relu6, elu, selu).',
  minGradRms: 'SageMaker Debugger\'s absolute VanishingGradient threshold, only a backstop: absolute gradient sizes depend on the loss\'s scale.',
};

function thresholdsTable(): string {
  const rows = (Object.keys(THRESHOLD_WHY) as (keyof Thresholds)[]).map((k) => `| \`${k}\` | ${DEFAULT_THRESHOLDS[k]} | ${THRESHOLD_WHY[k]} |`);
  return [`_The defaults of src/engine/spec/thresholds.ts, written by ${COMMAND}._`, '', '| Threshold | Default | Why |', '|---|---|---|', ...rows].join('\n');
}

export const TEXTBOOK_CHAIN_SPEC: AnalysisSpecInput = {
  network: { depth: 20, width: 1, activation: 'sigmoid', outputActivation: 'sigmoid', useBias: false, init: { weights: { name: 'constant', value: 0.17 } } },
  data: { source: 'inline', x: [[1]] },
  loss: 'output',
};

async function textbookChain(): Promise<string> {
  const reasons = ((await analyze(TEXTBOOK_CHAIN_SPEC)).result.summary as unknown as { reasons: string[] }).reasons;
  return [`_summary.reasons of this spec, written by ${COMMAND}:_`, '', '```json', JSON.stringify(TEXTBOOK_CHAIN_SPEC), '```', '', '```', ...reasons, '```'].join('\n');
}

function theoryEndpoint(): string {
  const query = { activation: 'tanh', sigmaW2: 2, sigmaB2: 0, depth: 20, q0: 1 } as const;
  const r = theoryReport(query);
  const n = (x: number | null): string => (x === null ? 'null' : fmt(x, 4));
  const first = r.layers[0]!;
  return [
    `_Written by ${COMMAND} from the engine's report for this query, numbers to 4 digits:_`, '', '```',
    `GET /v1/theory?${Object.entries(query).map(([k, v]) => `${k}=${v}`).join('&')}`,
    `→ { "qStar": ${n(r.qStar)}, "chi1": ${n(r.chi1)}, "phase": "${r.phase}", "depthScale": ${n(r.depthScale)}, "predictedSlope": ${n(r.predictedSlope)},`,
    `    "factorPerLayer": ${n(r.factorPerLayer)}, "criticalSigmaW2": ${n(r.criticalSigmaW2)}, "layers": [{ "layer": ${first.layer}, "q": ${n(first.q)}, "chi1": ${n(first.chi1)}, … }, …] }`,
    '```',
  ].join('\n');
}

export const WHAT_IF_SPEC: AnalysisSpecInput = {
  network: { depth: 12, width: 64, activation: 'sigmoid', init: { weights: 'glorot_uniform' } },
  data: { source: 'blobs', features: 16, batchSize: 64 },
  whatIf: true,
};

async function whatIfTable(): Promise<string> {
  const ranking = ((await analyze(WHAT_IF_SPEC)).result.whatIf as unknown as { ranking: { rank: number; id: string; description: string; verdict: string; backpropFirstToLastRatio: number; distance: number }[] }).ranking;
  const rows = ranking.map((r) => `| ${r.rank} | \`${r.id}\` | ${r.description} | ${r.verdict} | ${fmt(r.backpropFirstToLastRatio)} | ${fmt(r.distance)} |`);
  return [
    `_result.whatIf.ranking of this spec, written by ${COMMAND}:_`, '', '```json', JSON.stringify(WHAT_IF_SPEC), '```', '',
    '| rank | cure | what it changes | verdict | backprop ratio | distance |', '|---|---|---|---|---|---|', ...rows,
  ].join('\n');
}

// Rounded first, so that a -1e-12 from the quadrature prints as 0.0000, not −0.0000.
const signed = (x: number): string => { const s = x.toFixed(4); return Number(s) < 0 ? `−${s.slice(1)}` : s.replace(/^-/, ''); };

function seedsWords(s: SlopeSettings): string {
  return `depth ${s.depth}, width ${s.width}, batch ${s.batch}, seeds ${s.seeds[0]}–${s.seeds[s.seeds.length - 1]}`;
}

/** The settings of test/engine/theory-slopes.test.ts: the band is the test's (tolerance + noise allowance). */
async function slopeTable(): Promise<string> {
  const s = SLOPE_TEST_SETTINGS;
  const rows: string[] = [];
  for (const c of SLOPE_CONFIGS) {
    const r = await measureSlopes(c, s);
    rows.push(`| ${r.label} | ${r.chi1 === null ? '—' : r.chi1.toFixed(4)} | ${signed(r.predicted)} | ${signed(r.measured)} | ${signed(r.difference)} | ${r.sd.toFixed(4)} | ${r.tolerance.toFixed(4)} + ${r.noiseAllowance.toFixed(4)} | ${r.agrees ? 'yes' : 'no'} |`);
  }
  return [
    `_${seedsWords(s)} (the settings of test/engine/theory-slopes.test.ts), written by ${COMMAND}; slopes of ln‖δ‖² per layer toward the input, means over the seeds:_`, '',
    '| network | χ₁ at q* | predicted | measured | mean difference | per-seed sd | band: tolerance + noise allowance | agrees |', '|---|---|---|---|---|---|---|---|', ...rows,
  ].join('\n');
}

export const WIDE_SLOPE_SETTINGS: SlopeSettings = { depth: 20, width: 256, batch: 128, seeds: seedRange(1, 8) };

async function wideSlopeTable(): Promise<string> {
  const s = WIDE_SLOPE_SETTINGS;
  const rows: string[] = [];
  for (const c of SLOPE_CONFIGS) {
    const r = await measureSlopes(c, s);
    rows.push(`| ${r.label} | ${signed(r.predicted)} | ${signed(r.measured)} | ${signed(r.difference)} ± ${r.standardError.toFixed(4)} |`);
  }
  return [
    `_${seedsWords(s)}, written by ${COMMAND}; mean difference ± its standard error (per-seed sd/√${s.seeds.length}):_`, '',
    '| network | predicted | measured | mean difference |', '|---|---|---|---|', ...rows,
  ].join('\n');
}

export const REGIONS: Region[] = [
  { name: 'thresholds', cost: 'quick', render: thresholdsTable },
  { name: 'textbook-chain', cost: 'quick', render: textbookChain },
  { name: 'theory-slopes', cost: 'slow', render: slopeTable },
  { name: 'theory-slopes-wide', cost: 'slow', render: wideSlopeTable },
  { name: 'theory-endpoint', cost: 'quick', render: theoryEndpoint },
  { name: 'what-if', cost: 'quick', render: whatIfTable },
];

const markers = (name: string): [string, string] => [`<!-- table:${name} -->`, `<!-- /table:${name} -->`];

/** The text between a region's markers (without the newlines next to them). */
export function regionOf(doc: string, name: string): string {
  const [open, close] = markers(name);
  const start = doc.indexOf(open);
  const end = doc.indexOf(close);
  if (start < 0 || end < start) throw new Error(`${DOC_PATH} has no ${open} … ${close} region`);
  return doc.slice(start + open.length, end).replace(/^\n/, '').replace(/\n$/, '');
}

export function withRegion(doc: string, name: string, content: string): string {
  const [open, close] = markers(name);
  const start = doc.indexOf(open);
  const end = doc.indexOf(close);
  if (start < 0 || end < start) throw new Error(`${DOC_PATH} has no ${open} … ${close} region`);
  return `${doc.slice(0, start + open.length)}\n${content}\n${doc.slice(end)}`;
}

/** The slope table's rows by network label: predicted and measured, as written. */
export function slopeRows(doc: string): Map<string, { predicted: number; measured: number }> {
  const num = (cell: string): number => Number(cell.trim().replace('−', '-'));
  const rows = new Map<string, { predicted: number; measured: number }>();
  for (const line of regionOf(doc, 'theory-slopes').split('\n')) {
    const cells = line.split('|').slice(1, -1);
    if (cells.length === 8 && SLOPE_CONFIGS.some((c) => c.label === cells[0]!.trim())) {
      rows.set(cells[0]!.trim(), { predicted: num(cells[2]!), measured: num(cells[3]!) });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args[onlyAt + 1]!.split(',') : null;
  for (const name of only ?? []) if (!REGIONS.some((r) => r.name === name)) throw new Error(`--only: no region ${name} (${REGIONS.map((r) => r.name).join(', ')})`);
  const chosen = REGIONS.filter((r) => !only || only.includes(r.name));
  let doc = readFileSync(DOC_PATH, 'utf8');
  const drift: string[] = [];
  // Quick regions first, on the pure-JS cpu backend; the native kernels, once registered, stay.
  await tf.setBackend('cpu');
  for (const region of [...chosen.filter((r) => r.cost === 'quick'), ...chosen.filter((r) => r.cost === 'slow')]) {
    if (region.cost === 'slow' && tf.getBackend() === 'cpu') await initBackend('auto', backendOptions());
    const t0 = performance.now();
    const content = await region.render();
    if (regionOf(doc, region.name) !== content) drift.push(region.name);
    doc = withRegion(doc, region.name, content);
    console.error(`${region.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s${drift.includes(region.name) ? ' (changed)' : ''}`);
  }
  if (check) {
    if (drift.length > 0) {
      console.error(`docs/reading-the-results.md is out of date in ${drift.join(', ')}: run npm run docs:tables`);
      process.exit(1);
    }
    return;
  }
  writeFileSync(DOC_PATH, doc);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
