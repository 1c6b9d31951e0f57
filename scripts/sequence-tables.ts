// Regenerates the RNN-vs-LSTM table of docs/sequence-models.md in place, between its
// <!-- table:rnn-vs-lstm --> … <!-- /table:rnn-vs-lstm --> markers: `npx tsx scripts/sequence-tables.ts`.
// Every number is measured here: result.throughTime of one analysis per layer on the adding problem, on the
// pure-JS cpu backend (deterministic).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { analyze } from '../src/engine/index.js';
import type { AnalysisSpecInput } from '../src/schemas/spec.js';
import type { LayerInput } from '../src/schemas/layers.js';

const DOC = fileURLToPath(new URL('../docs/sequence-models.md', import.meta.url));
const T = 100;
const UNITS = 32;

const CONFIGS: { label: string; layer: LayerInput }[] = [
  { label: 'simple_rnn tanh, orthogonal U (default)', layer: { kind: 'simple_rnn', units: UNITS } },
  { label: 'simple_rnn tanh, glorot_uniform U', layer: { kind: 'simple_rnn', units: UNITS, init: { recurrent: 'glorot_uniform' } } },
  { label: 'simple_rnn relu, identity U (IRNN)', layer: { kind: 'simple_rnn', units: UNITS, activation: 'relu', init: { recurrent: { name: 'identity', gain: 1 } } } },
  { label: 'lstm, forget bias 0', layer: { kind: 'lstm', units: UNITS } },
  { label: 'lstm, forget bias 1', layer: { kind: 'lstm', units: UNITS, forgetBias: 1 } },
  { label: 'gru', layer: { kind: 'gru', units: UNITS } },
];

interface Entry {
  verdict: string; memoryHorizon: number | null; relative: number[]; fit: { factorPerStep: number } | null;
  recurrentMatrix: { block: string; largestSingularValue: number; spectralRadius: number | null };
  gates: { name: string; overallMean: number } | null;
}

const f3 = (v: number): string => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(3));

async function table(): Promise<string> {
  const rows: string[] = [];
  for (const c of CONFIGS) {
    const spec: AnalysisSpecInput = { seed: 1, data: { source: 'adding', length: T, samples: 256, batchSize: 64 }, network: { layers: [c.layer, { kind: 'dense' }] } };
    const out = await analyze(spec);
    const e = (out.result as unknown as { throughTime: Entry[] }).throughTime[0]!;
    const m = e.recurrentMatrix;
    rows.push(`| ${c.label} | ${e.verdict} | ${e.memoryHorizon ?? '—'} | ${f3(e.relative[0]!)} | ${e.fit ? f3(e.fit.factorPerStep) : '—'} | ${m.block}: ${f3(m.largestSingularValue)} / ${m.spectralRadius === null ? '—' : f3(m.spectralRadius)} | ${e.gates ? `${e.gates.name} ${f3(e.gates.overallMean)}` : '—'} |`);
  }
  return [
    `_Adding problem, ${T} steps, ${UNITS} units, one batch of 64, seed 1, then a dense head (mse); written by \`npx tsx scripts/sequence-tables.ts\` on the cpu backend._`,
    '',
    '| Layer | Verdict | Memory horizon (steps) | ‖∂L/∂h₀‖ / ‖∂L/∂h₉₉‖ | Factor per step back | σ₁ / spectral radius | Gate mean |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

await tf.setBackend('cpu');
const doc = readFileSync(DOC, 'utf8');
const start = '<!-- table:rnn-vs-lstm -->', end = '<!-- /table:rnn-vs-lstm -->';
const a = doc.indexOf(start), b = doc.indexOf(end);
if (a < 0 || b < a) throw new Error(`${DOC} has no ${start} … ${end} region`);
writeFileSync(DOC, `${doc.slice(0, a + start.length)}\n${await table()}\n${doc.slice(b)}`);
console.log(`rewrote the rnn-vs-lstm table of ${DOC}`);
