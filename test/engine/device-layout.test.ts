// The device path's read-back by name: each field of a layer's row lands where the reader looks, and the device path's readings equal the host path's field by field.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestBackend } from '../backends.js';
import { LAYER_FIELDS, LAYER_ROW, layerRow, readingFromRow, readLayerRow, type LayerField } from '../../src/engine/measure/device-layout.js';
import { measureBatch, targetsFor, DEFAULT_SATURATION_THRESHOLD, type Reading } from '../../src/engine/measure/measure.js';
import { normalizeSpec } from '../../src/engine/spec/normalize.js';
import { initParameters } from '../../src/engine/model/network.js';
import { disposeParameters, parameterTensors } from '../../src/engine/model/parameter-pack.js';

/** Field i holds 2^(i+1): every field distinct, and a swap of any two shows. */
const planted = (): Record<LayerField, number> =>
  Object.fromEntries(LAYER_FIELDS.map((f, i) => [f, 2 ** (i + 1)])) as Record<LayerField, number>;

beforeAll(async () => {
  await useTestBackend();
});

describe('the layer row layout', () => {
  it('keeps the 14-entry binary layout, each field named once', () => {
    expect(LAYER_ROW).toBe(14);
    expect(new Set(LAYER_FIELDS).size).toBe(LAYER_ROW);
  });

  it('reads back every field the writer wrote, from a read-back of several layers as float32', () => {
    const rows = [planted(), Object.fromEntries(LAYER_FIELDS.map((f, i) => [f, -(i + 0.5)])) as Record<LayerField, number>];
    const all = Float32Array.from(rows.flatMap((r) => layerRow(r)));
    rows.forEach((r, l) => expect(readLayerRow(all.subarray(l * LAYER_ROW, (l + 1) * LAYER_ROW))).toEqual(r));
  });

  it('a row written in any other order is read wrong (what the one list prevents)', () => {
    const fields = planted();
    const swapped = layerRow(fields);
    [swapped[8], swapped[9]] = [swapped[9]!, swapped[8]!];
    expect(readLayerRow(swapped)).not.toEqual(fields);
  });

  it('turns the named fields into a reading: norms from [max, scaled Σ²] pairs, the rest as they are', () => {
    const r = planted();
    const norm = (max: LayerField, sq: LayerField): number => r[max] * Math.sqrt(r[sq]);
    expect(readingFromRow(r)).toEqual({
      weightNorm: norm('weightMax', 'weightScaledSumSq'),
      gradNorm: norm('gradMax', 'gradScaledSumSq'),
      gradMaxAbs: r.gradMax,
      biasGradNorm: norm('biasGradMax', 'biasGradScaledSumSq'),
      deltaNorm: norm('deltaMax', 'deltaScaledSumSq'),
      preMeanSq: r.preMeanSq,
      actMean: r.actMean,
      actVar: r.actVar,
      outMeanSq: r.outMeanSq,
      dead: r.dead,
      saturated: r.saturated,
    } satisfies Reading);
    expect(readingFromRow({ ...r, gradMax: Infinity }).gradNorm).toBe(Infinity);
    expect(readingFromRow({ ...r, deltaMax: NaN }).deltaNorm).toBeNaN();
  });
});

describe('device readings equal host readings field by field', () => {
  it('on a saturating sigmoid network with biases, every field of every layer', async () => {
    const { spec, dataset } = normalizeSpec({
      seed: 12, network: { depth: 5, width: 12, activation: 'sigmoid', init: { weights: { name: 'random_normal', stddev: 2 }, bias: { name: 'constant', value: 0.3 } } },
      data: { source: 'blobs', batchSize: 24 },
    });
    const init = initParameters(spec.network, spec.seed);
    const p = parameterTensors(init);
    const B = 24;
    const batch = { x: dataset.x.subarray(0, B * dataset.inputSize), y: dataset.y.subarray(0, B * dataset.outputSize), labels: dataset.labels!.subarray(0, B), size: B };
    const targets = targetsFor(dataset, spec.loss, batch);
    const x = tf.tensor2d(batch.x, [B, dataset.inputSize]);
    const y = tf.tensor2d(targets.values, [B, targets.width]);
    const measure = (statistics: 'host' | 'device') => measureBatch({
      layers: init.layers, weights: p.weights, biases: p.biases, aux: p.aux, residualScale: 1, loss: spec.loss,
      x, y, saturationThreshold: DEFAULT_SATURATION_THRESHOLD, statistics, perExampleLayers: [0, 4],
    });
    const host = await measure('host');
    const device = await measure('device');
    tf.dispose([x, y]);
    disposeParameters(p);
    expect(device.loss).toBeCloseTo(host.loss, 5);
    const problems: string[] = [];
    host.readings.forEach((h, l) => {
      for (const key of Object.keys(h) as (keyof Reading)[]) {
        const a = device.readings[l]![key], b = h[key];
        if (!(Math.abs(a - b) <= 1e-4 * Math.abs(b) + 1e-6)) problems.push(`layer ${l} ${key}: device ${a}, host ${b}`);
      }
    });
    expect(problems).toEqual([]);
    // The fields differ from each other, so a swap between any two would show above.
    const first = host.readings[1]!;
    expect(new Set(Object.values(first).map((v) => v.toPrecision(3))).size).toBeGreaterThan(8);
    device.perExample.forEach((e, i) => e.norms.forEach((v, k) => expect(v).toBeCloseTo(host.perExample[i]!.norms[k]!, 6)));
  });
});
