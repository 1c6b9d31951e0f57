// A recurrent layer of a layer graph made whole (issue 14): defaults, limits, the [time, features] input
// checked, its row (one per recurrent layer) with its parameters and FLOPs counted into the graph's.
import type { RecurrentLayerInput } from '../../schemas/recurrent-layers.js';
import { normalizeActivation } from '../model/activations.js';
import { normalizeInitializer } from '../model/initializers.js';
import type { LayerInits, RowPlan } from './graph-types.js';
import { GATE_ORDER, type RecurrentNode } from './recurrent-types.js';

/** Steps of any sequence a recurrent layer reads: the time loop is one small product per step. */
export const MAX_STEPS = 2000;

/** What the graph builder lends a recurrent layer: its failure and limit helpers, its counters and defaults. */
export interface RecurrentBuild {
  fail(field: string, path: string, message: string): never;
  limit(field: string, path: string, what: string, value: number, max: number): void;
  rows: RowPlan[];
  parameters: number;
  weightFlops: number;
  elements: number;
  init: LayerInits;
  useBias: boolean;
  maxWidth: number;
  maxDepth: number;
}

const ORTHOGONAL = normalizeInitializer('orthogonal', 'recurrent');

/** The normalised node of a simple_rnn, lstm or gru reading `shape` ([time, features]); pushes its row. */
export function recurrentNode(b: RecurrentBuild, raw: RecurrentLayerInput, shape: number[], f: string, path: string, block: string | null): RecurrentNode {
  if (shape.length !== 2) b.fail(f, path, `${raw.kind} needs a sequence input [time, features] but gets [${shape.join(', ')}]; set network.input to [time, features]`);
  const [steps, features] = shape as [number, number];
  b.limit(f, path, 'units', raw.units, b.maxWidth);
  b.limit(f, path, 'steps', steps, MAX_STEPS);
  const gates = GATE_ORDER[raw.kind].length;
  const returnSequences = raw.returnSequences ?? false;
  const forgetBias = raw.kind === 'lstm' ? raw.forgetBias ?? 0 : 0;
  const node: RecurrentNode = {
    kind: raw.kind, path, name: raw.name ?? path.split('.').pop()!, activation: { name: 'linear' },
    cell: raw.activation !== undefined ? normalizeActivation(raw.activation, `${f}.activation`) : { name: 'tanh' },
    inputShape: shape, outputShape: returnSequences ? [steps, raw.units] : [raw.units],
    units: raw.units, gates, steps, features, returnSequences, useBias: raw.useBias ?? b.useBias, forgetBias,
    init: {
      weights: raw.init?.weights !== undefined ? normalizeInitializer(raw.init.weights, `${f}.init.weights`) : b.init.weights,
      recurrent: raw.init?.recurrent !== undefined ? normalizeInitializer(raw.init.recurrent, `${f}.init.recurrent`) : ORTHOGONAL,
      bias: raw.init?.bias !== undefined ? normalizeInitializer(raw.init.bias, `${f}.init.bias`) : b.init.bias,
    },
  };
  if (node.cell.name === 'softmax') b.fail(`${f}.activation`, path, 'softmax is not elementwise: a recurrence needs an elementwise activation such as tanh');
  const width = gates * raw.units;
  const weightCount = features * width;
  b.rows.push({ index: b.rows.length, node, block, shortcut: false, fanIn: features, fanOut: width, weightCount, outputSize: node.outputShape.reduce((x, y) => x * y, 1) });
  if (b.rows.length > b.maxDepth) b.fail(f, path, `the graph has more than ${b.maxDepth} weight layers (the limit, GRADLENS_MAX_DEPTH)`);
  // W, U, the bias (a gru has a second one, b_hh, which its reset gate multiplies).
  b.parameters += weightCount + raw.units * width + (node.useBias ? width * (raw.kind === 'gru' ? 2 : 1) : 0);
  // Per example: the input product over every step at once, and one h·U product per step.
  b.weightFlops += 2 * steps * (features + raw.units) * width;
  // Gates, cell state and probes: a few entries per gate entry and step.
  b.elements += 3 * steps * width;
  return node;
}
