// cachedParameters: the weights initParameters draws, shared between calls that would draw the same ones.
import { describe, expect, it } from 'vitest';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { initParameters } from '../../src/engine/model/network.js';
import { cachedParameters, clearParameterCache } from '../../src/engine/model/param-cache.js';

const net = (extra: Record<string, unknown> = {}, seed = 1) =>
  normalizeSpec({ seed, network: { depth: 4, width: 16, ...extra }, data: { source: 'moons', batchSize: 8 } }).spec.network;

describe('cachedParameters', () => {
  it('gives what initParameters gives, and the same arrays on a second call', () => {
    clearParameterCache();
    const n = net({ activation: 'tanh', init: { weights: 'he_normal' } });
    const first = cachedParameters(n, 7);
    expect(first).toEqual(initParameters(n, 7));
    expect(cachedParameters(n, 7).weights[2]).toBe(first.weights[2]);
  });

  it('shares weights across activations (sweep cells) but plans each network’s own layers', () => {
    clearParameterCache();
    const relu = cachedParameters(net({ activation: 'relu' }), 3);
    const tanh = cachedParameters(net({ activation: 'tanh' }), 3);
    expect(tanh.weights[0]).toBe(relu.weights[0]);
    expect(tanh.layers[0]!.activation.name).toBe('tanh');
    expect(relu.layers[0]!.activation.name).toBe('relu');
  });

  it('draws afresh for another seed, initialiser, width or residual variant', () => {
    clearParameterCache();
    const base = cachedParameters(net(), 3);
    for (const other of [cachedParameters(net(), 4), cachedParameters(net({ init: { weights: 'he_normal' } }), 3),
      cachedParameters(net({ width: 17 }), 3), cachedParameters(net({ residual: { every: 1, variant: 'fixup' } }), 3)]) {
      expect(other.weights[1]).not.toBe(base.weights[1]);
    }
    expect(cachedParameters(net({ residual: { every: 1, variant: 'fixup' } }), 3)).toEqual(initParameters(net({ residual: { every: 1, variant: 'fixup' } }), 3));
  });
});
