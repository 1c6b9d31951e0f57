// The gradlens side of the paired benchmark: one workload set up in this process, one timed sample per request on stdin.
//
//   node dist/bench/sampler.js     (started by bench/run.ts; speaks the protocol of bench/torch_reference.py --serve)
//
// Requests, one JSON object per line on stdin; answers on stdout in lines starting "@@bench " (anything
// else on stdout, such as a library's banner, is ignored by the parent):
//   {"op": "setup", "workload": "MNIST", "backend": "native", "workers": 1, "quick": false}  build + warm up
//   {"op": "sample"}   one timed sample of the workload: {"wallMs", "cpuMs"} (CPU: this whole process)
//   {"op": "exit"}
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MNIST_BIG_BATCH, MNISTX_BURST, mnistAnalysisSpec, sweepSpec, trainingSpec, W2, W3, type BenchBackend, type WorkloadName } from './workloads.js';
import { planFor, timeOnce, warmUp, type WarmupPlan } from './measure.js';
import { transformerAnalysisSpec } from './transformer.js';
import { lstmAnalysisSpec } from './recurrent.js';
import { CNN_WORKLOADS, cnnAnalysisSpec, presetRefusal, type CnnWorkload } from './cnn.js';
import type { BackendChoice } from '../src/engine/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: dist/bench/ when compiled, bench/ under tsx (as bench/run.ts finds it). */
const root = here.includes(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');

interface Setup {
  workload: WorkloadName;
  backend: BenchBackend;
  workers: number;
  quick: boolean;
}

interface Workload {
  /** One sample's work. */
  run(): unknown;
  /** Warm-up runs at least (HTTP workloads need more than their cost suggests: both threads' JITs). */
  minWarmup?: number;
  backend: string;
  tfjsBackend: string;
  /** webgpu: the adapter (vendor, architecture, device, isFallbackAdapter). */
  adapter?: unknown;
  close(): Promise<void>;
}

async function engineWorkload(name: 'W2' | 'W2stats' | 'W3' | 'W3stats', backend: BackendChoice): Promise<Workload> {
  const { initBackend } = await import('../src/engine/index.js');
  const { backendOptions } = await import('../src/config.js');
  const { denseBench } = await import('./engine.js');
  const info = await initBackend(backend, backendOptions());
  const bench = denseBench(name.startsWith('W2') ? W2 : W3);
  return {
    run: name.endsWith('stats') ? bench.stats : bench.step,
    backend: info.name, tfjsBackend: info.tfjsBackend, ...(info.adapter ? { adapter: info.adapter } : {}),
    close: async () => bench.dispose(),
  };
}

/** R18-onnx (bench/onnx-model.ts): the model-analysis task in this process, on the main thread. */
async function onnxModelWorkload(backend: BackendChoice): Promise<Workload> {
  const { initBackend } = await import('../src/engine/index.js');
  const { backendOptions } = await import('../src/config.js');
  const { r18Workload } = await import('./onnx-model.js');
  const info = await initBackend(backend, backendOptions());
  const { run } = await r18Workload(root);
  return { run, minWarmup: 2, backend: info.name, tfjsBackend: info.tfjsBackend, ...(info.adapter ? { adapter: info.adapter } : {}), close: async () => {} };
}

async function httpWorkload(name: Exclude<WorkloadName, 'W2' | 'W2stats' | 'W3' | 'W3stats' | 'R18-onnx'>, backend: BackendChoice, workers: number): Promise<Workload> {
  const { startServer, postJson, waitForJob, call } = await import('./http.js');
  const { TEXTBOOK_CHAIN_EXAMPLE } = await import('../src/schemas/examples.js');
  const server = await startServer(backend, workers);
  const env = server.app.backend;
  // A new seed per request: every analysis draws its weights afresh, as a user's would.
  let seed = 1;
  const job = async (path: string, spec: Record<string, unknown>): Promise<void> => {
    await waitForJob(server.base, (await postJson(server.base, path, spec, 202))['id'] as string);
  };
  const runs: Record<typeof name, { run: () => Promise<unknown>; minWarmup?: number }> = {
    W1: { run: () => postJson(server.base, '/v1/analyses', TEXTBOOK_CHAIN_EXAMPLE), minWarmup: 100 },
    MNIST: { run: () => postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++)), minWarmup: 40 },
    MNISTbig: { run: () => postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++, MNIST_BIG_BATCH)), minWarmup: 10 },
    // The burst with one request in flight per worker.
    MNISTx: {
      run: async () => {
        let next = 0;
        await Promise.all(Array.from({ length: workers }, async () => {
          while (next++ < MNISTX_BURST) await postJson(server.base, '/v1/analyses', mnistAnalysisSpec(seed++));
        }));
      },
      minWarmup: 10,
    },
    SWEEP: { run: () => job('/v1/sweeps', sweepSpec(seed++)) },
    TRAIN: { run: () => job('/v1/trainings', trainingSpec(seed++)) },
    'CNN-resnet20': { run: () => postJson(server.base, '/v1/analyses', cnnAnalysisSpec('CNN-resnet20', seed++)), minWarmup: 10 },
    'CNN-plain20': { run: () => postJson(server.base, '/v1/analyses', cnnAnalysisSpec('CNN-plain20', seed++)), minWarmup: 10 },
    'TF-6block': { run: () => postJson(server.base, '/v1/analyses', transformerAnalysisSpec(seed++)), minWarmup: 5 },
    'LSTM-100': { run: () => postJson(server.base, '/v1/analyses', lstmAnalysisSpec(seed++)), minWarmup: 5 },
  };
  if ((CNN_WORKLOADS as readonly string[]).includes(name)) {
    // A build without the layer-graph code answers 400 for the preset: skip the row saying so, rather than time errors.
    const refusal = presetRefusal(name as CnnWorkload, await call(server.base, 'POST', '/v1/analyses', cnnAnalysisSpec(name as CnnWorkload, 0)));
    if (refusal !== null) {
      await server.close();
      throw new Error(refusal);
    }
  }
  return { ...runs[name], backend: env.name, tfjsBackend: env.tfjsBackend, ...(env.adapter ? { adapter: env.adapter } : {}), close: () => server.close() };
}

async function setUp(req: Setup): Promise<{ workload: Workload; warmup: number }> {
  const backend: BackendChoice = req.backend === 'native-wasm' ? 'native' : req.backend;
  const workload = req.workload === 'W2' || req.workload === 'W2stats' || req.workload === 'W3' || req.workload === 'W3stats'
    ? await engineWorkload(req.workload, backend)
    : req.workload === 'R18-onnx' ? await onnxModelWorkload(backend) : await httpWorkload(req.workload, backend, req.workers);
  const first = await timeOnce(workload.run);
  const base = planFor(first.wallMs, req.quick);
  const plan: WarmupPlan = { ...base, minWarmup: Math.max(base.minWarmup, workload.minWarmup ?? 0), maxWarmup: Math.max(base.maxWarmup, workload.minWarmup ?? 0) };
  return { workload, warmup: 1 + (await warmUp(workload.run, plan)) };
}

function reply(obj: unknown): void {
  process.stdout.write(`@@bench ${JSON.stringify(obj)}\n`);
}

async function serve(): Promise<void> {
  let workload: Workload | undefined;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const req = JSON.parse(line) as { op: string } & Setup;
    try {
      if (req.op === 'setup') {
        const done = await setUp(req);
        workload = done.workload;
        reply({ ok: true, backend: workload.backend, tfjsBackend: workload.tfjsBackend, ...(workload.adapter ? { adapter: workload.adapter } : {}), warmup: done.warmup });
      } else if (req.op === 'sample') {
        if (!workload) throw new Error('sample before setup');
        reply(await timeOnce(workload.run));
      } else if (req.op === 'exit') {
        await workload?.close();
        reply({ ok: true });
        break;
      } else reply({ ok: false, reason: `unknown op ${req.op}` });
    } catch (err) {
      reply({ ok: false, reason: err instanceof Error ? err.message.split('\n')[0] : String(err) });
    }
  }
  // Worker threads and keep-alive sockets would hold the process open.
  process.exit(0);
}

await serve();
