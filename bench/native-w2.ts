// Benchmark: one W2 gradient step (20 dense 256x256 layers, batch 128) on the stock tfjs backends and with gradlens's native kernels.
//
//   npx tsx bench/native-w2.ts                         all variants, each in its own process
//   npx tsx bench/native-w2.ts --variants cpu+native   some of them (comma-separated)
//   npx tsx bench/native-w2.ts --variants cpu+native --profile   plus per-kernel time per step
//   options: --warmup N --steps N (defaults depend on the variant: the stock cpu step takes ~1 s)
//
// One step = tf.variableGrads of the MSE loss, then sqrt(sum(square(g))) of every gradient, read back
// once. Each variant runs in a fresh process so that JIT state, GC pressure and kernel registrations
// do not leak from one to the next.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  Rng, loadNativeKernels, nativeKernelStats, nativeKernelsIssue, registerNativeKernels,
  registerNativeWasmMatMul,
} from '../src/engine/index.js';

const LAYERS = 20;
const WIDTH = 256;
const BATCH = 128;
/** Forward + backward ≈ 3 GEMMs of 2·B·W·W flops per layer (the first layer's input gradient is not needed, ignored). */
const STEP_FLOPS = 3 * 2 * BATCH * WIDTH * WIDTH * LAYERS;

interface Variant {
  name: string;
  backend: 'cpu' | 'wasm';
  describe: string;
  warmup: number;
  steps: number;
  setup(): string | undefined; // returns a reason when the variant cannot run
}

const VARIANTS: Variant[] = [
  { name: 'cpu', backend: 'cpu', describe: 'stock cpu (pure JS)', warmup: 2, steps: 5, setup: () => undefined },
  { name: 'wasm', backend: 'wasm', describe: 'stock wasm (XNNPACK, SIMD)', warmup: 10, steps: 20, setup: () => undefined },
  {
    name: 'cpu+native-matmul', backend: 'cpu', describe: 'cpu + OpenBLAS BatchMatMul', warmup: 30, steps: 50,
    setup: () => (registerNativeKernels(tf, { kernels: ['BatchMatMul'] }).length > 0 ? undefined : nativeKernelsIssue()),
  },
  {
    name: 'cpu+native', backend: 'cpu', describe: 'cpu + OpenBLAS BatchMatMul + native element-wise/Sum', warmup: 30, steps: 50,
    setup: () => (registerNativeKernels(tf).length > 0 ? undefined : nativeKernelsIssue()),
  },
  {
    name: 'wasm+native-matmul', backend: 'wasm', describe: 'wasm + OpenBLAS BatchMatMul on the wasm heap', warmup: 30, steps: 50,
    setup: () => (registerNativeWasmMatMul(tf) ? undefined : nativeKernelsIssue()),
  },
];

interface Result {
  variant: string;
  ok: boolean;
  reason?: string;
  medianMs?: number;
  minMs?: number;
  gflops?: number;
  normSum?: number;
  steps?: number;
  warmup?: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Per-kernel wall time, by wrapping every registered kernel of the backend (call after setup). */
function installProfiler(backend: string): Map<string, { calls: number; ms: number }> {
  const table = new Map<string, { calls: number; ms: number }>();
  for (const k of tf.getKernelsForBackend(backend)) {
    const inner = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: ((args: Parameters<typeof inner>[0]) => {
        const t0 = performance.now();
        const out = inner(args);
        const dt = performance.now() - t0;
        const row = table.get(k.kernelName) ?? { calls: 0, ms: 0 };
        row.calls++;
        row.ms += dt;
        table.set(k.kernelName, row);
        return out;
      }) as typeof inner,
    });
  }
  return table;
}

async function runVariant(v: Variant): Promise<Result> {
  if (v.backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(v.backend))) return { variant: v.name, ok: false, reason: `backend ${v.backend} unavailable` };
  await tf.ready();
  const reason = v.setup();
  if (reason !== undefined) return { variant: v.name, ok: false, reason };
  const profile = process.argv.includes('--profile') ? installProfiler(v.backend) : undefined;

  const rng = new Rng(20240501);
  const normal = (n: number, scale: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
    return out;
  };
  const weights: tf.Variable[] = [];
  const biases: tf.Variable[] = [];
  for (let l = 0; l < LAYERS; l++) {
    weights.push(tf.variable(tf.tensor2d(normal(WIDTH * WIDTH, Math.sqrt(2 / WIDTH)), [WIDTH, WIDTH]), true, `w${l}`));
    biases.push(tf.variable(tf.zeros([WIDTH]), true, `b${l}`));
  }
  const x = tf.tensor2d(normal(BATCH * WIDTH, 1), [BATCH, WIDTH]);
  const y = tf.tensor2d(normal(BATCH * WIDTH, 1), [BATCH, WIDTH]);

  const step = (): Float32Array => {
    const norms = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => {
        let h: tf.Tensor2D = x;
        for (let l = 0; l < LAYERS; l++) {
          h = tf.add(tf.matMul(h, weights[l]!), biases[l]!);
          if (l < LAYERS - 1) h = tf.relu(h);
        }
        return tf.losses.meanSquaredError(y, h) as tf.Scalar;
      });
      return tf.stack(Object.values(grads).map((g) => tf.sqrt(tf.sum(tf.square(g)))));
    });
    const values = norms.dataSync() as Float32Array;
    norms.dispose();
    return values;
  };

  const warmup = Number(arg('warmup') ?? v.warmup);
  const steps = Number(arg('steps') ?? v.steps);
  for (let i = 0; i < warmup; i++) step();
  profile?.clear();
  const times: number[] = [];
  let norms: Float32Array = new Float32Array(0);
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    norms = step();
    times.push(performance.now() - t0);
  }
  if (profile) {
    const rows = [...profile].sort((a, b) => b[1].ms - a[1].ms);
    console.error(`\nper-step kernel time, ${v.name} (${steps} steps):`);
    for (const [name, r] of rows) {
      console.error(`  ${name.padEnd(20)} ${(r.calls / steps).toFixed(0).padStart(5)} calls ${(r.ms / steps).toFixed(2).padStart(9)} ms`);
    }
    if (v.backend === 'cpu' || v.name.includes('native')) console.error('  native/fallback counts:', JSON.stringify(nativeKernelStats()));
  }
  const med = median(times);
  return {
    variant: v.name,
    ok: true,
    medianMs: med,
    minMs: Math.min(...times),
    gflops: STEP_FLOPS / (med * 1e6),
    normSum: norms.reduce((s, n) => s + n, 0),
    steps,
    warmup,
  };
}

async function child(name: string): Promise<void> {
  const v = VARIANTS.find((x) => x.name === name);
  const result: Result = v ? await runVariant(v) : { variant: name, ok: false, reason: 'unknown variant' };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

function parent(): void {
  const wanted = (arg('variants') ?? VARIANTS.map((v) => v.name).join(',')).split(',');
  const native = loadNativeKernels();
  console.log(`W2: ${LAYERS} dense ${WIDTH}x${WIDTH} layers, batch ${BATCH}, ReLU, MSE; ${(STEP_FLOPS / 1e9).toFixed(2)} GFLOP per step`);
  console.log(`native addon: ${native.loaded ? native.blas : `not loaded (${native.reason})`}`);
  console.log(`node ${process.version}, tfjs ${tf.version_core}\n`);
  const passthrough = ['warmup', 'steps'].flatMap((k) => (arg(k) !== undefined ? [`--${k}`, arg(k)!] : []));
  if (process.argv.includes('--profile')) passthrough.push('--profile');
  const rows: Result[] = [];
  for (const name of wanted) {
    const run = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--child', name, ...passthrough],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
    );
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    const result: Result = line
      ? (JSON.parse(line.slice(7)) as Result)
      : { variant: name, ok: false, reason: `child exited with ${run.status ?? run.signal}` };
    rows.push(result);
    const desc = VARIANTS.find((v) => v.name === name)?.describe ?? '';
    console.log(
      result.ok
        ? `${name.padEnd(20)} ${result.medianMs!.toFixed(1).padStart(8)} ms median (min ${result.minMs!.toFixed(1)})  ` +
            `${result.gflops!.toFixed(1).padStart(6)} GFLOP/s  norms Σ ${result.normSum!.toPrecision(7)}  ` +
            `[${result.warmup} warm-up, ${result.steps} steps]  ${desc}`
        : `${name.padEnd(20)} skipped: ${result.reason}`,
    );
  }
}

const childName = arg('child');
if (childName !== undefined) await child(childName);
else parent();
