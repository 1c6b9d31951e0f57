// Trainings replayed in PyTorch: POST /v1/trainings with include ["parameters", "batches"], rebuild the
// network and its optimiser in float64 torch from nothing but the response, and compare loss curves and
// final parameters; plus the include budget (422 before any compute) and the schema.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { getJob } from '../support/jobs.js';
import { until } from '../support/until.js';
import { MAX_TRAINING_INCLUDED_VALUES, type TrainingSpecInput } from '../../src/schemas/training.js';
import { prepareTraining } from '../../src/engine/runs/training-run.js';

/** Debian's python3-torch (CI installs it in .ci/run); GRADLENS_TEST_PYTHON overrides the interpreter. */
const PYTHON = process.env.GRADLENS_TEST_PYTHON ?? '/usr/bin/python3';
const REPLAY = fileURLToPath(new URL('../support/replay_training.py', import.meta.url));
const TORCH_ENV = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };

/** Fails (never skips) when PyTorch is missing: this is the independent oracle for trainings. */
function requireTorch(): void {
  const check = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { env: TORCH_ENV, encoding: 'utf8' });
  if (check.error || check.status !== 0) {
    throw new Error(`the PyTorch replay needs ${PYTHON} with torch (Debian: apt-get install -y python3-torch; .ci/run installs it): ${check.error?.message ?? check.stderr.trim().split('\n').pop()}`);
  }
}

interface Replayed {
  losses: Record<string, number>;
  finalParameters: ParametersJson;
}
type ParametersJson = { index: number; weights: number[][]; bias: number[] | null; auxParameters?: { name: string; values: number[] }[] }[];

function replayInTorch(cases: { spec: unknown; result: unknown }[]): Replayed[] {
  const run = spawnSync(PYTHON, [REPLAY], { input: JSON.stringify(cases), env: TORCH_ENV, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`replay_training.py exited with ${run.status ?? run.signal}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Replayed[];
}

/** Every parameter entry, with its path, in one list: the two layouts must match entry for entry. */
function entries(p: ParametersJson): [string, number][] {
  return p.flatMap((layer) => [
    ...layer.weights.flatMap((row, i) => row.map((v, j): [string, number] => [`layers[${layer.index}].weights[${i}][${j}]`, v])),
    ...(layer.bias ?? []).map((v, j): [string, number] => [`layers[${layer.index}].bias[${j}]`, v]),
    ...(layer.auxParameters ?? []).flatMap((a) => a.values.map((v, j): [string, number] => [`layers[${layer.index}].${a.name}[${j}]`, v])),
  ]);
}

/**
 * The trainings replayed: every optimiser, normalisation and residual variant with its auxiliary
 * parameters, on real datasets. recordEvery 1: the loss of every step is compared.
 */
const TRAININGS = [
  {
    title: 'Iris, ReLU + He, 4 layers, Adam',
    spec: { seed: 7, network: { depth: 4, width: 16, activation: 'relu', init: { weights: 'he_normal' } }, data: { source: 'iris', batchSize: 16 }, steps: 30, recordEvery: 1, optimizer: { name: 'adam', learningRate: 0.01 } },
  },
  {
    title: 'blobs, tanh, batch norm + ReZero blocks of 1, Nesterov momentum',
    spec: {
      seed: 11, network: { depth: 5, width: 12, activation: 'tanh', normalization: 'batch', residual: { every: 1, variant: 'rezero' } },
      data: { source: 'blobs', features: 6, batchSize: 24 }, steps: 30, recordEvery: 1, optimizer: { name: 'momentum', learningRate: 0.05, nesterov: true },
    },
  },
  {
    title: 'moons, GELU, Fixup blocks of 2, SGD',
    spec: {
      seed: 5, network: { depth: 6, width: 10, activation: 'gelu', init: { weights: 'he_normal' }, residual: { every: 2, variant: 'fixup' } },
      data: { source: 'moons', batchSize: 32 }, loss: 'binary_crossentropy', steps: 30, recordEvery: 1, optimizer: { name: 'sgd', learningRate: 0.2 },
    },
  },
  {
    title: 'sine regression, ELU, layer norm + SkipInit blocks of 2, RMSprop with momentum',
    spec: {
      seed: 3, network: { depth: 6, width: 16, activation: { name: 'elu', alpha: 0.7 }, normalization: 'layer', residual: { every: 2, variant: 'skipinit', scale: 0.5 } },
      data: { source: 'sine', batchSize: 20 }, steps: 30, recordEvery: 1, optimizer: { name: 'rmsprop', learningRate: 0.003, momentum: 0.5 },
    },
  },
] as const;

/**
 * float32 gradlens against float64 torch over 30 steps. Measured (cpu backend): every final parameter
 * within 5e-7 of torch's (weights, biases, γ, gates; the updates themselves moved them by 0.09 to 1.5),
 * every step's loss within 4e-7 relative, 3.4e-5 where batch norm drives the loss to 0.003. A replay
 * that used another step's rows or skipped an update is off by 1e-2 or more.
 */
const LOSS_RTOL = 2e-4;
const PARAM_TOL = 1e-5;

describe('trainings replayed in PyTorch from include ["parameters", "batches"]', () => {
  let app: FastifyInstance;
  const done: { spec: unknown; result: any }[] = [];

  beforeAll(async () => {
    requireTorch();
    app = await testApp();
    for (const t of TRAININGS) {
      const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...t.spec, include: ['parameters', 'batches'] } });
      expect(res.statusCode, res.body).toBe(202);
      const job = await until(() => getJob(app, res.json().id), (j) => ['succeeded', 'failed'].includes(j.status), 120_000);
      expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
      done.push({ spec: job.spec, result: job.result });
    }
  });
  afterAll(async () => {
    await app?.close();
  });

  it('the response carries what a replay needs: initial and final parameters, every step\'s rows, each row once', () => {
    for (const { spec, result } of done) {
      const s = spec as { include: string[]; steps: number };
      expect(s.include).toEqual(['parameters', 'batches']);
      expect(result.parameters).toHaveLength(result.layers.length);
      expect(result.finalParameters).toHaveLength(result.layers.length);
      expect(result.batches.indices).toHaveLength(result.stepsCompleted + 1);
      for (const rows of result.batches.indices) expect(rows).toHaveLength(result.batchSize);
      const index: number[] = result.batches.examples.index;
      expect(index).toEqual([...new Set(result.batches.indices.flat() as number[])].sort((a, b) => a - b));
      expect(result.batches.examples.x).toHaveLength(index.length);
      expect(result.batches.examples.y).toHaveLength(index.length);
    }
  });

  it('PyTorch (float64, torch.optim) reproduces every step\'s loss and the final weights, biases and auxiliary parameters', () => {
    const replayed = replayInTorch(done);
    replayed.forEach((torch, k) => {
      const { result } = done[k]!;
      const title = TRAININGS[k]!.title;
      // Every record's minibatch loss (before that step's update) against the replay's.
      expect(result.records).toHaveLength(31);
      for (const r of result.records) {
        const ours = r.loss as number;
        const theirs = torch.losses[String(r.step)]!;
        expect(Math.abs(ours - theirs) / Math.abs(theirs), `${title}: step ${r.step} loss ${ours} vs torch ${theirs}`).toBeLessThan(LOSS_RTOL);
      }
      // Training moved the parameters: a replay that ignored the updates would not match.
      const initial = entries(result.parameters);
      const ours = entries(result.finalParameters);
      const theirs = entries(torch.finalParameters);
      expect(theirs.map(([path]) => path)).toEqual(ours.map(([path]) => path));
      const moved = Math.max(...ours.map(([, v], i) => Math.abs(v - initial[i]![1])));
      expect(moved, `${title}: the parameters moved`).toBeGreaterThan(1e-2);
      let worst = { path: '', err: 0, ours: 0, theirs: 0 };
      ours.forEach(([path, v], i) => {
        const err = Math.abs(v - theirs[i]![1]);
        if (err > worst.err) worst = { path, err, ours: v, theirs: theirs[i]![1] };
      });
      expect(worst.err, `${title}: ${worst.path} ${worst.ours} vs torch ${worst.theirs}`).toBeLessThan(PARAM_TOL);
    });
  });

  it('checks the include budget before any compute: 422 naming MAX_TRAINING_INCLUDED_VALUES, nothing stored', async () => {
    const before = (await app.inject({ url: '/v1/jobs?limit=100' })).json().jobs.length;
    // 2.3 M parameters, initial and final: 4.5 M numbers; one step costs little.
    const wide: TrainingSpecInput = { network: { depth: 3, width: 1500 }, data: { source: 'iris', batchSize: 8 }, steps: 1 };
    const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...wide, include: ['parameters'] } });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe('LIMIT_EXCEEDED');
    expect(res.json().message).toMatch(new RegExp(`would add up to 45\\d{5} numbers .* limit \\(MAX_TRAINING_INCLUDED_VALUES\\) is ${MAX_TRAINING_INCLUDED_VALUES}`));
    // 200 MNIST steps of 128 rows touch every one of the 10 000 images (784 inputs each): 8 M numbers.
    const rows = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { network: { depth: 3, width: 64 }, data: { source: 'mnist', batchSize: 128 }, steps: 200, include: ['batches'] } });
    expect(rows.statusCode).toBe(422);
    expect(rows.json().message).toMatch(/MAX_TRAINING_INCLUDED_VALUES/);
    expect((await app.inject({ url: '/v1/jobs?limit=100' })).json().jobs.length).toBe(before);
    // Without include both are within every default budget: only include was over.
    expect(() => prepareTraining(wide)).not.toThrow();
    expect(() => prepareTraining({ network: { depth: 3, width: 64 }, data: { source: 'mnist', batchSize: 128 }, steps: 200 })).not.toThrow();
  });

  it('rejects unknown or repeated include entries with 400 naming the field', async () => {
    for (const include of [['batch'], ['parameters', 'parameters']]) {
      const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: { ...TRAININGS[0].spec, include } });
      expect(res.statusCode, JSON.stringify(include)).toBe(400);
      expect(res.json().message).toMatch(/include/);
    }
  });
});
