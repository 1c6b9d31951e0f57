// packParameters / unpackParameters: the one flat order (W, existing b, aux) autodiff and optimizers see, and its inverse.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { initParameters } from '../../src/engine/model/network.js';
import { disposeParameters, packedLength, packParameters, parameterTensors, unpackParameters, type ParameterTensors } from '../../src/engine/model/parameter-pack.js';

/** Three layers, the middle one without a bias, a vector and a scalar auxiliary parameter; every entry distinct. */
function planted(): ParameterTensors {
  return {
    weights: [tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]), tf.tensor2d([[5, 6]])],
    biases: [tf.tensor1d([7, 8]), null, tf.tensor1d([9, 10])],
    aux: [
      { layer: 0, name: 'gamma', tensor: tf.tensor1d([11, 12]) },
      { layer: 2, name: 'gate', tensor: tf.scalar(13) },
    ],
  };
}

const valuesOf = (p: ParameterTensors) => ({
  weights: p.weights.map((w) => Array.from(w.dataSync())),
  biases: p.biases.map((b) => (b ? Array.from(b.dataSync()) : null)),
  aux: p.aux.map((a) => ({ layer: a.layer, name: a.name, values: Array.from(a.tensor.dataSync()) })),
});

describe('packParameters / unpackParameters', () => {
  it('packs W in layer order, then the biases that exist, then the auxiliary parameters', () => {
    const p = planted();
    const list = packParameters(p);
    expect(list).toHaveLength(packedLength(p));
    expect(list.map((t) => Array.from(t.dataSync()))).toEqual([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13]]);
    disposeParameters(p);
  });

  it('unpacks the same tensors into the same slots: a null bias stays null, aux keep layer and name', () => {
    const p = planted();
    const back = unpackParameters(packParameters(p), p);
    back.weights.forEach((w, l) => expect(w).toBe(p.weights[l]));
    back.biases.forEach((b, l) => expect(b).toBe(p.biases[l]));
    expect(back.biases[1]).toBeNull();
    back.aux.forEach((a, i) => expect(a).toEqual(p.aux[i]));
    disposeParameters(p);
  });

  it('lays out other tensors of the packed order (updates, gradients) as the template is', () => {
    const p = planted();
    const doubled = packParameters(p).map((t) => tf.mul(t, 2));
    const q = unpackParameters(doubled, p);
    expect(valuesOf(q)).toEqual({
      weights: [[2, 4], [6, 8], [10, 12]],
      biases: [[14, 16], null, [18, 20]],
      aux: [{ layer: 0, name: 'gamma', values: [22, 24] }, { layer: 2, name: 'gate', values: [26] }],
    });
    disposeParameters(q);
    disposeParameters(p);
  });

  it('refuses a list of the wrong length', () => {
    const p = planted();
    expect(() => unpackParameters(packParameters(p).slice(1), p)).toThrow(/6 tensors for a layout of 7/);
    disposeParameters(p);
  });

  it('round-trips a network’s own parameters (Fixup scalars, layer-norm gamma/beta, no biases) and disposes every tensor', () => {
    const { spec } = normalizeSpec({
      seed: 5, network: { depth: 5, width: 6, useBias: false, normalization: 'layer', residual: { every: 2, variant: 'fixup' } },
      data: { source: 'moons', batchSize: 4 },
    });
    const init = initParameters(spec.network, spec.seed);
    expect(init.aux!.length).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    const p = parameterTensors(init);
    const list = packParameters(p);
    expect(list).toHaveLength(init.weights.length + init.aux!.length);
    const back = unpackParameters(list, p);
    expect(back.biases.every((b) => b === null)).toBe(true);
    expect(valuesOf(back)).toEqual({
      weights: init.weights.map((w) => Array.from(w)),
      biases: init.biases.map(() => null),
      aux: init.aux!.map((a) => ({ layer: a.layer, name: a.name, values: Array.from(a.values) })),
    });
    disposeParameters(p);
    expect(tf.memory().numTensors).toBe(before);
  });
});
