// Per-kernel time of one measured batch of an imported ONNX model (measureImported: forward, backward, read-back),
// e.g. the R18-onnx bench row's ResNet-18 export.
//
//   /usr/bin/python3 scripts/onnx-fixtures.py --resnet18 --out /tmp/r18 && npx tsx bench/profile-onnx.ts /tmp/r18/resnet18 [native|wasm|cpu] [--runs N]
//
// Reads <base>.onnx and the batch in <base>.json (scripts/onnx-fixtures.py writes both), wraps every kernel of the
// backend with a timer after one warm-up batch, then measures N batches.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { backendOptions } from '../src/config.js';
import { initBackend, importOnnx, measureImported, type BackendChoice } from '../src/engine/index.js';
import { printKernelTable, timeKernels } from './kernel-timer.js';

const base = process.argv[2];
if (!base) throw new Error('usage: npx tsx bench/profile-onnx.ts <folder>/<name> [native|wasm|cpu] [--runs N]');
const backend = (process.argv[3] && !process.argv[3].startsWith('--') ? process.argv[3] : 'native') as BackendChoice;
const runsAt = process.argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(process.argv[runsAt + 1]) : 2;
const info = await initBackend(backend, backendOptions());
const fixture = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { loss: string; input: { shape: number[]; data: number[] }; target: number[]; targetShape: number[] };
const model = importOnnx(readFileSync(`${base}.onnx`));
const input = tf.tensor(fixture.input.data, fixture.input.shape);
const target = fixture.loss === 'mse' ? tf.tensor(fixture.target, fixture.targetShape) : tf.tensor1d(fixture.target, 'int32');
const loss = fixture.loss === 'mse' ? ('mse' as const) : ('categorical_crossentropy' as const);

await measureImported(model, { input, target, loss });
const table = timeKernels(info.tfjsBackend);
const t0 = performance.now();
for (let i = 0; i < runs; i++) await measureImported(model, { input, target, loss });
const perRun = (performance.now() - t0) / runs;
console.log(`${base}: one measured batch [${fixture.input.shape.join('x')}] on ${info.name} (tfjs ${info.tfjsBackend}): ${perRun.toFixed(0)} ms (${runs} runs)`);
const total = printKernelTable(table, runs, 5);
console.log(`  kernels total ${total.toFixed(0)} ms; outside kernels ${(perRun - total).toFixed(0)} ms`);
tf.dispose([input, target]);
model.dispose();
