// One-off timing of a recurrent layer's forward + backward (issue 14's workload: LSTM, 100 steps, 128 units,
// batch 32) on a chosen backend, against scripts/recurrent_bench_torch.py doing the same work in PyTorch.
// Run: npx tsx scripts/recurrent-bench.ts [native|wasm|cpu] [lstm|gru|simple_rnn]
import * as tf from '@tensorflow/tfjs';
import { activateBackend } from '../src/engine/backends/select.js';
import { normalizeGraph } from '../src/engine/spec/graph-normalize.js';
import { normalizeInitializer } from '../src/engine/model/initializers.js';
import { initGraphParameters } from '../src/engine/model/graph-params.js';
import { graphTensors } from '../src/engine/measure/graph-measure.js';
import { graphForward } from '../src/engine/model/graph-forward.js';

const backend = (process.argv[2] ?? 'native') as 'native' | 'wasm' | 'cpu';
const kind = (process.argv[3] ?? 'lstm') as 'lstm' | 'gru' | 'simple_rnn';
const B = 32, T = 100, F = 32, U = 128, REPEATS = 5;
await activateBackend(backend);
const init = { weights: normalizeInitializer('glorot_uniform', 'w'), bias: normalizeInitializer('zeros', 'b') };
const graph = normalizeGraph([{ kind, units: U }, { kind: 'dense', units: 1 }] as never, [T, F], { init, useBias: true, outputUnits: 1, anyOutput: false, maxWidth: 4096, maxDepth: 100 });
const params = initGraphParameters(graph, 1);
const { tensors, list } = graphTensors(graph, params);
const x = tf.randomNormal([B, T, F]);
const step = (): void => {
  tf.tidy(() => {
    const f = (...ps: tf.Tensor[]): tf.Scalar => {
      const t = { ...tensors, weights: [ps[0]!, ps[1]!], biases: [ps[2]!, ps[3]!], named: new Map([['lstm1:recurrent_kernel', ps[4]!], ['rnn1:recurrent_kernel', ps[4]!], ['gru1:recurrent_kernel', ps[4]!]]) };
      return tf.mean(graphForward(graph, t, x, null).output);
    };
    const u = tensors.named.get(`${graph.rows[0]!.node.path}:recurrent_kernel`)!;
    const { grads } = tf.valueAndGrads(f)([tensors.weights[0]!, tensors.weights[1]!, tensors.biases[0]!, tensors.biases[1]!, u]);
    grads.forEach((g) => g.dataSync());
  });
};
step();
const times: number[] = [];
for (let i = 0; i < REPEATS; i++) {
  const t0 = performance.now();
  step();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ backend, kind, batch: B, steps: T, features: F, units: U, medianMs: times[Math.floor(REPEATS / 2)], minMs: times[0] }));
list.forEach((t) => t.dispose());
