// Micro-benchmark (not a test): the native conv/pool kernels against the stock tfjs cpu kernels and PyTorch, on ResNet-20-sized layers.
//
//   OPENBLAS_NUM_THREADS=1 npx tsx scripts/conv-bench.ts [--name label] [--only Conv2D,ResNet20Step] [--no-stock] [--stock-samples 2] [--budget-ms 4000] [--profile]
//
// Each row calls one kernel function directly ({inputs, backend, attrs}, as tfjs dispatches it): the
// native one registered by registerNativeKernels, and the stock one captured before it. PyTorch
// (scripts/conv_bench_torch.py, one thread) runs the same kernel on the same shapes in its own NCHW
// layout, in a process kept alive and sampled alternately with gradlens: a native sample, a PyTorch
// sample, ... The row reports the median of the per-pair ratios native / PyTorch with quartiles, for wall
// and for process CPU time. Stock kernels take seconds per call here, so they get a few unpaired samples
// (stock / native is then a ratio of medians). Layers: batch 64, 3x3 convolutions, stride 1, 'same', at
// ResNet-20's three stage sizes 28x28x16, 14x14x32, 7x7x64 (MNIST-sized inputs); pooling 2x2/2 and
// batch-norm statistics (Mean and tf.moments over [0, 1, 2]) at the first stage's size; and a whole
// ResNet-20 training step (forward + every weight gradient) on MNIST-sized batches of 64 in both.
// Raw samples go to bench/results/<date>-conv-kernels[-label].json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadNativeKernels, nativeKernelStats, registerNativeKernels } from '../src/engine/index.js';
import { Side, runPairs, summarize, type Pair } from '../bench/pairs.js';
import { quantile, timeOnce, type Sample } from '../bench/measure.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const NAME = flag('--name');
const STOCK = !args.includes('--no-stock');
const STOCK_SAMPLES = Number(flag('--stock-samples') ?? 2);
const BUDGET_MS = Number(flag('--budget-ms') ?? 4000);
const ONLY = flag('--only')?.split(',');
const PROFILE = args.includes('--profile');

type Shape4 = [number, number, number, number];
interface Row {
  kernel: string;
  layer: string;
  x: Shape4;
  w?: Shape4;
  /** The PyTorch request beyond the shapes. */
  torch: Record<string, unknown>;
  /** Inputs and attrs of the tfjs kernel call, or a whole tfjs computation (ConvLayerStep, Moments). */
  call: () => { name: string; inputs: Record<string, tf.Tensor>; attrs: Record<string, unknown> } | { run: () => tf.Tensor[] };
}

const LAYERS: { layer: string; x: Shape4; w: Shape4 }[] = [
  { layer: '28x28x16', x: [64, 28, 28, 16], w: [3, 3, 16, 16] },
  { layer: '14x14x32', x: [64, 14, 14, 32], w: [3, 3, 32, 32] },
  { layer: '7x7x64', x: [64, 7, 7, 64], w: [3, 3, 64, 64] },
];

let seed = 1;
const randn = (shape: number[]): tf.Tensor => tf.randomNormal(shape, 0, 1, 'float32', seed++);

function rows(): Row[] {
  const out: Row[] = [];
  for (const { layer, x: xs, w: ws } of LAYERS) {
    const x = randn(xs), w = randn(ws), dy = randn(xs.slice(0, 3).concat(ws[3]!));
    const conv = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 };
    const torch = { stride: 1, pad: 1 };
    out.push(
      { kernel: 'Conv2D', layer, x: xs, w: ws, torch, call: () => ({ name: 'Conv2D', inputs: { x, filter: w }, attrs: conv }) },
      { kernel: 'Conv2DBackpropInput', layer, x: xs, w: ws, torch, call: () => ({ name: 'Conv2DBackpropInput', inputs: { dy, filter: w }, attrs: { ...conv, inputShape: xs } }) },
      { kernel: 'Conv2DBackpropFilter', layer, x: xs, w: ws, torch, call: () => ({ name: 'Conv2DBackpropFilter', inputs: { x, dy }, attrs: { ...conv, filterShape: ws } }) },
      {
        kernel: 'ConvLayerStep', layer, x: xs, w: ws, torch,
        call: () => ({ run: () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), dy)))([x, w]) }),
      },
    );
  }
  const xs = LAYERS[0]!.x, x = randn(xs);
  const pooled = tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'), dy = randn(pooled.shape);
  const pool = { filterSize: 2, strides: 2, pad: 'valid' };
  const torch = { size: 2, stride: 2, pad: 0 };
  out.push(
    { kernel: 'MaxPool', layer: '28x28x16', x: xs, torch, call: () => ({ name: 'MaxPool', inputs: { x }, attrs: pool }) },
    { kernel: 'MaxPoolGrad', layer: '28x28x16', x: xs, torch, call: () => ({ name: 'MaxPoolGrad', inputs: { dy, input: x, output: pooled }, attrs: pool }) },
    { kernel: 'AvgPool', layer: '28x28x16', x: xs, torch, call: () => ({ name: 'AvgPool', inputs: { x }, attrs: pool }) },
    { kernel: 'AvgPoolGrad', layer: '28x28x16', x: xs, torch, call: () => ({ name: 'AvgPoolGrad', inputs: { dy, input: x }, attrs: pool }) },
    { kernel: 'Mean', layer: '28x28x16', x: xs, torch: {}, call: () => ({ name: 'Mean', inputs: { x }, attrs: { axis: [0, 1, 2], keepDims: false } }) },
    { kernel: 'Moments', layer: '28x28x16', x: xs, torch: {}, call: () => ({ run: () => { const m = tf.moments(x, [0, 1, 2]); return [m.mean, m.variance]; } }) },
  );
  out.push({ kernel: 'ResNet20Step', layer: '64x28x28x1', x: [64, 28, 28, 1], torch: {}, call: () => ({ run: resnet20Step(64) }) });
  return out;
}

/**
 * ResNet-20 on [n, 28, 28, 1] as a layer graph of stock tf ops would run it: stages 16/32/64 of three
 * blocks, batch-statistics BN without affine (tf.moments over [0, 1, 2]), 1x1 stride-2 projections,
 * global average pool, dense 64 -> 10; tf.grads of sum(logits * r) for every weight.
 * scripts/conv_bench_torch.py's resnet20_step is the same network.
 */
function resnet20Step(n: number): () => tf.Tensor[] {
  const ws: tf.Tensor[] = [];
  const convW = (cin: number, cout: number, k: number): number => {
    ws.push(tf.mul(randn([k, k, cin, cout]), Math.sqrt(2 / (k * k * cin))));
    return ws.length - 1;
  };
  const stem = convW(1, 16, 3);
  const plan: { a: number; b: number; proj?: number; stride: number }[] = [];
  let cin = 16;
  [16, 32, 64].forEach((cout, stage) => {
    for (let block = 0; block < 3; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      const proj = stride === 2 ? convW(cin, cout, 1) : undefined;
      plan.push({ a: convW(cin, cout, 3), b: convW(cout, cout, 3), stride, ...(proj !== undefined ? { proj } : {}) });
      cin = cout;
    }
  });
  ws.push(randn([64, 10]));
  const x = randn([n, 28, 28, 1]) as tf.Tensor4D, r = randn([n, 10]);
  const bn = (v: tf.Tensor4D): tf.Tensor4D => {
    const m = tf.moments(v, [0, 1, 2], true);
    return tf.div(tf.sub(v, m.mean), tf.sqrt(tf.add(m.variance, 1e-5)));
  };
  const loss = (...w: tf.Tensor[]): tf.Tensor => {
    const conv = (h: tf.Tensor4D, i: number, stride: number): tf.Tensor4D => tf.conv2d(h, w[i] as tf.Tensor4D, stride, 'same');
    let h: tf.Tensor4D = tf.relu(bn(conv(x, stem, 1)));
    for (const blk of plan) {
      const y = bn(conv(tf.relu(bn(conv(h, blk.a, blk.stride))), blk.b, 1));
      const short = blk.proj === undefined ? h : conv(h, blk.proj, 2);
      h = tf.relu(tf.add(y, short)) as tf.Tensor4D;
    }
    const logits = tf.matMul(tf.mean(h, [1, 2]), w[w.length - 1]!);
    return tf.sum(tf.mul(logits, r));
  };
  return () => tf.grads(loss)(ws);
}

type KernelFn = (args: { inputs: Record<string, tf.Tensor>; backend: tf.KernelBackend; attrs: Record<string, unknown> }) => tf.TensorInfo;

/** A timed unit: one kernel call (its output freed) or one tfjs computation (tidied). */
function unit(row: Row, kernels: Map<string, KernelFn>): () => void {
  const c = row.call();
  if ('run' in c) return () => tf.dispose(c.run());
  const fn = kernels.get(c.name)!;
  const backend = tf.backend();
  return () => {
    const info = fn({ inputs: c.inputs, backend, attrs: c.attrs });
    backend.disposeData(info.dataId);
  };
}

const NAMES = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool', 'AvgPoolGrad', 'Mean'];
const capture = (): Map<string, KernelFn> => new Map(NAMES.map((n) => [n, tf.getKernel(n, 'cpu')!.kernelFunc as unknown as KernelFn]));

/** The commit measured, with '+dirty' when the work tree differs from it. */
function gitCommit(): string {
  const git = (...a: string[]): string => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    return git('rev-parse', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

/** --profile: where one call's time goes, by tfjs kernel (tf.profile's kernel times, summed per name). */
async function profile(row: Row, fn: () => void): Promise<void> {
  fn();
  const info = await tf.profile(fn);
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(await k.kernelTimeMs);
    e.calls++;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((t, e) => t + e.ms, 0);
  console.log(`profile ${row.kernel} ${row.layer}: ${total.toFixed(1)} ms in kernels; ` + [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14)
    .map(([n, e]) => `${n} ${e.ms.toFixed(1)} (${e.calls})`).join(', '));
}

async function main(): Promise<void> {
  const native = loadNativeKernels();
  if (!native.loaded) throw new Error(native.reason);
  await tf.setBackend('cpu');
  const stockKernels = capture();
  if (registerNativeKernels(tf).length === 0) throw new Error('native kernels did not register');
  const nativeKernels = capture();
  const torch = new Side('/usr/bin/python3', [join(ROOT, 'scripts', 'conv_bench_torch.py')], {
    ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1',
  });
  const results: Record<string, unknown>[] = [];
  console.log(`gradlens native (${native.blas}); PyTorch one thread; load ${(await import('node:os')).loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| kernel | layer | native ms (CPU) | PyTorch ms (CPU) | native / PyTorch wall, median [q25-q75] | CPU ratio | stock ms | stock / native |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows().filter((r) => ONLY === undefined || ONLY.includes(r.kernel))) {
    const fn = unit(row, nativeKernels);
    if (PROFILE) await profile(row, fn);
    const setup = await torch.request<{ ok?: boolean; reason?: string }>({ op: 'setup', kernel: row.kernel, x: row.x, w: row.w, ...row.torch });
    if (setup.ok !== true) throw new Error(`PyTorch setup ${row.kernel}: ${setup.reason}`);
    for (let i = 0; i < 5; i++) {
      fn();
      await torch.request({ op: 'sample' });
    }
    const pairs: Pair[] = await runPairs(() => timeOnce(fn), () => torch.request<Sample>({ op: 'sample' }), { budgetMs: BUDGET_MS, minPairs: 10, maxPairs: 200 });
    const summary = summarize(pairs, 1);
    const stockSamples: Sample[] = [];
    if (STOCK && !('run' in row.call())) {
      const stockFn = unit(row, stockKernels);
      for (let i = 0; i < STOCK_SAMPLES; i++) stockSamples.push(await timeOnce(stockFn));
    }
    const stockMs = stockSamples.length ? quantile(stockSamples.map((s) => s.wallMs), 0.5) : NaN;
    // One pair per entry, [native wall, native CPU, PyTorch wall, PyTorch CPU] in ms to the microsecond.
    const us = (v: number | undefined): number => Math.round((v ?? NaN) * 1000) / 1000;
    const samples = pairs.map((p) => [us(p.gradlens.wallMs), us(p.gradlens.cpuMs), us(p.torch?.wallMs), us(p.torch?.cpuMs)]);
    results.push({ kernel: row.kernel, layer: row.layer, x: row.x, w: row.w, summary, samples, stockSamples: stockSamples.map((p) => [us(p.wallMs), us(p.cpuMs)]) });
    const f = (v: number | undefined, d = 2): string => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
    const r = summary.ratio, cr = summary.cpuRatio;
    console.log(`| ${row.kernel} | ${row.layer} | ${f(summary.gradlens.medianMs)} (${f(summary.gradlens.cpuMedianMs)}) | ${f(summary.torch?.medianMs)} (${f(summary.torch?.cpuMedianMs)}) | ` +
      `${f(r?.median)} [${f(r?.q25)}-${f(r?.q75)}] | ${f(cr?.median)} | ${f(stockMs, 0)} | ${stockSamples.length ? f(stockMs / summary.gradlens.medianMs, 0) : '-'} |`);
  }
  await torch.close();
  const stats = nativeKernelStats();
  const date = new Date().toISOString().slice(0, 10);
  const file = join(ROOT, 'bench', 'results', `${date}-conv-kernels${NAME ? `-${NAME}` : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  const os = await import('node:os');
  writeFileSync(file, `${JSON.stringify({
    command: `npx tsx scripts/conv-bench.ts ${args.join(' ')}`.trim(), date: new Date().toISOString(), blas: native.blas, commit: gitCommit(),
    threads: { gradlens: 'OpenBLAS 1 thread, main thread', torch: 'torch.set_num_threads(1), OPENBLAS/OMP/MKL_NUM_THREADS=1' },
    cpus: os.cpus().length, loadavgAfter: os.loadavg(), nativeKernelStats: stats,
    samplesAre: '[native wall, native CPU, PyTorch wall, PyTorch CPU] ms per pair; stockSamples: [wall, CPU] ms',
    rows: results,
  }).replace(/,\{"kernel"/g, ',\n{"kernel"')}\n`);
  console.log(`raw samples: ${file}`);
}

await main();
