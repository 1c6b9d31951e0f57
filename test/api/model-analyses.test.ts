// POST /v1/analyses with "model": {"id"} over app.inject: the uploaded PyTorch exports give PyTorch's own
// float64 loss and gradient norms (the committed fixtures of scripts/onnx-fixtures.py) to 1e-3 relative, for
// inline NCHW data, eval mode and MNIST digits (the fixture PyTorch computed on the batch gradlens draws);
// synchronously and with Prefer: respond-async; the verdict and the expect gate; generated inputs of the
// model's shape; bad requests are 400/422 naming the field; jobs keep the model id and survive a restart.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { TEST_BACKEND, testApp } from '../support/app.js';
import { onTestDeployment } from '../support/api-mode.js';
import { violations } from '../support/contract.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { Runner } from '../../src/jobs/runner.js';
import { until } from '../support/until.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const dirOf = (name: string): string => join(HERE, '..', 'fixtures', name === 'mnist_cnn' ? 'onnx-mnist' : 'onnx');
const file = (name: string): Buffer => readFileSync(join(dirOf(name), `${name}.onnx`));

interface Fixture {
  input: { shape: number[]; data: number[] };
  target: number[];
  targetShape: number[];
  loss64: number;
  parameters: { name: string; shape: number[]; gradNorm64: number }[];
  eval?: { loss64: number; gradNorm64: Record<string, number> };
  mnist?: { batchSize: number; seed: number };
}
const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(dirOf(name), `${name}.json`), 'utf8')) as Fixture;

/** The flat fixture input as nested arrays of its shape: what a client sends inline. */
function nested(data: number[], shape: number[]): unknown {
  if (shape.length === 1) return data.slice(0, shape[0]);
  const step = data.length / shape[0]!;
  return Array.from({ length: shape[0]! }, (_, i) => nested(data.slice(i * step, (i + 1) * step), shape.slice(1)));
}
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const inline = (f: Fixture) => ({ source: 'inline', x: nested(f.input.data, f.input.shape), y: f.targetShape.length > 1 ? nested(f.target, f.targetShape) : f.target });

interface Param { name: string; shape: number[]; norm: number; gradNorm: number; gradRms: number; gradMaxAbs: number }
interface Result {
  loss: number;
  batchSize: number;
  mode: string;
  layers: { name: string; op: string; parameters: Param[]; backpropNorm: number; flags: string[] }[];
  parameters: Param[];
  summary: { verdict: string; reasons: string[]; backpropFirstToLastRatio: number; firstToLastRatio: number };
  checks?: { name: string; passed: boolean }[];
  passed?: boolean;
}

let app: FastifyInstance;
const ids = new Map<string, string>();
const upload = async (target: FastifyInstance, name: string): Promise<string> => {
  const res = await target.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: file(name) });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
};
const analyse = (payload: object, headers: Record<string, string> = {}, target = app) => target.inject({ method: 'POST', url: '/v1/analyses', headers, payload });

/** Every parameter's gradient norm, and the loss, against PyTorch's float64 figures. */
function expectPyTorch(r: Result, loss64: number, grads: Record<string, number>): void {
  expect(rel(r.loss, loss64)).toBeLessThan(1e-3);
  expect(r.parameters.map((p) => p.name).sort()).toEqual(Object.keys(grads).sort());
  for (const p of r.parameters) expect(rel(p.gradNorm, grads[p.name]!), p.name).toBeLessThan(1e-3);
  // Each parameter also sits under its layer, with the same figures.
  for (const l of r.layers) for (const p of l.parameters) expect(p).toEqual(r.parameters.find((q) => q.name === p.name));
}
const trainGrads = (f: Fixture): Record<string, number> => Object.fromEntries(f.parameters.map((p) => [p.name, p.gradNorm64]));

beforeAll(async () => {
  app = await testApp();
  for (const name of ['mlp', 'cnn_bn', 'residual', 'gelu_ln', 'mnist_cnn', 'regression']) ids.set(name, await upload(app, name));
});
afterAll(async () => {
  await app.close();
});

describe('POST /v1/analyses with model', () => {
  for (const name of ['mlp', 'cnn_bn', 'residual', 'gelu_ln']) {
    it(`${name}: inline data in the model's layout gives PyTorch's loss and gradient norms (state_dict names)`, async () => {
      const f = fixture(name);
      const res = await analyse({ model: { id: ids.get(name) }, data: inline(f) });
      expect(res.statusCode, res.body).toBe(200);
      const job = res.json();
      expect(res.headers['content-location']).toBe(`/v1/jobs/${job.id}`);
      expect(job).toMatchObject({ kind: 'analysis', status: 'succeeded', spec: { model: { id: ids.get(name) }, loss: 'categorical_crossentropy', mode: 'train' } });
      const r = job.result as Result;
      expect(r.batchSize).toBe(f.input.shape[0]);
      expectPyTorch(r, f.loss64, trainGrads(f));
      for (const l of r.layers) expect(l.backpropNorm).toBeGreaterThan(0);
      expect(['healthy', 'vanishing', 'exploding']).toContain(r.summary.verdict);
      expect(r.summary.reasons.length).toBeGreaterThan(0);
    });
  }

  it("mode eval: BatchNormalization on running statistics, PyTorch's eval-mode figures", async () => {
    const f = fixture('residual');
    const res = await analyse({ model: { id: ids.get('residual') }, data: inline(f), mode: 'eval' });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().result as Result;
    expect(r).toMatchObject({ mode: 'eval', batchNorm: 'running' });
    expectPyTorch(r, f.eval!.loss64, f.eval!.gradNorm64);
  });

  it("data mnist: a 1×28×28 model gets the digits PyTorch's figures were computed on", async () => {
    const f = fixture('mnist_cnn');
    const res = await analyse({ seed: f.mnist!.seed, model: { id: ids.get('mnist_cnn') }, data: { source: 'mnist', batchSize: f.mnist!.batchSize } });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().result as Result;
    expect(r.batchSize).toBe(8);
    expectPyTorch(r, f.loss64, trainGrads(f));
    // Another seed draws other digits: other figures.
    const other = (await analyse({ seed: f.mnist!.seed + 1, model: { id: ids.get('mnist_cnn') }, data: { source: 'mnist', batchSize: 8 } })).json().result as Result;
    expect(rel(other.loss, f.loss64)).toBeGreaterThan(1e-3);
  });

  it('6 × parameters × examples over GRADLENS_MAX_ANALYSIS_FLOPS: 422 naming it before anything runs; asynchronously it fits', async () => {
    const f = fixture('mlp');
    const parameters = f.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    const examples = f.input.shape[0]!;
    const small = await testApp({ limits: { maxAnalysisFlops: 6 * parameters * examples - 1 } });
    try {
      const id = await upload(small, 'mlp');
      const res = await analyse({ model: { id }, data: inline(f) }, {}, small);
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json()).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxAnalysisFlops', variable: 'GRADLENS_MAX_ANALYSIS_FLOPS', max: 6 * parameters * examples - 1 });
      expect(res.json().message).toContain(`${parameters} parameters on ${examples} examples`);
      expect((await small.inject({ url: '/v1/jobs?limit=10' })).json().jobs).toEqual([]);
      expect((await analyse({ model: { id }, data: inline(f) }, { prefer: 'respond-async' }, small)).statusCode).toBe(202);
    } finally {
      await small.close();
    }
  });

  it('Prefer: respond-async: 202 with the queued job, which then succeeds with the same figures', async () => {
    const f = fixture('cnn_bn');
    const res = await analyse({ model: { id: ids.get('cnn_bn') }, data: inline(f) }, { prefer: 'respond-async' });
    expect(res.statusCode, res.body).toBe(202);
    const location = res.headers.location as string;
    expect(res.json()).toMatchObject({ kind: 'analysis', spec: { model: { id: ids.get('cnn_bn') } } });
    let job = res.json();
    for (let i = 0; i < 200 && job.status !== 'succeeded' && job.status !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = (await app.inject({ url: location })).json();
    }
    expect(job.status).toBe('succeeded');
    expectPyTorch(job.result as Result, f.loss64, trainGrads(f));
  });

  it('gaussian_images: N(0, noise²) inputs of the declared shape, reproducible from the seed', async () => {
    const body = { seed: 7, model: { id: ids.get('cnn_bn') }, data: { source: 'gaussian_images', batchSize: 5 } };
    const a = (await analyse(body)).json();
    const b = (await analyse(body)).json();
    const c = (await analyse({ ...body, seed: 8 })).json();
    expect(a.status).toBe('succeeded');
    expect(a.spec.data).toEqual({ source: 'gaussian_images', batchSize: 5, batches: 1, noise: 1 });
    expect((a.result as Result).batchSize).toBe(5);
    expect(b.result).toEqual(a.result);
    expect(c.result.loss).not.toBe(a.result.loss);
  });

  it('expect gates the model as it gates networks: checks and passed', async () => {
    const f = fixture('mlp');
    const res = await analyse({ model: { id: ids.get('mlp') }, data: inline(f), expect: { maxLoss: f.loss64 / 2, verdict: ['healthy', 'vanishing', 'exploding'] } });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json().result as Result;
    expect(r.passed).toBe(false);
    expect(r.checks).toEqual([
      expect.objectContaining({ name: 'verdict', passed: true }),
      expect.objectContaining({ name: 'maxLoss', passed: false }),
    ]);
  });

  it('mse on a regression export', async () => {
    const f = fixture('regression');
    const res = await analyse({ model: { id: ids.get('regression') }, data: inline(f), loss: 'mse' });
    expect(res.statusCode, res.body).toBe(200);
    expectPyTorch(res.json().result as Result, f.loss64, trainGrads(f));
  });

  it('bad requests: 400 or 422 naming the field, never a 500, nothing run', async () => {
    const id = ids.get('cnn_bn')!;
    const gen = { source: 'gaussian_images', batchSize: 2 };
    const cases: [object, number, string][] = [
      [{ model: { id: 'no-such-model' }, data: gen }, 400, 'model.id'],
      [{ model: { id }, network: { depth: 2 }, data: gen }, 400, 'network'],
      [{ model: { id }, data: gen, whatIf: true }, 400, 'whatIf'],
      [{ model: { id }, data: { source: 'spirals' } }, 400, 'data.source'],
      [{ model: { id }, data: { ...gen, batches: 2 } }, 400, 'data.batches'],
      [{ model: { id }, data: { ...gen, height: 10 } }, 400, 'data.height'],
      [{ model: { id }, data: { source: 'inline', x: inline(fixture('cnn_bn')).x } }, 400, 'data.y'],
      [{ model: { id }, data: gen, loss: 'binary_crossentropy' }, 400, 'loss'],
      [{ model: { id }, data: { source: 'mnist', batchSize: 2 } }, 400, 'data.source'],
      [{ model: { id }, data: { source: 'inline', x: [[[[1, 2]]]], y: [0] } }, 400, 'data.x'],
      [{ model: { id }, data: { source: 'gaussian_images', batchSize: 5000 } }, 422, ''],
      [{ data: gen }, 400, 'network'],
    ];
    for (const [body, status, field] of cases) {
      const res = await analyse(body);
      expect(res.statusCode, `${JSON.stringify(body)}: ${res.body}`).toBe(status);
      if (field) expect(res.json().field, JSON.stringify(body)).toBe(field);
      if (status === 422) expect(res.json().message).toContain('GRADLENS_MAX_BATCH_SIZE');
    }
  });

  it('every response matched its declared schema', () => {
    expect(violations).toEqual([]);
  });
});

describe('model analyses on the worker pool', () => {
  it('a worker thread imports the file and gives the same PyTorch figures', async () => {
    const pooled = await testApp({ jobs: { workers: 1 } });
    try {
      const f = fixture('residual');
      const id = await upload(pooled, 'residual');
      const res = await analyse({ model: { id }, data: inline(f) }, {}, pooled);
      expect(res.statusCode, res.body).toBe(200);
      expectPyTorch(res.json().result as Result, f.loss64, trainGrads(f));
    } finally {
      await pooled.close();
    }
  });
});

describe('model analyses in the job database', () => {
  it('keep the model id and survive a restart; the model is still there to analyse again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradlens-model-jobs-'));
    const db = join(dir, 'jobs.db');
    try {
      const f = fixture('mlp');
      const first = await testApp({ jobs: { db } });
      const id = await upload(first, 'mlp');
      const job = (await analyse({ model: { id }, data: inline(f) }, {}, first)).json();
      expect(job.status).toBe('succeeded');
      await first.close();

      const second = await testApp({ jobs: { db } });
      try {
        const again = (await second.inject({ url: `/v1/jobs/${job.id}` })).json();
        expect(again).toMatchObject({ status: 'succeeded', spec: { model: { id } } });
        expect(again.result).toEqual(job.result);
        const rerun = await analyse(again.spec, {}, second);
        expect(rerun.statusCode, rerun.body).toBe(200);
        expect(rerun.json().result.parameters).toEqual(job.result.parameters);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a queued model analysis interrupted by a stop runs after the restart, prepared again from its stored spec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradlens-model-requeue-'));
    const db = join(dir, 'jobs.db');
    // A runner that never finishes: the job is running when the first server stops, and goes back to queued.
    const never = (options?: { signal?: AbortSignal }) => new Promise<never>((_resolve, reject) => {
      options?.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
    });
    const stuck: Runner = {
      ready: async () => ({ name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: 'test', requested: 'cpu', skipped: [] }),
      concurrency: 1,
      analyze: (_i, o) => never(o), analyzeEncoded: (_i, o) => never(o), train: (_i, o) => never(o), analyzeModel: (_t, o) => never(o),
      theory: () => never(), close: async () => undefined,
    };
    try {
      const f = fixture('cnn_bn');
      // On the suite's deployment (test/support/api-mode.ts), so that the restart below finds the stored job.
      const deployed = onTestDeployment(loadConfig({}, { backend: TEST_BACKEND, jobs: { workers: 0, db } }));
      const first = await buildApp(deployed.config, { logger: false, runner: stuck });
      if (deployed.cleanup) first.addHook('onClose', deployed.cleanup);
      await first.ready();
      const id = await upload(first, 'cnn_bn');
      const accepted = await analyse({ model: { id }, data: inline(f) }, { prefer: 'respond-async' }, first);
      expect(accepted.statusCode, accepted.body).toBe(202);
      const jobId = accepted.json().id as string;
      await until(async () => (await first.inject({ url: `/v1/jobs/${jobId}` })).json().status, (s) => s === 'running', 10_000);
      await first.close();

      const second = await testApp({ jobs: { db } });
      try {
        const job = await until(async () => (await second.inject({ url: `/v1/jobs/${jobId}` })).json(), (j) => j.status === 'succeeded' || j.status === 'failed', 60_000);
        expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
        expect(job.spec.model.id).toBe(id);
        expectPyTorch(job.result as Result, f.loss64, trainGrads(f));
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
