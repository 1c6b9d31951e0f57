// lstm and gru outputs against PyTorch's nn.LSTM and nn.GRU for the same parameters: a committed fixture
// (scripts/recurrent_fixture.py) loaded into gradlens' layout — W = weight_ih_l0ᵀ, U = weight_hh_l0ᵀ, gate
// order as PyTorch's; an lstm's bias is b_ih + b_hh, a gru keeps b_hh apart (its reset gate multiplies it).
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { normalizeGraph } from '../../src/engine/spec/graph-normalize.js';
import { normalizeInitializer } from '../../src/engine/model/initializers.js';
import { recurrentForward } from '../../src/engine/model/recurrent-forward.js';
import type { RecurrentNode } from '../../src/engine/spec/recurrent-types.js';

interface Case { kind: 'lstm' | 'gru'; weight_ih_l0: number[][]; weight_hh_l0: number[][]; bias_ih_l0: number[]; bias_hh_l0: number[]; output: number[][][] }
const fixture = JSON.parse(readFileSync(new URL('../fixtures/recurrent/pytorch-lstm-gru.json', import.meta.url), 'utf8')) as {
  batch: number; steps: number; features: number; units: number; x: number[][][]; cases: Case[];
};

beforeAll(async () => {
  await useTestBackend();
});

const transpose = (m: number[][]): number[][] => m[0]!.map((_, j) => m.map((row) => row[j]!));

function nodeOf(kind: Case['kind']): RecurrentNode {
  const init = { weights: normalizeInitializer('zeros', 'w'), bias: normalizeInitializer('zeros', 'b') };
  const graph = normalizeGraph([{ kind, units: fixture.units, returnSequences: true }, { kind: 'flatten' }, { kind: 'dense', units: 1 }] as never, [fixture.steps, fixture.features], {
    init, useBias: true, outputUnits: 1, anyOutput: false, maxWidth: 64, maxDepth: 10,
  });
  return graph.layers[0] as RecurrentNode;
}

describe('recurrent outputs equal PyTorch\'s for the same parameters (fixture)', () => {
  for (const c of fixture.cases) {
    it(`${c.kind}: every step of every sequence within float32 rounding`, async () => {
      const before = tf.memory().numTensors;
      const node = nodeOf(c.kind);
      const y = tf.tidy(() => {
        const bias = c.kind === 'lstm' ? c.bias_ih_l0.map((v, i) => v + c.bias_hh_l0[i]!) : c.bias_ih_l0;
        return recurrentForward(node, tf.tensor3d(fixture.x), {
          kernel: tf.tensor2d(transpose(c.weight_ih_l0)),
          recurrent: tf.tensor2d(transpose(c.weight_hh_l0)),
          bias: tf.tensor1d(bias),
          recurrentBias: c.kind === 'gru' ? tf.tensor1d(c.bias_hh_l0) : null,
        });
      });
      const got = (await y.array()) as number[][][]; // async: webgpu in Node cannot read back synchronously
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
      let worst = 0;
      c.output.forEach((seq, b) => seq.forEach((step, t) => step.forEach((v, u) => { worst = Math.max(worst, Math.abs(got[b]![t]![u]! - v)); })));
      expect(worst, 'largest |gradlens − PyTorch| over every output').toBeLessThan(1e-5);
      // The gates reach saturation in this fixture: outputs are far from a linear map of the input.
      expect(Math.max(...c.output.flat(2).map(Math.abs))).toBeGreaterThan(0.5);
    });
  }
});
