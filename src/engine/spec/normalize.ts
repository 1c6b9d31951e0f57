// Turns a request's analysis spec into a fully normalised one (every default filled in), validated from its data's shape; and its dataset.
import type { AnalysisSpecInput, LossName } from '../../schemas/spec.js';
import { normalizeActivation, type ActivationSpec } from '../model/activations.js';
import { normalizeInitializer, type InitializerSpec } from '../model/initializers.js';
import { describeDataset, loadDataset, type Dataset, type DatasetShape, type DataSpec, DataSpecError } from '../data/datasets.js';
import { SpecError } from '../common/errors.js';
import { normalizeThresholds, type Thresholds } from './thresholds.js';
import type { LayerInput } from '../../schemas/layers.js';
import type { NormalizedGraph } from './graph-types.js';
import { isGraphInput, normalizeGraphNetwork } from './graph-spec.js';
import { checkLimit, dataToLoad, DEFAULT_BATCH_SIZE, normalizeData, type NormalizedData } from './data-spec.js';

export { DEFAULT_BATCH_SIZE };

import type { NormalizationKind, ResidualVariant } from '../../schemas/vocabulary.js';
export type { NormalizationKind, ResidualVariant };

export const DEFAULT_SEED = 42;
export const DEFAULT_WIDTH = 32;

export interface NormalizedNetwork {
  depth: number;
  inputUnits: number;
  outputUnits: number;
  /** Hidden widths, input side first (depth − 1 entries). */
  widths: number[];
  /** Hidden activations (depth − 1 entries). */
  activations: ActivationSpec[];
  outputActivation: ActivationSpec;
  useBias: boolean;
  init: { weights: InitializerSpec; bias: InitializerSpec };
  /**
   * scale: the fixed branch multiplier (plain), the initial learnable gate (rezero, skipinit) or the
   * initial learnable Fixup multiplier (fixup).
   */
  residual: { every: number; scale: number; variant: ResidualVariant };
  /** Normalisation between each hidden dense layer and its activation. */
  normalization: NormalizationKind;
  /** Layer indices of each residual block (hidden-to-hidden layers only). */
  blocks: number[][];
  /**
   * A layer graph (network.layers or network.preset): then its rows are the layers, depth is their number
   * and widths, activations, residual, normalization and blocks are empty or neutral (the graph says it all).
   */
  graph?: NormalizedGraph;
  /** A layer graph's layers in request form (a preset written out). */
  layers?: LayerInput[];
}

export interface NormalizedSpec {
  seed: number;
  network: NormalizedNetwork;
  data: NormalizedData;
  loss: LossName;
  include: ('parameters' | 'batch')[];
  thresholds: Thresholds;
  whatIf: boolean;
}

export interface SpecLimits {
  maxDepth: number;
  maxWidth: number;
  maxBatchSize: number;
  maxBatches: number;
  maxInlineRows: number;
  /**
   * Estimated floating-point operations (forward + backward, all batches, what-if runs included) one
   * synchronous analysis may use: the client waits on an open request for it.
   */
  maxAnalysisFlops: number;
  /** The same for an analysis that runs as a job (Prefer: respond-async) and for each cell of a sweep. */
  maxAsyncAnalysisFlops: number;
  /** Estimated FLOPs of one training: every step, every record and both evaluations. */
  maxTrainingFlops: number;
  /** Estimated FLOPs of one sweep, all cells together. */
  maxSweepFlops: number;
  /** Trainable parameters one network may have. */
  maxParameters: number;
}

/**
 * The default budget of work that runs as a job (async analyses, trainings, sweeps): minutes of one compute
 * thread. Measured here with scripts/flop-rate.ts (scripts/flop-rate.results.txt: native backend, one
 * thread, 2 cores shared with other work): the 400-step 30 × 256 MNIST training, 1.45e12 estimated FLOPs,
 * took 129 s of CPU (1.1e10 FLOPs per CPU second); small layers do less per second (the README's
 * 10 × 128 training: 3.9e9). So 2e12 is about 3 minutes of one thread on deep MLPs and up to about 8 on
 * small layers; the job timeout (GRADLENS_JOB_TIMEOUT_MS, 10 min) is the backstop where the estimate, the
 * backend (wasm is slower) or a loaded machine is off.
 */
const JOB_FLOPS = 2e12;

export const DEFAULT_LIMITS: SpecLimits = {
  maxDepth: 200,
  maxWidth: 4096,
  maxBatchSize: 4096,
  maxBatches: 64,
  maxInlineRows: 10000,
  // A synchronous analysis holds its request open: a couple of seconds of one thread (measured above).
  maxAnalysisFlops: 20e9,
  maxAsyncAnalysisFlops: JOB_FLOPS,
  maxTrainingFlops: JOB_FLOPS,
  maxSweepFlops: JOB_FLOPS,
  maxParameters: 20_000_000,
};

/** Output size the data's targets imply for a loss (before any network.outputUnits override). */
export function targetUnits(ds: DatasetShape, loss: LossName): number {
  if (loss === 'categorical_crossentropy') return ds.numClasses ?? ds.outputSize;
  if (loss === 'binary_crossentropy' && ds.task === 'classification' && ds.numClasses === 2) return 1;
  return ds.outputSize;
}

function defaultOutputActivation(loss: LossName): ActivationSpec {
  if (loss === 'categorical_crossentropy') return { name: 'softmax' };
  if (loss === 'binary_crossentropy') return { name: 'sigmoid' };
  return { name: 'linear' };
}

/** Residual blocks: hidden-to-hidden layers 1..depth−2 in runs of `every`; a short tail stays plain. */
function residualBlocks(depth: number, every: number, widths: number[]): number[][] {
  if (every <= 0) return [];
  const blocks: number[][] = [];
  for (let start = 1; start + every - 1 <= depth - 2; start += every) {
    const block = Array.from({ length: every }, (_, i) => start + i);
    // A block maps x (width of layer start−1's output) to x + αF(x): every layer inside must keep that width.
    const inWidth = widths[start - 1]!;
    for (const l of block) {
      if (widths[l] !== inWidth) {
        throw new SpecError(
          'network.widths',
          `network.widths: residual block of layers ${block[0]}..${block[block.length - 1]} needs every width equal to its input width ${inWidth}, but layer ${l} has ${widths[l]} units`,
        );
      }
    }
    blocks.push(block);
  }
  return blocks;
}

/** Whether a spec is normalised already: its residual blocks are worked out (a request's network cannot carry them). */
export function isNormalizedSpec(spec: AnalysisSpecInput | NormalizedSpec): spec is NormalizedSpec {
  return Array.isArray((spec as NormalizedSpec).network.blocks);
}

/** Specs this thread has normalised (tests: a job's spec is normalised once, on the HTTP thread). */
export const normalizations = { count: 0 };

/** The normalised spec and its dataset (drawn or loaded): what a run needs. */
export function normalizeSpec(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS): { spec: NormalizedSpec; dataset: Dataset } {
  const spec = normalizeSpecShape(input, limits);
  return { spec, dataset: datasetOf(spec) };
}

/** The dataset of a normalised spec, drawn or loaded once where it runs (the spec was validated already). */
export function datasetOf(spec: NormalizedSpec): Dataset {
  try {
    return loadDataset(dataToLoad(spec.data), spec.seed);
  } catch (err) {
    if (err instanceof DataSpecError) throw new SpecError(err.field, err.message);
    throw err;
  }
}

/**
 * Validates and normalises a spec (SpecError naming the field and the limit) from the shape of its data
 * alone: a generated set is not drawn and a bundled one not loaded (inline data is read: it is the request),
 * so the HTTP thread validates a request of 100 000 generated samples without generating them. The one
 * check that needs values, binary cross-entropy's targets in [0, 1], can only fail for regression data,
 * whose values it then reads.
 */
export function normalizeSpecShape(input: AnalysisSpecInput, limits: SpecLimits = DEFAULT_LIMITS): NormalizedSpec {
  normalizations.count++;
  const seed = input.seed ?? DEFAULT_SEED;
  const net = input.network;
  if (isGraphInput(net)) return normalizeGraphSpecShape(input, limits, seed);
  if (net.depth === undefined) {
    throw new SpecError('network.depth', 'network.depth is required unless network.layers or network.preset describes a layer graph');
  }
  const depth = net.depth;
  checkLimit('network.depth', depth, limits.maxDepth);
  const hidden = depth - 1;

  let widths: number[];
  if (net.widths !== undefined) {
    if (net.widths.length !== hidden) {
      throw new SpecError('network.widths', `network.widths has ${net.widths.length} entries but depth ${net.depth} needs ${hidden} (one per hidden layer)`);
    }
    widths = [...net.widths];
  } else {
    widths = Array.from({ length: hidden }, () => net.width ?? DEFAULT_WIDTH);
  }
  widths.forEach((w, i) => checkLimit(net.widths ? `network.widths[${i}]` : 'network.width', w, limits.maxWidth));

  let activations: ActivationSpec[];
  const act = net.activation ?? 'relu';
  if (Array.isArray(act)) {
    if (act.length !== hidden) {
      throw new SpecError('network.activation', `network.activation has ${act.length} entries but depth ${net.depth} needs ${hidden} (one per hidden layer)`);
    }
    activations = act.map((a, i) => normalizeActivation(a, `network.activation[${i}]`));
  } else {
    const one = normalizeActivation(act, 'network.activation');
    activations = Array.from({ length: hidden }, () => ({ ...one }));
  }
  activations.forEach((a, i) => {
    const field = Array.isArray(act) ? `network.activation[${i}]` : 'network.activation';
    if (a.name === 'softmax') throw new SpecError(field, `${field}: softmax is only allowed as network.outputActivation`);
  });

  const { dataSpec, dataset, loss } = normalizeData(input, limits, seed);
  const outputUnits = net.outputUnits ?? targetUnits(dataset, loss);
  if (loss !== 'output' && outputUnits !== targetUnits(dataset, loss)) {
    throw new SpecError('network.outputUnits', `network.outputUnits is ${outputUnits} but the targets of ${dataSpec.source} with loss ${loss} have ${targetUnits(dataset, loss)} values`);
  }
  checkLimit('network.outputUnits', outputUnits, limits.maxWidth);

  const outputActivation = net.outputActivation
    ? normalizeActivation(net.outputActivation, 'network.outputActivation')
    : defaultOutputActivation(loss);
  if (outputActivation.name === 'softmax' && outputUnits < 2) {
    throw new SpecError('network.outputActivation', 'softmax needs at least 2 output units');
  }

  const every = net.residual?.every ?? 0;
  const variant: ResidualVariant = net.residual?.variant ?? 'plain';
  // A learnable gate starts at 0 (ReZero, SkipInit); a Fixup multiplier at 1.
  const scale = net.residual?.scale ?? (variant === 'rezero' || variant === 'skipinit' ? 0 : 1);
  if (!Number.isFinite(scale)) throw new SpecError('network.residual.scale', 'network.residual.scale must be a finite number');
  const blocks = residualBlocks(depth, every, widths);
  if (variant !== 'plain' && blocks.length === 0) {
    throw new SpecError('network.residual.variant', `network.residual.variant ${variant} needs residual blocks: set network.residual.every >= 1 with depth >= every + 2`);
  }

  const spec: NormalizedSpec = {
    seed,
    network: {
      depth,
      inputUnits: dataset.inputSize,
      outputUnits,
      widths,
      activations,
      outputActivation,
      useBias: net.useBias ?? true,
      init: {
        weights: normalizeInitializer(net.init?.weights ?? 'glorot_uniform', 'network.init.weights'),
        bias: normalizeInitializer(net.init?.bias ?? 'zeros', 'network.init.bias'),
      },
      residual: { every, scale, variant },
      normalization: net.normalization ?? 'none',
      blocks,
    },
    data: dataSpec,
    loss,
    include: [...new Set(input.include ?? [])],
    thresholds: normalizeThresholds(input.thresholds),
    whatIf: input.whatIf ?? false,
  };
  return spec;
}

/** A layer graph's normalised spec: the data as for every spec, the network from spec/graph-spec.ts. */
function normalizeGraphSpecShape(input: AnalysisSpecInput, limits: SpecLimits, seed: number): NormalizedSpec {
  const { dataSpec, dataset, loss } = normalizeData(input, limits, seed);
  const parts = normalizeGraphNetwork(input.network, {
    dataset, outputUnits: targetUnits(dataset, loss), anyOutput: loss === 'output', defaultOutputActivation: defaultOutputActivation(loss),
    maxDepth: limits.maxDepth, maxWidth: limits.maxWidth,
  });
  return {
    seed,
    network: {
      depth: parts.graph.rows.length,
      inputUnits: dataset.inputSize,
      outputUnits: parts.graph.outputUnits,
      widths: [],
      activations: [],
      outputActivation: parts.outputActivation,
      useBias: parts.useBias,
      init: parts.init,
      residual: { every: 0, scale: 1, variant: 'plain' },
      normalization: 'none',
      blocks: [],
      graph: parts.graph,
      layers: parts.layers,
    },
    data: dataSpec,
    loss,
    include: [...new Set(input.include ?? [])],
    thresholds: normalizeThresholds(input.thresholds),
    whatIf: input.whatIf ?? false,
  };
}

/** A layer graph's spec in request form: network.layers (a preset written out), input, outputActivation, useBias, init. */
function graphSpecToInput(spec: NormalizedSpec, graph: NormalizedGraph, layers: LayerInput[]): AnalysisSpecInput {
  const net = spec.network;
  const { x, y, ...data } = spec.data;
  return {
    seed: spec.seed,
    network: {
      input: [...graph.input],
      layers: structuredClone(layers),
      outputActivation: { ...net.outputActivation },
      useBias: net.useBias,
      init: { weights: { ...net.init.weights }, bias: { ...net.init.bias } },
    },
    data: { ...data, ...(x ? { x } : {}), ...(y ? { y } : {}) },
    loss: spec.loss,
    include: [...spec.include],
    thresholds: { ...spec.thresholds },
    whatIf: spec.whatIf,
  };
}

/** The normalised spec in request form: every default filled in, and valid to send again as it is. */
export function specToInput(spec: NormalizedSpec): AnalysisSpecInput {
  const net = spec.network;
  if (net.graph) return graphSpecToInput(spec, net.graph, net.layers ?? []);
  const sameActivation = net.activations.every((a) => a.name === net.activations[0]?.name && a.alpha === net.activations[0]?.alpha);
  const { x, y, ...data } = spec.data;
  return {
    seed: spec.seed,
    network: {
      depth: net.depth,
      widths: [...net.widths],
      activation: sameActivation && net.activations[0] ? { ...net.activations[0] } : net.activations.map((a) => ({ ...a })),
      outputActivation: { ...net.outputActivation },
      outputUnits: net.outputUnits,
      useBias: net.useBias,
      init: { weights: { ...net.init.weights }, bias: { ...net.init.bias } },
      residual: { ...net.residual },
      normalization: net.normalization,
    },
    data: { ...data, ...(x ? { x } : {}), ...(y ? { y } : {}) },
    loss: spec.loss,
    include: [...spec.include],
    thresholds: { ...spec.thresholds },
    whatIf: spec.whatIf,
  };
}
