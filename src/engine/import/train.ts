// A training run of an imported model, as the service runs it for POST /v1/trainings with `"model": {"id"}`:
// the model's own parameters (its ONNX initializers, as tf.Variables the import made) trained with the
// optimizers built networks use (model/optimizers.ts) on the batch the data gives (importedBatch: inline rows,
// or the seeded mnist / gaussian batch), the same batch every step. Every record is one measurement
// (measure.ts) of the parameters before that step's update: the loss, each parameter's norm and gradient norm
// under its initializer name, each layer's backward signal and the flow verdict, as in an analysis.
import * as tf from '@tensorflow/tfjs';
import { CancelledError } from '../common/errors.js';
import { encodeNonFinite, nonFiniteSummary, type NonFiniteSummary } from '../common/json-safe.js';
import { createOptimizer, type Optimizer, type OptimizerConfig } from '../model/optimizers.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from '../spec/thresholds.js';
import { judge, recordSteps, type TrainingStatus } from '../runs/training-run.js';
import { importedBatch, type AnalysableModel, type ImportedData } from './analyze.js';
import { importedLoss, measureImported, type ImportedLoss, type ImportedMeasurement } from './measure.js';
import { diagnoseImported } from './diagnose.js';

export interface ImportedTrainingInput {
  readonly data: ImportedData;
  readonly loss: ImportedLoss;
  /** 'train': BatchNormalization on batch statistics (as PyTorch trains); 'eval': on its running statistics. */
  readonly mode: 'train' | 'eval';
  readonly steps: number;
  readonly recordEvery: number;
  /** Every default filled in (normalizeOptimizer). */
  readonly optimizer: OptimizerConfig;
  readonly thresholds?: Thresholds;
}

export interface ImportedTrainingHooks {
  /** Each record (JSON-safe) as it is taken, with progress 0..1. */
  onRecord?(record: unknown, progress: number): void;
  /** Polled every step; true stops the run with a CancelledError. */
  isCancelled?(): boolean;
}

/** One record: the measurement before the update of `step` (the last one: after the last update). */
export interface ImportedTrainingRecord {
  step: number;
  loss: number;
  firstToLastRatio: number;
  backpropFirstToLastRatio: number;
  verdict: string;
  parameters: { name: string; norm: number; gradNorm: number; gradRms: number; gradMaxAbs: number }[];
  layers: { index: number; backpropNorm: number; activationStd: number; zeroFraction: number }[];
}

export interface ImportedTrainingOutput {
  /** JSON-safe (non-finite numbers as strings). */
  readonly result: unknown;
  readonly nonFinite: NonFiniteSummary;
  readonly batchSize: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The record of a measurement: per parameter and per layer, with the verdict's ratios. */
function recordOf(step: number, m: ImportedMeasurement, thresholds: Thresholds): ImportedTrainingRecord {
  const { summary } = diagnoseImported(m, thresholds);
  return {
    step, loss: m.loss, firstToLastRatio: summary.firstToLastRatio, backpropFirstToLastRatio: summary.backpropFirstToLastRatio,
    verdict: summary.verdict,
    parameters: m.parameters.map((p) => ({ name: p.name, norm: p.norm, gradNorm: p.gradNorm, gradRms: p.gradRms, gradMaxAbs: p.gradMaxAbs })),
    layers: m.layers.map((l) => ({ index: l.index, backpropNorm: l.backpropNorm, activationStd: l.activationStd, zeroFraction: l.zeroFraction })),
  };
}

/** One update in place: the loss before it, and the variables assigned the optimizer's step unless that loss is not finite. */
async function updateStep(model: AnalysableModel, optimizer: Optimizer, b: { x: tf.Tensor; y: tf.Tensor; loss: ImportedLoss; batchNorm: 'batch' | 'running' }): Promise<number> {
  const params = model.parameterTensors();
  const out = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => importedLoss(model.run(b.x, { batchNorm: b.batchNorm }).output, b.y, b.loss, model.outputKind), params);
    return { value, next: optimizer.step(params, params.map((p) => grads[p.name]!)) };
  });
  try {
    const loss = ((await out.value.data()) as Float32Array)[0]!;
    if (Number.isFinite(loss)) params.forEach((p, i) => p.assign(out.next[i]!));
    return loss;
  } finally {
    out.value.dispose();
    out.next.forEach((t) => t.dispose());
  }
}

interface Loop {
  records: ImportedTrainingRecord[];
  stoppedAt: { step: number; loss: number } | null;
  stepsCompleted: number;
}

/** The steps with their records; the model's variables end at the last adopted parameters. */
async function trainLoop(model: AnalysableModel, input: ImportedTrainingInput, x: tf.Tensor, y: tf.Tensor, hooks: ImportedTrainingHooks): Promise<Loop> {
  const batchNorm = input.mode === 'eval' ? 'running' : 'batch';
  const due = new Set(recordSteps(input.steps, input.recordEvery));
  const thresholds = input.thresholds ?? DEFAULT_THRESHOLDS;
  const optimizer = createOptimizer(input.optimizer);
  const loop: Loop = { records: [], stoppedAt: null, stepsCompleted: 0 };
  const record = async (step: number): Promise<number> => {
    const m = await measureImported(model, { input: x, target: y, loss: input.loss, batchNorm });
    const r = recordOf(step, m, thresholds);
    loop.records.push(r);
    hooks.onRecord?.(encodeNonFinite(r).value, step / input.steps);
    return m.loss;
  };
  try {
    for (let step = 0; step < input.steps; step++) {
      if (hooks.isCancelled?.()) throw new CancelledError();
      if (due.has(step)) await record(step);
      const loss = await updateStep(model, optimizer, { x, y, loss: input.loss, batchNorm });
      if (!Number.isFinite(loss)) {
        if (!due.has(step)) await record(step);
        loop.stoppedAt = { step, loss };
        return loop;
      }
      loop.stepsCompleted = step + 1;
      await yieldToEventLoop();
    }
    await record(input.steps);
    return loop;
  } finally {
    optimizer.dispose();
  }
}

/** Trains an imported model's parameters on one batch; SpecError for data that does not fit it. */
export async function trainImported(
  model: AnalysableModel, input: ImportedTrainingInput, options: { maxBatchSize: number }, hooks: ImportedTrainingHooks = {},
): Promise<ImportedTrainingOutput> {
  const { x, y } = importedBatch(model, input.data, input.loss, options);
  const batchSize = x.shape[0]!;
  let loop: Loop;
  try {
    loop = await trainLoop(model, input, x, y, hooks);
  } finally {
    x.dispose();
    y.dispose();
  }
  const { records, stoppedAt, stepsCompleted } = loop;
  const initialLoss = records[0]!.loss;
  const finalLoss = records[records.length - 1]!.loss;
  const lossReduction = (initialLoss - finalLoss) / Math.max(Math.abs(initialLoss), 1e-12);
  const verdict: { status: TrainingStatus; reasons: string[] } = judge({
    initialLoss, finalLoss, lossReduction, baseline: null, stoppedAt, lossBoundedBelow: true, firstToLastAtInit: records[0]!.firstToLastRatio,
  });
  const { value, paths } = encodeNonFinite({
    format: model.format, steps: input.steps, stepsCompleted, batchSize, optimizer: input.optimizer, lossName: input.loss,
    mode: input.mode, outputKind: model.outputKind, batchNormFolded: model.batchNormFolded ?? false,
    parameters: model.parameters.map((p) => ({ name: p.name, shape: [...p.shape] })),
    layers: model.layers.map((l) => ({ index: l.index, name: l.name, op: l.op, parameters: [...l.parameters] })),
    records, initialLoss, finalLoss, lossReduction, learns: verdict.status === 'learning', status: verdict.status, reasons: verdict.reasons,
  });
  return { result: value, nonFinite: nonFiniteSummary(paths), batchSize };
}
