// Prints measured vs mean-field-predicted backprop slopes for wide networks: `npx tsx scripts/theory-slopes.ts [depth width batch seeds]`.
import * as tf from '@tensorflow/tfjs';
import { normalizeSpec } from '../src/engine/spec.js';
import { runAnalysis } from '../src/engine/analysis.js';
import { initParameters } from '../src/engine/network.js';
import { networkTheory } from '../src/engine/theory-network.js';
import { fitLogSlope } from '../src/engine/stats.js';
import type { InitializerInput } from '../src/engine/initializers.js';

const [depth = 12, width = 128, batch = 64, seeds = 6] = process.argv.slice(2).map(Number);

const CONFIGS: { label: string; activation: string; init: InitializerInput }[] = [
  { label: 'ReLU + He (plain normal)', activation: 'relu', init: 'he_normal' },
  { label: 'ReLU + Glorot normal', activation: 'relu', init: 'glorot_normal' },
  { label: 'tanh + Glorot normal', activation: 'tanh', init: 'glorot_normal' },
  { label: 'sigmoid + Glorot normal', activation: 'sigmoid', init: 'glorot_normal' },
  { label: 'ReLU + tfjs heNormal (uncorrected)', activation: 'relu', init: { name: 'variance_scaling', scale: 2, mode: 'fan_in', distribution: 'truncated_normal_uncorrected' } },
  { label: 'SELU + LeCun normal', activation: 'selu', init: 'lecun_normal' },
];

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  console.log(`depth ${depth}, width ${width}, batch ${batch}, seeds 1..${seeds}; slopes of ln‖δ‖² per layer toward the input, fitted over the output-side half of the hidden layers on logs averaged over seeds`);
  console.log('| network | χ₁ at q* | predicted | measured | |Δ| | tolerance 0.1·|pred| + 0.02 | agrees |');
  console.log('|---|---|---|---|---|---|---|');
  for (const c of CONFIGS) {
    const logSum = new Array<number>(depth).fill(0);
    let predicted: number[] = [];
    let layers: number[] = [];
    let chi: number | null = null;
    for (let seed = 1; seed <= seeds; seed++) {
      const { spec, dataset } = normalizeSpec({
        seed, network: { depth, width, activation: c.activation, init: { weights: c.init } }, data: { source: 'blobs', features: 16, batchSize: batch },
      });
      const params = initParameters(spec.network, spec.seed);
      const { result, input } = runAnalysis(spec, dataset, {}, params);
      const theory = networkTheory(spec, input, params, result);
      result.layers.forEach((s, l) => { logSum[l]! += Math.log(s.backpropNorm); });
      predicted = theory.layers.map((t) => t.predictedBackpropRelative);
      layers = theory.slopes?.layers ?? [];
      chi = theory.hidden?.chi1 ?? null;
    }
    const measured = 2 * fitLogSlope(logSum.map((s) => Math.exp(s / seeds)), layers)!.slope;
    const pred = 2 * fitLogSlope(predicted, layers)!.slope;
    const tol = 0.1 * Math.abs(pred) + 0.02;
    const diff = Math.abs(measured - pred);
    console.log(`| ${c.label} | ${chi?.toFixed(4) ?? '—'} | ${pred.toFixed(4)} | ${measured.toFixed(4)} | ${diff.toFixed(4)} | ${tol.toFixed(4)} | ${diff <= tol ? 'yes' : 'no'} |`);
  }
}

await main();
