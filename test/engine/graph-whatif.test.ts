// What-if for layer graphs: a Glorot-initialised ReLU CNN whose signal shrinks by ½ of ‖δ‖² per layer is
// cured best by He initialisation with the conv fans; shortcuts are added to (or removed from) the graph,
// batch normalisation inserted, each run as its own graph analysis and ranked with the original.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useTestBackend } from '../backends.js';
import { analyze } from '../../src/engine/runs/analysis-run.js';
import type { PlainLayerInput } from '../../src/schemas/layers.js';

beforeAll(async () => {
  await useTestBackend();
});

const conv = (): PlainLayerInput => ({ kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu', useBias: false });
const DATA = { source: 'blobs' as const, features: 144, classes: 3, batchSize: 8 };

describe('what-if on layer graphs', () => {
  it('ranks He initialisation above leaving a Glorot ReLU CNN alone, with shortcuts and batch norm as the other cures', async () => {
    const before = tf.memory().numTensors;
    const out = await analyze({
      network: { input: [6, 6, 4], layers: [...Array.from({ length: 10 }, conv), { kind: 'flatten' }, { kind: 'dense' }], init: { weights: 'glorot_uniform' } },
      data: DATA, whatIf: true,
    });
    expect(tf.memory().numTensors).toBe(before);
    const w = out.result.whatIf!;
    expect(w.ranking.map((r) => r.id).sort()).toEqual(['init:variance_preserving', 'none', 'normalization:batch', 'residual'].sort());
    const byId = new Map(w.ranking.map((r) => [r.id, r]));
    const none = byId.get('none')!, he = byId.get('init:variance_preserving')!;
    expect(he.change['network.init.weights']).toBe('he_normal');
    // Glorot on a ReLU chain: ‖δ‖ × √½ per layer toward the input (slope ½·ln ½ = −0.35); He: about flat.
    expect(Number(none.backpropLogSlope)).toBeLessThan(-0.25);
    // (The fit spans the head too, and zero padding's border costs He a little on 6×6 images: not exactly ½·ln 2 apart.)
    expect(Number(he.backpropLogSlope)).toBeGreaterThan(Number(none.backpropLogSlope) + 0.1);
    expect(Number(he.distance)).toBeLessThan(Number(none.distance));
    expect(he.rank).toBeLessThan(none.rank);
    const residual = byId.get('residual')!.change['network.layers'] as { kind: string }[];
    expect(residual.filter((l) => l.kind === 'residual')).toHaveLength(5);
    const bn = byId.get('normalization:batch')!.change['network.layers'] as { kind: string }[];
    expect(bn.filter((l) => l.kind === 'batch_norm')).toHaveLength(10);
    expect(out.cost.whatIfRuns).toBe(3);
  });

  it('proposes removing the shortcuts of a residual graph', async () => {
    const out = await analyze({
      network: { input: [6, 6, 4], layers: [
        { kind: 'residual', name: 'b1', layers: [conv(), { kind: 'conv2d', filters: 4, kernel: 3 }], activation: 'relu' },
        { kind: 'global_avg_pool' }, { kind: 'dense' },
      ] },
      data: DATA, whatIf: true,
    });
    const remove = out.result.whatIf!.ranking.find((r) => r.id === 'residual:remove')!;
    expect(remove.change['network.layers']).toEqual([
      { kind: 'conv2d', filters: 4, kernel: 3, activation: 'relu', useBias: false, name: 'b1.conv1' },
      { kind: 'conv2d', filters: 4, kernel: 3, name: 'b1.conv2' },
      { kind: 'activation', name: 'b1.act', activation: 'relu' },
      { kind: 'global_avg_pool' }, { kind: 'dense', activation: { name: 'softmax' } },
    ]);
  });
});
