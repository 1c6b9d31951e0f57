// A layer graph as a Trainable (runs/trainable.ts): the parameter list of model/graph-params.ts (every row's
// weight, the biases, gamma/beta) through model/graph-forward.ts and measure/graph-measure.ts. Nothing here
// names a layer kind: a row kind that graph-params, graph-forward and graph-measure know trains as it is.
// A graph with recurrent layers also records their gradient through time (measure/through-time.ts).
import type * as tf from '@tensorflow/tfjs';
import type { NormalizedSpec } from '../spec/normalize.js';
import type { Dataset } from '../data/datasets.js';
import { initGraphParameters, type GraphParameters } from '../model/graph-params.js';
import { graphForward } from '../model/graph-forward.js';
import { graphTensors, graphTensorsOf, measureGraphBatch } from '../measure/graph-measure.js';
import { graphParametersJson, mainPathRows, rowActivations } from '../measure/graph-analysis.js';
import { hostValues, type MeasureOnArgs, type Trainable, type TrainingThroughTimeRecord } from './trainable.js';
import { deriveSeed } from '../common/random.js';
import { measureStepBatch } from '../measure/through-time.js';
import { memoryHorizonOf } from '../diagnosis/through-time-verdict.js';
import { isRecurrentNode } from '../spec/recurrent-types.js';
import type { NormalizedGraph } from '../spec/graph-types.js';

const activationName = (a: { name: string; alpha?: number }): string => (a.alpha !== undefined ? `${a.name}(${a.alpha})` : a.name);

/** A reading of -1 means "not measured here" (a linear row has no derivative): null in the record. */
const measured = (v: number): number | null => (v >= 0 || Number.isNaN(v) ? v : null);

export function graphTrainable(spec: NormalizedSpec, dataset: Dataset): Trainable {
  const graph = spec.network.graph!;
  const init = initGraphParameters(graph, spec.seed);
  const acts = rowActivations(graph);
  const inputSize = graph.input.reduce((a, b) => a * b, 1);
  /** The dropout masks of a step: its update and its record see the same ones. */
  const dropoutSeed = (step: number): number => deriveSeed(spec.seed, `training:dropout:${step}`);
  /** Host values of `list` in the layout of the initial parameters (for parametersJson). */
  const asParameters = async (list: tf.Tensor[]): Promise<GraphParameters> => {
    const values = await hostValues(list);
    let next = init.weights.length;
    const biases = init.biases.map((b) => (b ? values[next++]! : null));
    const aux = init.aux.map((a) => ({ ...a, values: values[next++]! }));
    return { ...init, weights: values.slice(0, init.weights.length), biases, aux };
  };
  return {
    spec, dataset,
    inputShape: [...graph.input],
    inputSize,
    outputActivation: spec.network.outputActivation,
    layers: graph.rows.map((row) => {
      const n = row.node;
      return {
        index: row.index, name: n.path, inputUnits: row.fanIn, units: n.outputShape[n.outputShape.length - 1]!,
        activation: activationName(acts[row.index]!),
        path: n.path, kind: n.kind, outputShape: [...n.outputShape], block: row.block, shortcut: row.shortcut,
      };
    }),
    firstRow: mainPathRows(graph)[0]!,
    // graphTensors puts every row's weight first, in row order.
    weightSlots: graph.rows.map((r) => r.index),
    parameterValues: graph.parameters,
    initialList: () => graphTensors(graph, init).list,
    initialParameters: () => graphParametersJson(graph, init),
    forward(list, x, step) {
      const { logits, output } = graphForward(graph, graphTensorsOf(list, init), x, null, { dropoutSeed: step === undefined ? null : dropoutSeed(step) });
      return { logits, output };
    },
    async measure({ list, x, y, saturationThreshold, step }) {
      const m = await measureGraphBatch({
        graph, params: init, tensors: graphTensorsOf(list, init), list, x, y, loss: spec.loss,
        outputActivation: spec.network.outputActivation, saturationThreshold, dropoutSeed: dropoutSeed(step),
      });
      return { loss: m.loss, readings: m.readings };
    },
    ...(hasRecurrent(graph) ? { throughTime: (a: MeasureOnArgs) => throughTimeRecords(spec, init, a, dropoutSeed(a.step)) } : {}),
    records: (readings, B, ratios) => graph.rows.map((row) => {
      const r = readings[row.index]!;
      return {
        index: row.index, weightNorm: r.weightNorm, weightGradNorm: r.gradNorm, backpropNorm: Math.sqrt(B) * r.deltaNorm,
        updateToWeightRatio: ratios ? ratios[row.index]! : null,
        deadFraction: measured(r.dead),
        saturatedFraction: measured(r.saturated),
      };
    }),
    parametersOf: async (list) => graphParametersJson(graph, await asParameters(list)),
  };
}

const hasRecurrent = (graph: NormalizedGraph): boolean => graph.rows.some((r) => isRecurrentNode(r.node));

/** records[].throughTime: the record's batch on the current parameters, with the step's dropout masks. */
async function throughTimeRecords(spec: NormalizedSpec, init: GraphParameters, a: MeasureOnArgs, dropoutSeed: number): Promise<TrainingThroughTimeRecord[]> {
  const graph = spec.network.graph!;
  const m = await measureStepBatch({ spec, tensors: graphTensorsOf(a.list, init), x: a.x, y: a.y, saturation: a.saturationThreshold, dropoutSeed });
  const rows = graph.rows.filter((r) => isRecurrentNode(r.node));
  return rows.map((row, i) => {
    const gate = m.gateMean[i]!;
    return {
      layer: row.index,
      norms: m.norms[i]!,
      memoryHorizon: memoryHorizonOf(m.norms[i]!, spec.thresholds.vanishingRatio),
      gateMean: gate.length > 0 ? gate.reduce((s, v) => s + v, 0) / gate.length : null,
    };
  });
}
