// The data part of a spec made whole: batch defaults and limits, inline data checked, the dataset's shape
// (nothing drawn), and the loss it implies. Shared by the dense and the layer-graph specs.
import type { AnalysisSpecInput, LossName } from '../../schemas/spec.js';
import { describeDataset, loadDataset, unnormalizedByDefault, type Dataset, type DatasetShape, type DataSpec, DataSpecError } from '../data/datasets.js';
import { SpecError } from '../common/errors.js';

export const DEFAULT_BATCH_SIZE = 64;

export type NormalizedData = DataSpec & { batchSize: number; batches: number; normalize: NonNullable<DataSpec['normalize']> };

/** The limits the data part checks (SpecLimits' fields). */
export interface DataLimits {
  maxBatchSize: number;
  maxBatches: number;
  maxInlineRows: number;
}

export function defaultLoss(ds: DatasetShape): LossName {
  if (ds.task === 'regression') return 'mse';
  if (ds.task === 'binary') return 'binary_crossentropy';
  return 'categorical_crossentropy';
}

export function checkLimit(field: string, value: number, max: number): void {
  if (value > max) throw new SpecError(field, `${field} is ${value} but the limit is ${max}`);
}

/** What loadDataset is given for a spec: inline data without targets (loss "output") gets a dummy column. */
export function dataToLoad(data: NormalizedData): DataSpec {
  return data.source === 'inline' && !data.y && data.x ? { ...data, y: data.x.map(() => [0]) } : data;
}

/** The data part of a spec: defaults, limits, the dataset's shape (nothing drawn) and the loss it implies. */
export function normalizeData(input: AnalysisSpecInput, limits: DataLimits, seed: number): { dataSpec: NormalizedData; dataset: DatasetShape; loss: LossName } {
  const data = input.data;
  const batchSizeDefault = data.source === 'inline' ? (data.x?.length ?? 1) : DEFAULT_BATCH_SIZE;
  const dataSpec = {
    ...data,
    batchSize: data.batchSize ?? batchSizeDefault,
    batches: data.batches ?? 1,
    normalize: data.normalize ?? (unnormalizedByDefault(data.source) ? 'none' : 'standardize'),
  } as NormalizedData;
  checkLimit('data.batchSize', dataSpec.batchSize, limits.maxBatchSize);
  checkLimit('data.batches', dataSpec.batches, limits.maxBatches);
  if (data.source === 'inline') {
    if (!data.x) throw new SpecError('data.x', 'data.x is required when data.source is inline');
    checkLimit('data.x', data.x.length, limits.maxInlineRows);
    if (!data.y && input.loss !== 'output') {
      throw new SpecError('data.y', 'data.y is required for inline data unless loss is "output"');
    }
  } else if (data.x !== undefined || data.y !== undefined) {
    throw new SpecError(data.x !== undefined ? 'data.x' : 'data.y', `data.x and data.y are only used with data.source "inline", not "${data.source}"`);
  }

  let dataset: DatasetShape;
  // Loss "output" ignores targets, so inline data may come without y: the loader gets a dummy column.
  const toLoad = dataToLoad(dataSpec);
  try {
    dataset = describeDataset(toLoad, seed);
  } catch (err) {
    if (err instanceof DataSpecError) throw new SpecError(err.field, err.message);
    throw err;
  }

  const loss = input.loss ?? defaultLoss(dataset);
  if (loss === 'categorical_crossentropy' && dataset.task === 'regression') {
    throw new SpecError('loss', 'loss categorical_crossentropy needs class targets, but the data is a regression set');
  }
  // One-hot and 0/1 targets are in [0, 1] by construction: only regression targets can fail.
  if (loss === 'binary_crossentropy' && dataset.task === 'regression') {
    const targets = 'y' in dataset ? (dataset as Dataset).y : loadDataset(toLoad, seed).y;
    for (const v of targets) {
      if (v < 0 || v > 1) throw new SpecError('loss', 'loss binary_crossentropy needs targets in [0, 1]');
    }
  }
  return { dataSpec, dataset, loss };
}

