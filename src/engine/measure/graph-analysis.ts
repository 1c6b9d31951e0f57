// One layer graph's analysis: its batches measured (measure/graph-measure.ts) and turned into one row per
// dense/conv2d layer in graph order, the summary fitted over the main path (projection shortcuts left out).
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/datasets.js';
import type { NormalizedSpec } from '../spec/normalize.js';
import type { NormalizedGraph, RowPlan } from '../spec/graph-types.js';
import type { GraphParameters } from '../model/graph-params.js';
import type { ActivationSpec } from '../model/activations.js';
import { fitLogSlope, mean, spreadOf } from '../common/stats.js';
import { analysisBatches, DEFAULT_SATURATION_THRESHOLD, inputMoments, type AnalysisResult, type AnalysisTimings, type InputMoments, type LayerStats, type ParametersJson } from './measure.js';
import { graphTensors, measureGraphBatch } from './graph-measure.js';
import { deriveSeed } from '../common/random.js';
import type { BatchMeasurement, Reading } from './readings.js';
import { isRecurrentNode } from '../spec/recurrent-types.js';
import { sequenceParameterShape } from '../model/attention-forward.js';
import { blockStats } from './blocks.js';
import { stepReadings, throughTimeTaps, type BatchSteps, type StepReadings } from './through-time.js';
import type { GraphNode } from '../spec/graph-types.js';

/** Rows on the main path (every row but projection shortcuts): what the depth-wise fits and ratios use. */
export function mainPathRows(graph: NormalizedGraph): number[] {
  return graph.rows.filter((r) => !r.shortcut).map((r) => r.index);
}

/** Nested arrays of `shape` from row-major values. */
export function nest(values: ArrayLike<number>, shape: number[]): unknown[] {
  const build = (offset: number, dim: number): unknown[] => {
    const n = shape[dim]!;
    const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, i) => (dim === shape.length - 1 ? values[offset + i]! : build(offset + i * stride, dim + 1)));
  };
  return build(0, 0);
}

function rowStats(row: RowPlan, readings: Reading[], perBatch: BatchMeasurement[], params: GraphParameters, B: number, blockIndex: Map<string, number>): LayerStats {
  const node = row.node;
  const r = (key: keyof Reading): number[] => readings.map((p) => p[key]);
  const gradNorms = r('gradNorm');
  const backpropNorms = r('deltaNorm').map((n) => Math.sqrt(B) * n);
  const weightNorm = r('weightNorm')[0]!;
  const weightGradNorm = mean(gradNorms);
  const units = node.kind === 'conv2d' ? node.filters : node.units;
  const dead = r('dead');
  const deadFraction = dead.every((d) => d >= 0) ? mean(dead) : null;
  const saturated = r('saturated');
  const stats: LayerStats = {
    index: row.index,
    name: node.path,
    inputUnits: row.fanIn,
    units,
    activation: 'linear',
    residualBlock: row.block === null ? null : blockIndex.get(row.block)!,
    weightNorm,
    weightGradNorm,
    weightGradRms: weightGradNorm / Math.sqrt(row.weightCount),
    weightGradMaxAbs: mean(r('gradMaxAbs')),
    biasGradNorm: params.biases[row.index] ? mean(r('biasGradNorm')) : null,
    gradToWeightRatio: weightNorm > 0 ? weightGradNorm / weightNorm : null,
    backpropNorm: mean(backpropNorms),
    backpropRms: mean(backpropNorms) / Math.sqrt(row.outputSize),
    preActivationRms: Math.sqrt(mean(r('preMeanSq'))),
    activationMean: mean(r('actMean')),
    activationStd: Math.sqrt(mean(r('actVar'))),
    outputRms: Math.sqrt(mean(r('outMeanSq'))),
    deadFraction,
    saturatedFraction: saturated.every((s) => s >= 0) ? mean(saturated) : null,
    path: node.path,
    kind: node.kind,
    outputShape: [...node.outputShape],
    block: row.block,
    shortcut: row.shortcut,
  };
  if (node.kind === 'conv2d') {
    stats.spatial = [node.outputShape[0]!, node.outputShape[1]!];
    stats.channelDeadFraction = deadFraction;
  }
  if (perBatch.length > 1) stats.spread = { weightGradNorm: spreadOf(gradNorms), backpropNorm: spreadOf(backpropNorms) };
  const aux = params.aux.flatMap((p, i) => (p.layer === row.index
    ? [{ name: p.name, size: p.values.length, initial: p.values[0]!, gradNorm: mean(perBatch.map((b) => b.auxGradNorms[i]!)), layer: params.auxPaths[i]! }]
    : []));
  if (aux.length > 0) stats.auxParameters = aux;
  return stats;
}

/** A dropout in mode "train" anywhere in the graph: this pass drops, the through-time view is measured without. */
const dropsInTraining = (nodes: GraphNode[]): boolean =>
  nodes.some((n) => (n.kind === 'residual' ? dropsInTraining(n.layers) : n.kind === 'dropout' && n.mode === 'train'));

/**
 * Runs a layer graph's analysis on its dataset; leaves no tensors behind. `steps`: the recurrent layers'
 * through-time readings from the same forward and backward (one pass, not two), or null where the graph has
 * no recurrent layer or drops in training (measure/through-time.ts then measures them on a pass of its own).
 */
export async function runGraphAnalysis(spec: NormalizedSpec, dataset: Dataset, params: GraphParameters): Promise<{ result: AnalysisResult; timings: AnalysisTimings; input: InputMoments; steps: StepReadings[] | null }> {
  const graph = spec.network.graph!;
  const t0 = performance.now();
  const { batches, targets } = analysisBatches(spec, dataset);
  const input = inputMoments(batches);
  const t1 = performance.now();
  const { tensors, list } = graphTensors(graph, params);
  const perBatch: BatchMeasurement[] = [];
  const recurrent = graph.rows.some((r) => isRecurrentNode(r.node)) && !dropsInTraining(graph.layers);
  const steps: BatchSteps[] = [];
  try {
    for (const [i, batch] of batches.entries()) {
      const x = tf.tensor(batch.x, [batch.size, ...graph.input]);
      const { values, width } = targets[i]!;
      const y = spec.loss === 'output' ? null : tf.tensor2d(values, [batch.size, width]);
      const throughTime = recurrent ? throughTimeTaps(graph, batch.size) : undefined;
      try {
        const m = await measureGraphBatch({
          graph, params, tensors, list, x, y, loss: spec.loss, outputActivation: spec.network.outputActivation,
          saturationThreshold: spec.thresholds?.saturationDerivative ?? DEFAULT_SATURATION_THRESHOLD,
          dropoutSeed: deriveSeed(spec.seed, `analysis:dropout:${i}`), ...(throughTime ? { throughTime } : {}),
        });
        perBatch.push(m);
        if (m.steps) steps.push(m.steps);
      } finally {
        throughTime?.dispose();
        x.dispose();
        y?.dispose();
      }
    }
  } finally {
    list.forEach((t) => t.dispose());
  }
  const t2 = performance.now();
  const blockIndex = new Map<string, number>();
  for (const row of graph.rows) if (row.block !== null && !blockIndex.has(row.block)) blockIndex.set(row.block, blockIndex.size);
  const layers = graph.rows.map((row) => rowStats(row, perBatch.map((p) => p.readings[row.index]!), perBatch, params, spec.data.batchSize, blockIndex));
  const activations = rowActivations(graph);
  layers.forEach((s, i) => { const a = activations[i]!; s.activation = a.alpha !== undefined ? `${a.name}(${a.alpha})` : a.name; });
  const main = mainPathRows(graph);
  const first = layers[main[0]!]!, last = layers[layers.length - 1]!;
  const losses = perBatch.map((p) => p.loss);
  const result: AnalysisResult = {
    loss: mean(losses),
    batchSize: spec.data.batchSize,
    batches: perBatch.length,
    layers,
    summary: {
      firstToLastRatio: first.weightGradNorm / last.weightGradNorm,
      backpropFirstToLastRatio: first.backpropNorm / last.backpropNorm,
      weightGradLogSlope: fitLogSlope(layers.map((s) => s.weightGradNorm), main),
      backpropLogSlope: fitLogSlope(layers.map((s) => s.backpropNorm), main),
    },
  };
  if (perBatch.length > 1) result.lossSpread = spreadOf(losses);
  if (graph.transformerBlocks) result.blocks = blockStats(graph.transformerBlocks, layers);
  if (spec.include.includes('parameters')) result.parameters = graphParametersJson(graph, params);
  if (spec.include.includes('batch')) {
    result.batch = batches.map((b, i) => ({
      x: nest(b.x, [b.size, ...graph.input]) as number[][],
      y: nest(targets[i]!.values, [b.size, targets[i]!.width]) as number[][],
    }));
  }
  const t3 = performance.now();
  return { result, timings: { buildMs: t1 - t0, computeMs: t2 - t1, totalMs: t3 - t0 }, input, steps: recurrent ? stepReadings(graph, steps) : null };
}

/** The include: ["parameters"] layout of a graph's parameters: per row its path, kernel nested as the layer reads it, bias and gamma/beta. */
export function graphParametersJson(graph: NormalizedGraph, params: GraphParameters): (ParametersJson[number] & { path: string })[] {
  return graph.rows.map((row, i) => {
    const n = row.node;
    const cin = n.inputShape[n.inputShape.length - 1]!;
    const shape = n.kind === 'embedding' || n.kind === 'attention' ? sequenceParameterShape(n)
      : n.kind === 'conv2d' ? [n.kernel[0], n.kernel[1], cin, n.filters] : isRecurrentNode(n) ? [n.features, n.gates * n.units] : [cin, n.units];
    const own = params.aux.filter((p) => p.layer === i).map((p) => ({ name: p.name, values: Array.from(p.values) }));
    return {
      index: i, path: n.path, weights: nest(params.weights[i]!, shape) as number[][],
      bias: params.biases[i] ? Array.from(params.biases[i]!) : null, ...(own.length > 0 ? { auxParameters: own } : {}),
    };
  });
}

/** Each row's activation (its own, or the first after it), resolved from the graph as model/graph-forward.ts resolves it. */
export function rowActivations(graph: NormalizedGraph): ActivationSpec[] {
  const names: ActivationSpec[] = graph.rows.map(() => ({ name: 'linear' }));
  const rowOf = new Map(graph.rows.map((r) => [r.node.path, r.index]));
  let pending: number | null = null;
  const visit = (nodes: NormalizedGraph['layers']): void => {
    for (const node of nodes) {
      if (node.kind === 'residual') {
        pending = null;
        visit(node.layers);
        pending = null;
      } else if (isRecurrentNode(node)) {
        // A recurrent row's nonlinearity is inside its recurrence; nothing after it is its activation.
        names[rowOf.get(node.path)!] = node.cell;
        pending = null;
      } else if (node.kind === 'dense' || node.kind === 'conv2d' || node.kind === 'embedding' || node.kind === 'attention') {
        pending = rowOf.get(node.path)!;
      } else if (['max_pool', 'avg_pool', 'global_avg_pool', 'flatten'].includes(node.kind)) {
        pending = null;
      }
      if (node.activation.name !== 'linear' && pending !== null) {
        names[pending] = node.activation;
        pending = null;
      }
    }
  };
  visit(graph.layers);
  return names;
}
