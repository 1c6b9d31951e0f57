// One recurrent layer's forward + backward as a callable, for timing against PyTorch doing the same work
// (scripts/recurrent-bench.ts): a layer and a dense head, the mean output as the loss, gradients read back.
import * as tf from '@tensorflow/tfjs';
import { normalizeGraph } from '../spec/graph-normalize.js';
import { normalizeInitializer } from '../model/initializers.js';
import { initGraphParameters } from '../model/graph-params.js';
import { graphForward } from '../model/graph-forward.js';
import { graphTensors } from './graph-measure.js';
import type { RecurrentLayerKind } from '../../schemas/vocabulary.js';

export interface RecurrentWorkload {
  kind: RecurrentLayerKind;
  batch: number;
  steps: number;
  features: number;
  units: number;
}

/** A step function (forward, backward, gradients on the host) and the dispose of its tensors. */
export function recurrentStepTimer(w: RecurrentWorkload): { step: () => void; dispose: () => void } {
  const init = { weights: normalizeInitializer('glorot_uniform', 'weights'), bias: normalizeInitializer('zeros', 'bias') };
  const graph = normalizeGraph([{ kind: w.kind, units: w.units }, { kind: 'dense', units: 1 }], [w.steps, w.features], {
    init, useBias: true, outputUnits: 1, anyOutput: false, maxWidth: 4096, maxDepth: 100,
  });
  const { tensors, list } = graphTensors(graph, initGraphParameters(graph, 1));
  const x = tf.randomNormal([w.batch, w.steps, w.features]);
  const key = `${graph.rows[0]!.node.path}:recurrent_kernel`;
  const step = (): void => {
    tf.tidy(() => {
      const f = (W: tf.Tensor, U: tf.Tensor): tf.Scalar =>
        tf.mean(graphForward(graph, { ...tensors, weights: [W, tensors.weights[1]!], named: new Map([[key, U]]) }, x, null).output);
      const { grads } = tf.valueAndGrads(f)([tensors.weights[0]!, tensors.named.get(key)!]);
      grads.forEach((g) => g.dataSync());
    });
  };
  return { step, dispose: () => { list.forEach((t) => t.dispose()); x.dispose(); } };
}
