// Parity of the ONNX importer with PyTorch, and its time, on exports made by scripts/onnx-fixtures.py:
// for each <name>.onnx + <name>.json in a folder, the worst relative error of the loss and of every
// parameter's gradient norm against PyTorch's float64 autograd, and the median wall time of one measured
// batch (forward, backward, read-back) over a few runs after a warm-up.
//   npx tsx scripts/onnx-parity.ts [folder] [backend] [timed runs]     (default: test/fixtures/onnx, native, 3)
//   /usr/bin/python3 scripts/onnx-fixtures.py --resnet18 --out /tmp/r18 && npx tsx scripts/onnx-parity.ts /tmp/r18
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { backendOptions } from '../src/config.js';
import { initBackend, importOnnx, measureImported, type BackendChoice } from '../src/engine/index.js';

interface Fixture {
  name: string; loss: string; input: { shape: number[]; data: number[] }; target: number[]; targetShape: number[];
  loss64: number; parameters: { name: string; gradNorm32: number; gradNorm64: number }[];
}

const dir = process.argv[2] ?? 'test/fixtures/onnx';
const runs = Number(process.argv[4] ?? 3);
const backend = await initBackend((process.argv[3] ?? 'native') as BackendChoice, backendOptions());
console.log(`backend ${backend.name} (tfjs ${tf.getBackend()})`);
const rel = (a: number, b: number): number => (b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b));

for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const f = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Fixture;
  const model = importOnnx(readFileSync(join(dir, `${f.name}.onnx`)));
  const input = tf.tensor(f.input.data, f.input.shape);
  const target = f.loss === 'mse' ? tf.tensor(f.target, f.targetShape) : tf.tensor1d(f.target, 'int32');
  const loss = f.loss === 'mse' ? 'mse' as const : 'categorical_crossentropy' as const;
  const first = performance.now();
  const m = await measureImported(model, { input, target, loss });
  const firstMs = performance.now() - first;
  const errors = f.parameters.map((p) => rel(m.parameters.find((q) => q.name === p.name)!.gradNorm, p.gradNorm64));
  const worst = f.parameters[errors.indexOf(Math.max(...errors))]!;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await measureImported(model, { input, target, loss });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const timing = runs > 0 ? `median of ${runs} ${times[Math.floor(runs / 2)]!.toFixed(0)} ms` : `first (only) run ${firstMs.toFixed(0)} ms`;
  console.log(`${f.name}: ${f.parameters.length} parameters (${model.parameterCount()} values), loss rel err ${rel(m.loss, f.loss64).toExponential(2)}, `
    + `worst gradNorm rel err ${Math.max(...errors).toExponential(2)} (${worst.name}; PyTorch's own float32 there: ${rel(worst.gradNorm32, worst.gradNorm64).toExponential(2)}), `
    + `${timing} per batch [${f.input.shape.join('x')}]`);
  tf.dispose([input, target]);
  model.dispose();
}
