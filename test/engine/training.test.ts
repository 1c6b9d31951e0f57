// Training runs: a deep sigmoid net stalls where ReLU/He learns on Iris; optimizer math by hand; cancel, divergence, memory, limits.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { prepareTraining, runTraining, recordSteps, type TrainingOutput } from '../../src/engine/runs/training-run.js';
import { createOptimizer, normalizeOptimizer, type OptimizerConfig } from '../../src/engine/model/optimizers.js';
import { CancelledError, LimitError, SpecError } from '../../src/engine/common/errors.js';
import { DEFAULT_LIMITS, normalizeSpec } from '../../src/engine/spec/normalize.js';
import { TrainingSpecSchema, type TrainingSpecInput } from '../../src/schemas/training.js';
import Value from 'typebox/value';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { AnalysisSpecInput } from '../../src/schemas/spec.js';
import type { ActivationName, InitializerName } from '../../src/schemas/vocabulary.js';

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));

beforeAll(async () => {
  await useTestBackend();
});

describe('deep sigmoid stalls, ReLU/He learns (Iris, depth 10, width 32, sgd lr 0.1, 200 steps)', () => {
  const spec = (activation: ActivationName, weights: InitializerName): TrainingSpecInput => ({
    seed: 1,
    network: { depth: 10, width: 32, activation, init: { weights } },
    data: { source: 'iris', batchSize: 32 },
    steps: 200,
    optimizer: { name: 'sgd', learningRate: 0.1 },
    recordEvery: 20,
  });
  const runs: Record<string, { out: TrainingOutput; tensorsPerRecord: number[]; progress: number[]; leaked: number }> = {};

  beforeAll(async () => {
    for (const [key, act, init] of [['sigmoid', 'sigmoid', 'glorot_uniform'], ['relu', 'relu', 'he_normal']] as const) {
      const before = tf.memory().numTensors;
      const tensorsPerRecord: number[] = [];
      const progress: number[] = [];
      const out = await runTraining(spec(act, init), DEFAULT_LIMITS, {
        onRecord: (_record, p) => {
          tensorsPerRecord.push(tf.memory().numTensors);
          progress.push(p);
        },
      });
      runs[key] = { out, tensorsPerRecord, progress, leaked: tf.memory().numTensors - before };
    }
  });

  it('records steps 0, 20, …, 200 with every layer', async () => {
    for (const { out, progress } of Object.values(runs)) {
      expect(out.result.records.map((r) => r.step)).toEqual([0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200]);
      expect(progress).toEqual(out.result.records.map((r) => r.step / 200));
      for (const r of out.result.records) expect(r.layers).toHaveLength(10);
      expect(out.result.stepsCompleted).toBe(200);
      expect(out.result.records.at(-1)!.layers.every((l) => l.updateToWeightRatio === null)).toBe(true);
      expect(out.result.nonFinite.count).toBe(0);
    }
  });

  it('the sigmoid network stalls at the class-frequency loss with vanishing first-layer gradients', async () => {
    const r = runs.sigmoid!.out.result;
    expect(r.status).toBe('stalled');
    expect(r.learns).toBe(false);
    expect(num(r.baselineLoss)).toBeCloseTo(Math.log(3), 6);
    // Ends at chance: no better than predicting the (balanced) class frequencies.
    expect(num(r.finalLoss)).toBeGreaterThan(0.98 * Math.log(3));
    expect(num(r.finalAccuracy)).toBeLessThan(0.45);
    expect(num(r.chanceAccuracy)).toBeCloseTo(1 / 3, 6);
    for (const rec of r.records) {
      expect(rec.layers[0]!.weightGradNorm).toBeLessThan(1e-4);
      expect(num(rec.firstToLastRatio)).toBeLessThan(1e-3);
      // Each step barely moves the first layer.
      if (rec.layers[0]!.updateToWeightRatio !== null) expect(rec.layers[0]!.updateToWeightRatio).toBeLessThan(1e-5);
    }
    expect(r.reasons.join(' ')).toMatch(/best constant prediction/);
    expect(r.reasons.join(' ')).toMatch(/vanishing gradients/);
  });

  it('the ReLU/He network learns, with first-layer gradients of the order of the last layer\'s', async () => {
    const r = runs.relu!.out.result;
    expect(r.status).toBe('learning');
    expect(r.learns).toBe(true);
    expect(num(r.lossReduction)).toBeGreaterThan(0.7);
    expect(num(r.finalLoss)).toBeLessThan(0.5 * num(r.baselineLoss));
    expect(num(r.finalAccuracy)).toBeGreaterThanOrEqual(0.9);
    for (const rec of r.records) expect(rec.layers[0]!.weightGradNorm).toBeGreaterThan(1e-3);
    const ratios = r.records.map((rec) => num(rec.firstToLastRatio)).sort((a, b) => a - b);
    expect(ratios[Math.floor(ratios.length / 2)]).toBeGreaterThan(0.05);
    // The first layer's gradient at initialisation is orders of magnitude larger than the sigmoid net's.
    const sigmoidFirst = runs.sigmoid!.out.result.records[0]!.layers[0]!.weightGradNorm as number;
    expect(r.records[0]!.layers[0]!.weightGradNorm as number).toBeGreaterThan(1e3 * sigmoidFirst);
  });

  it('leaves no tensors behind, and the count does not grow from record to record', async () => {
    for (const { tensorsPerRecord, leaked } of Object.values(runs)) {
      expect(leaked).toBe(0);
      // Records inside the loop hold the step's updated parameters too; the final one does not.
      expect(new Set(tensorsPerRecord.slice(0, -1)).size).toBe(1);
      expect(tensorsPerRecord.at(-1)).toBe(tensorsPerRecord[0]! - 20);
    }
  });
});

describe('optimizer update math against a hand computation', () => {
  const p0 = [0.5, -1.2, 2];
  const g1 = [0.1, -0.3, 0.002];
  const g2 = [-0.2, 0.05, 0.4];

  async function apply(config: OptimizerConfig): Promise<number[][]> {
    const opt = createOptimizer(config);
    let p: tf.Tensor = tf.tensor1d(p0);
    const out: number[][] = [];
    for (const g of [g1, g2]) {
      const next = tf.tidy(() => opt.step([p], [tf.tensor1d(g)])[0]!);
      p.dispose();
      p = next;
      out.push(Array.from(await p.data()));
    }
    p.dispose();
    opt.dispose();
    return out;
  }

  /** Float64 reference of the documented rules, two steps. */
  function reference(config: OptimizerConfig): number[][] {
    const lr = config.learningRate;
    const p = [...p0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    const b = [0, 0, 0];
    const out: number[][] = [];
    [g1, g2].forEach((g, step) => {
      const t = step + 1;
      for (let i = 0; i < 3; i++) {
        const gi = g[i]!;
        switch (config.name) {
          case 'sgd':
            p[i] = p[i]! - lr * gi;
            break;
          case 'momentum':
            b[i] = config.momentum! * b[i]! + gi;
            p[i] = p[i]! - lr * (config.nesterov ? gi + config.momentum! * b[i]! : b[i]!);
            break;
          case 'adam': {
            m[i] = config.beta1! * m[i]! + (1 - config.beta1!) * gi;
            v[i] = config.beta2! * v[i]! + (1 - config.beta2!) * gi * gi;
            const mHat = m[i]! / (1 - config.beta1! ** t);
            const vHat = v[i]! / (1 - config.beta2! ** t);
            p[i] = p[i]! - (lr * mHat) / (Math.sqrt(vHat) + config.epsilon!);
            break;
          }
          case 'rmsprop': {
            v[i] = config.rho! * v[i]! + (1 - config.rho!) * gi * gi;
            let u = gi / (Math.sqrt(v[i]!) + config.epsilon!);
            if (config.momentum! > 0) {
              b[i] = config.momentum! * b[i]! + u;
              u = b[i]!;
            }
            p[i] = p[i]! - lr * u;
            break;
          }
        }
      }
      out.push([...p]);
    });
    return out;
  }

  const cases: OptimizerConfig[] = [
    normalizeOptimizer({ name: 'sgd', learningRate: 0.1 }),
    normalizeOptimizer({ name: 'momentum', learningRate: 0.1 }),
    normalizeOptimizer({ name: 'momentum', learningRate: 0.1, nesterov: true }),
    normalizeOptimizer({ name: 'adam', learningRate: 0.01 }),
    normalizeOptimizer({ name: 'rmsprop', learningRate: 0.01 }),
    normalizeOptimizer({ name: 'rmsprop', learningRate: 0.01, momentum: 0.5, rho: 0.8 }),
  ];

  it.each(cases.map((c) => [JSON.stringify(c), c] as const))('%s', async (_name, config) => {
    const got = await apply(config);
    const want = reference(config);
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < 3; i++) expect(Math.abs(got[s]![i]! - want[s]![i]!)).toBeLessThan(2e-6 * Math.max(1, Math.abs(want[s]![i]!)));
    }
    // Sanity of the reference itself: Adam's first step is ≈ lr·sign(g).
    if (config.name === 'adam') expect(want[0]![0]).toBeCloseTo(p0[0]! - 0.01, 6);
  });

  it('fills in documented defaults and rejects parameters the optimizer does not use', async () => {
    expect(normalizeOptimizer(undefined)).toEqual({ name: 'sgd', learningRate: 0.01 });
    expect(normalizeOptimizer({ name: 'adam' })).toEqual({ name: 'adam', learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    expect(normalizeOptimizer({ name: 'momentum' })).toEqual({ name: 'momentum', learningRate: 0.01, momentum: 0.9, nesterov: false });
    expect(normalizeOptimizer({ name: 'rmsprop' })).toEqual({ name: 'rmsprop', learningRate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7 });
    expect(() => normalizeOptimizer({ name: 'sgd', beta1: 0.9 })).toThrow(/optimizer.beta1 is used by adam, not by sgd/);
    expect(() => normalizeOptimizer({ name: 'adam', momentum: 0.9 })).toThrow(SpecError);
  });

  it('one training step of a linear layer matches the hand-computed update and loss (sgd, adam)', async () => {
    // depth 1, linear output, mse: pred = x·W + b; dL/dW = (2/n) Σ (pred − y) x, dL/db = (2/n) Σ (pred − y).
    const x = [[1, 2], [-1, 0.5], [0.5, -1.5]];
    const y = [[0.5], [-1], [2]];
    const W0 = [0.3, 0.3];
    const b0 = 0.1;
    const lossAt = (W: number[], b: number): number =>
      x.reduce((s, xi, i) => s + (xi[0]! * W[0]! + xi[1]! * W[1]! + b - y[i]![0]!) ** 2, 0) / x.length;
    const r = x.map((xi, i) => xi[0]! * W0[0]! + xi[1]! * W0[1]! + b0 - y[i]![0]!);
    const gW = [0, 1].map((j) => (2 / x.length) * r.reduce((s, ri, i) => s + ri * x[i]![j]!, 0));
    const gb = (2 / x.length) * r.reduce((s, ri) => s + ri, 0);
    const norm = (v: number[]): number => Math.hypot(...v);

    const base = {
      seed: 7,
      network: { depth: 1, outputActivation: 'linear' as const, init: { weights: { name: 'constant' as const, value: 0.3 }, bias: { name: 'constant' as const, value: 0.1 } } },
      data: { source: 'inline' as const, x, y },
      loss: 'mse' as const,
      steps: 1,
    };
    const sgd = (await runTraining({ ...base, optimizer: { name: 'sgd', learningRate: 0.05 } })).result;
    const dW = gW.map((g) => 0.05 * g);
    expect(num(sgd.records[0]!.layers[0]!.updateToWeightRatio)).toBeCloseTo(norm(dW) / norm(W0), 6);
    expect(num(sgd.records[0]!.loss)).toBeCloseTo(lossAt(W0, b0), 5);
    expect(num(sgd.records[0]!.layers[0]!.weightGradNorm)).toBeCloseTo(norm(gW), 5);
    expect(num(sgd.initialLoss)).toBeCloseTo(lossAt(W0, b0), 5);
    expect(num(sgd.finalLoss)).toBeCloseTo(lossAt(W0.map((w, j) => w - dW[j]!), b0 - 0.05 * gb), 5);

    const adam = (await runTraining({ ...base, optimizer: { name: 'adam', learningRate: 0.05 } })).result;
    const step = (g: number): number => (0.05 * g) / (Math.abs(g) + 1e-7);
    expect(num(adam.records[0]!.layers[0]!.updateToWeightRatio)).toBeCloseTo(norm(gW.map(step)) / norm(W0), 6);
    expect(num(adam.finalLoss)).toBeCloseTo(lossAt(W0.map((w, j) => w - step(gW[j]!)), b0 - step(gb)), 5);
    expect(adam.optimizer).toEqual({ name: 'adam', learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
  });
});

describe('runTraining: cancellation, divergence, determinism', () => {
  const small: TrainingSpecInput = {
    seed: 3,
    network: { depth: 4, width: 16, activation: 'relu', init: { weights: 'he_normal' } },
    data: { source: 'sine', batchSize: 32 },
    steps: 40,
    optimizer: { name: 'momentum', learningRate: 0.01 },
    recordEvery: 5,
  };

  it('throws CancelledError at the next step once isCancelled says so, leaving no tensors', async () => {
    const before = tf.memory().numTensors;
    let records = 0;
    const err = await runTraining(small, DEFAULT_LIMITS, { onRecord: () => { records++; }, isCancelled: () => records >= 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).code).toBe('CANCELED');
    expect(records).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports divergence as a status with non-finite values encoded, never as an error', async () => {
    const before = tf.memory().numTensors;
    const out = await runTraining({ ...small, optimizer: { name: 'sgd', learningRate: 50 } });
    const r = out.result;
    expect(r.status).toBe('diverged');
    expect(r.learns).toBe(false);
    expect(r.stepsCompleted).toBeLessThan(40);
    expect(r.reasons[0]).toMatch(/became (NaN|Infinity) at step \d+; training stopped there/);
    expect(r.nonFinite.count).toBeGreaterThan(0);
    expect(r.nonFinite.paths).toHaveLength(Math.min(r.nonFinite.count, 100));
    expect(r.nonFinite.truncated).toBe(r.nonFinite.count > 100);
    expect(['NaN', 'Infinity']).toContain(r.records.at(-1)!.loss);
    // JSON-safe: a round trip through JSON changes nothing.
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('include: the initial parameters are the analysis\' for the same spec, the final ones those after the last update, and each step\'s rows', async () => {
    const spec: TrainingSpecInput = {
      seed: 9, network: { depth: 4, width: 6, normalization: 'layer', residual: { every: 1, variant: 'rezero', scale: 0.2 } },
      data: { source: 'iris', batchSize: 10 }, steps: 5, recordEvery: 1, optimizer: { name: 'sgd', learningRate: 0.1 },
    };
    const before = tf.memory().numTensors;
    const plain = await runTraining(spec);
    const out = await runTraining({ ...spec, include: ['parameters', 'batches'] });
    expect(tf.memory().numTensors).toBe(before);
    const r = out.result;
    // Asking for include changes nothing else.
    expect(r.records).toEqual(plain.result.records);
    expect(out.spec.include).toEqual(['parameters', 'batches']);
    expect(out.cost.includedValues).toBeGreaterThan(0);
    const { steps: _s, recordEvery: _r, optimizer: _o, ...analysisPart } = spec;
    const analysis = (await analyze({ ...analysisPart, include: ['parameters'] } as AnalysisSpecInput)).result;
    expect(r.parameters).toEqual(analysis.parameters);
    expect(r.parameters![1]!.auxParameters!.map((a) => a.name)).toEqual(['gamma', 'beta', 'gate']);
    expect(r.finalParameters![1]!.auxParameters![2]!.values[0]).not.toBe(Math.fround(0.2));
    // Each step's rows: 6 entries (steps 0–4 and the final record), batches of 10 distinct iris rows.
    expect(r.batches!.indices).toHaveLength(6);
    for (const rows of r.batches!.indices) expect(new Set(rows).size).toBe(10);
    const { dataset } = normalizeSpec({ ...analysisPart } as AnalysisSpecInput);
    r.batches!.examples.index.forEach((row, k) => {
      expect(r.batches!.examples.x[k]).toEqual(Array.from(dataset.x.subarray(row * 4, row * 4 + 4)));
      expect(r.batches!.examples.y[k]).toEqual([0, 1, 2].map((c) => (dataset.labels![row] === c ? 1 : 0)));
    });
  });

  it('include: a training that diverges keeps its parameters JSON-safe, listing any non-finite one', async () => {
    const out = await runTraining({ ...small, optimizer: { name: 'sgd', learningRate: 50 }, include: ['parameters'] });
    expect(out.result.status).toBe('diverged');
    expect(out.result.finalParameters).toHaveLength(out.result.layers.length);
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    for (const path of out.result.nonFinite.paths.filter((p) => p.startsWith('finalParameters'))) {
      const value = path.split(/\.|\[|\]/).filter(Boolean).reduce((o: any, k: string) => o[k], out.result);
      expect(['NaN', 'Infinity', '-Infinity']).toContain(value);
    }
  });

  it('trains the auxiliary parameters too: ReZero gates start at 0 (block layers get no gradient) and open', async () => {
    const before = tf.memory().numTensors;
    const out = await runTraining({
      seed: 2,
      network: { depth: 6, width: 16, activation: 'relu', init: { weights: 'he_normal' }, residual: { every: 2, variant: 'rezero' } },
      data: { source: 'iris', batchSize: 32 },
      steps: 60,
      optimizer: { name: 'sgd', learningRate: 0.1 },
      recordEvery: 20,
    });
    const [first, , , last] = out.result.records;
    for (const l of [1, 2, 3, 4]) {
      expect(first!.layers[l]!.weightGradNorm).toBe(0);
      expect(last!.layers[l]!.weightGradNorm as number).toBeGreaterThan(1e-4);
    }
    expect(out.result.status).toBe('learning');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives the same records for the same seed, and different batches for another seed', async () => {
    const a = await runTraining({ ...small, steps: 10 });
    const b = await runTraining({ ...small, steps: 10 });
    const c = await runTraining({ ...small, steps: 10, seed: 4 });
    expect(b.result.records).toEqual(a.result.records);
    expect(c.result.records[1]!.loss).not.toEqual(a.result.records[1]!.loss);
    expect(a.result.status).toBe('learning');
  });
});

describe('prepareTraining: validation and cost before any compute', () => {
  const spec: TrainingSpecInput = {
    network: { depth: 3, width: 8 },
    data: { source: 'iris', batchSize: 16 },
    steps: 100,
  };

  it('fills defaults and costs steps plus records plus evaluation', async () => {
    const p = prepareTraining(spec, DEFAULT_LIMITS);
    expect(p.recordEvery).toBe(2);
    expect(recordSteps(100, 2)).toHaveLength(51);
    expect(p.input).toMatchObject({ seed: 42, steps: 100, recordEvery: 2, optimizer: { name: 'sgd', learningRate: 0.01 } });
    expect(p.input.data).not.toHaveProperty('batches');
    // The echo is a valid training spec that can be sent again as it is.
    expect(Value.Errors(TrainingSpecSchema, p.input)).toEqual([]);
    expect(prepareTraining(p.input, DEFAULT_LIMITS).input).toEqual(p.input);
    expect(p.input).not.toHaveProperty('include');
    // weights 4·8 + 8·8 + 8·3 = 120, units 19: B·(6·120 + 20·19) per step.
    expect(p.cost.flopsPerStep).toBe(16 * (6 * 120 + 20 * 19));
    expect(p.cost.flops).toBeCloseTo(p.cost.flopsPerStep * (100 + 51) + (2 * 150 * p.cost.flopsPerStep) / (3 * 16), 6);
    expect(p.cost.evaluationExamples).toBe(150);
  });

  it('rejects over-limit runs with LimitError and bad specs with SpecError naming the field', async () => {
    // A training is checked against its own budget, not the synchronous analysis one.
    expect(() => prepareTraining(spec, { ...DEFAULT_LIMITS, maxAnalysisFlops: 1e6 })).not.toThrow();
    const tight = { ...DEFAULT_LIMITS, maxTrainingFlops: 1e6 };
    expect(() => prepareTraining(spec, tight)).toThrow(LimitError);
    expect(() => prepareTraining(spec, tight)).toThrow(/this training needs about .* the limit \(GRADLENS_MAX_TRAINING_FLOPS\)/);
    const field = (s: TrainingSpecInput): string => {
      try {
        prepareTraining(s, DEFAULT_LIMITS);
      } catch (err) {
        if (err instanceof SpecError) return err.field;
      }
      return 'no error';
    };
    expect(field({ ...spec, optimizer: { name: 'sgd', rho: 0.9 } })).toBe('optimizer.rho');
    expect(field({ ...spec, recordEvery: 1, steps: 5000 })).toBe('recordEvery');
    expect(field({ ...spec, data: { ...spec.data, batches: 4 } as TrainingSpecInput['data'] })).toBe('data.batches');
    expect(field({ ...spec, expect: { verdict: 'healthy' } })).toBe('expect.verdict');
    expect(field({ ...spec, loss: 'output', expect: { minAccuracy: 0.9 } })).toBe('expect.minAccuracy');
    expect(field({ ...spec, network: { depth: 1000 } })).toBe('network.depth');
  });

  it('attaches checks to the result when expect is given', async () => {
    const out = await runTraining({ ...spec, steps: 60, optimizer: { name: 'adam', learningRate: 0.01 }, expect: { learns: true, minAccuracy: 0.8, maxNonFinite: 0 } });
    expect(out.result.checks!.map((c) => c.name)).toEqual(['maxNonFinite', 'learns', 'minAccuracy']);
    expect(out.result.passed).toBe(true);
    expect(out.spec.expect).toEqual({ learns: true, minAccuracy: 0.8, maxNonFinite: 0 });
  });
});
