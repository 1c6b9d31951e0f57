// Prints measured vs mean-field-predicted backprop slopes for wide networks, seed by seed statistics included:
// `npx tsx scripts/theory-slopes.ts [depth width batch seeds]` (default: the settings of test/engine/theory-slopes.test.ts).
import { backendOptions } from '../src/config.js';
import { initBackend } from '../src/engine/index.js';
import { SLOPE_CONFIGS, SLOPE_TEST_SETTINGS, measureSlopes, seedRange } from './lib/theory-slopes.js';

const defaults = SLOPE_TEST_SETTINGS;
const [depth = defaults.depth, width = defaults.width, batch = defaults.batch, seeds = defaults.seeds.length] = process.argv.slice(2).map(Number);

async function main(): Promise<void> {
  const backend = await initBackend('auto', backendOptions());
  const settings = { depth, width, batch, seeds: seedRange(1, seeds) };
  console.log(`depth ${depth}, width ${width}, batch ${batch}, seeds 1..${seeds} (${backend.name} backend); slopes of ln‖δ‖² per layer toward the input over the output-side half of the hidden layers, means over seeds`);
  console.log('| network | χ₁ at q* | predicted | measured | mean difference | per-seed sd | tolerance + noise allowance | agrees |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const c of SLOPE_CONFIGS) {
    const r = await measureSlopes(c, settings);
    console.log(`| ${r.label} | ${r.chi1?.toFixed(4) ?? '—'} | ${r.predicted.toFixed(4)} | ${r.measured.toFixed(4)} | ${r.difference.toFixed(4)} | ${r.sd.toFixed(4)} | ${r.tolerance.toFixed(4)} + ${r.noiseAllowance.toFixed(4)} | ${r.agrees ? 'yes' : 'no'} |`);
  }
}

await main();
