// tfjs LayersModels: a functional model with Dense, Conv2D, BatchNormalization and Add, saved by tfjs-layers
// (model.json + weights), loads through the importer (tf.loadLayersModel over an in-memory handler) with its
// weights intact, and measureImported's loss and per-parameter gradients equal tfjs's own tf.variableGrads on
// the original model; the last layer's backward signal equals the closed form (softmax − onehot)/N.
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useBackend, useTestBackend, type InProcessBackend } from '../backends.js';
import { importLayersModel, measureImported, UnsupportedOperatorError, type LayersModelFiles } from '../../src/engine/import/index.js';

const N = 5;
const CLASSES = 3;

function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 2] });
  const c1 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv_a', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn_a', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 2 }), betaInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 3 }) }).apply(c1) as tf.SymbolicTensor;
  const r = tf.layers.activation({ activation: 'relu' }).apply(bn) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv_b', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 5 }) }).apply(r) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([r, c2]) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(sum) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: CLASSES, name: 'head', kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 7 }) }).apply(flat) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** What model.save writes: model.json (topology + manifest) and one weight file. */
async function saved(model: tf.LayersModel): Promise<LayersModelFiles> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const data = artifacts!.weightData as ArrayBuffer;
  const modelJson = JSON.parse(JSON.stringify({
    modelTopology: artifacts!.modelTopology, format: 'layers-model',
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts!.weightSpecs }],
  }));
  return { modelJson, weights: new Map([['group1-shard1of1.bin', new Uint8Array(data.slice(0))]]) };
}

const norm = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

let backend: InProcessBackend;
beforeAll(async () => {
  backend = await useTestBackend();
});

interface Oracle { files: LayersModelFiles; loss: number; gradNorms: Map<string, number>; logits: number[][] }

/**
 * tfjs's own tf.variableGrads on the original model, on the cpu backend (the reference: wasm has no conv2d
 * filter gradient, so tfjs-layers itself cannot differentiate the model there), then back to the backend under test.
 */
async function oracleOnCpu(xData: number[], labels: number[]): Promise<Oracle> {
  await useBackend('cpu');
  try {
    const model = buildModel();
    const files = await saved(model);
    const x = tf.tensor(xData, [N, 6, 6, 2]);
    const y = tf.tensor1d(labels, 'int32');
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(y, CLASSES), logits) as tf.Scalar;
    }), model.trainableWeights.map((w) => w.read() as tf.Variable));
    const gradNorms = new Map<string, number>();
    for (const w of model.trainableWeights) gradNorms.set(w.originalName, norm(await grads[(w.read() as tf.Variable).name]!.data()));
    const logits = await tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor).array() as number[][];
    const loss = (await value.data())[0]!;
    tf.dispose([value, ...Object.values(grads), x, y]);
    model.dispose();
    return { files, loss, gradNorms, logits };
  } finally {
    await useBackend(backend);
  }
}

describe('tfjs LayersModel import', () => {
  it('round-trips a saved model, and its gradients equal tf.variableGrads on the model', async () => {
    const xData = Array.from({ length: N * 6 * 6 * 2 }, (_, i) => 1.5 * Math.sin(12.9898 * (i + 1))); // fixed, spread like N(0, 1)
    const labelList = [0, 2, 1, 1, 0];
    const oracle = await oracleOnCpu(xData, labelList);
    const x = tf.tensor(xData, [N, 6, 6, 2]);
    const labels = tf.tensor1d(labelList, 'int32');
    const imported = await importLayersModel(oracle.files);
    expect(imported.parameters.map((p) => p.name)).toEqual([...oracle.gradNorms.keys()]);
    expect(imported.layers.map((l) => `${l.op}:${l.name}`)).toEqual(['Conv2D:conv_a', 'BatchNormalization:bn_a', 'Conv2D:conv_b', 'Dense:head']);
    const m = await measureImported(imported, { input: x, target: labels, loss: 'categorical_crossentropy' });
    expect(Math.abs(m.loss - oracle.loss) / oracle.loss).toBeLessThan(1e-5);
    expect(m.parameters.length).toBe(7);
    for (const p of m.parameters) {
      const e = oracle.gradNorms.get(p.name)!;
      expect(e).toBeGreaterThan(0);
      expect(Math.abs(p.gradNorm - e) / e, `${p.name}: ${p.gradNorm} vs tf.variableGrads ${e}`).toBeLessThan(1e-4);
    }
    // The head's output gradient in closed form.
    let sumSq = 0;
    oracle.logits.forEach((row, i) => {
      const top = Math.max(...row);
      const e = row.map((v) => Math.exp(v - top));
      const total = e.reduce((a, b) => a + b, 0);
      e.forEach((v, c) => { sumSq += ((v / total - (c === labelList[i] ? 1 : 0)) / N) ** 2; });
    });
    const head = m.layers.find((l) => l.name === 'head')!;
    expect(Math.abs(head.backpropNorm - Math.sqrt(sumSq)) / Math.sqrt(sumSq)).toBeLessThan(1e-4);
    imported.dispose();
    x.dispose();
    labels.dispose();
  });

  it('leaves no tensors behind and keeps the moving statistics a training-mode pass would update', async () => {
    const model = buildModel();
    const imported = await importLayersModel(await saved(model));
    model.dispose();
    const x = tf.randomNormal([N, 6, 6, 2], 1, 2, 'float32', 12);
    const labels = tf.tensor1d([0, 2, 1, 1, 0], 'int32');
    const moving = async (): Promise<number[]> => (await Promise.all(imported.model.nonTrainableWeights.map((w) => w.read().data()))).flatMap((d) => Array.from(d));
    const before = await moving();
    await measureImported(imported, { input: x, target: labels, loss: 'categorical_crossentropy' });
    const count = tf.memory().numTensors;
    await measureImported(imported, { input: x, target: labels, loss: 'categorical_crossentropy' });
    expect(tf.memory().numTensors).toBe(count);
    expect(await moving()).toEqual(before);
    imported.dispose();
    x.dispose();
    labels.dispose();
  });

  it('a layer class it does not measure: UnsupportedOperatorError naming class and layer', async () => {
    const input = tf.input({ shape: [4, 3] });
    const out = tf.layers.simpleRNN({ units: 2, name: 'rnn' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    await expect(importLayersModel(await saved(model))).rejects.toThrow(UnsupportedOperatorError);
    await expect(importLayersModel(await saved(model))).rejects.toMatchObject({ operator: 'SimpleRNN', node: 'rnn' });
    model.dispose();
  });
});
