// POST /v1/models with a tfjs LayersModel over real HTTP (app.listen + fetch with FormData): a functional model
// (Conv2D, BatchNormalization, Add, Dense) built and saved by tfjs-layers in the test — uploaded once by tfjs's
// own tf.io.http save handler (model.json + model.weights.bin) and once as tensorflowjs_converter lays it out
// (model.json + two weight shards) — is 201 with format tfjs-layers; POST /v1/analyses with model: {id} then
// gives the loss and per-parameter gradient norms that tf.variableGrads computes on the original model for the
// same batch (train: batch statistics; eval: moving ones) to 1e-4 relative. A missing model.json or weight
// file, a corrupt model.json, short weights, a plain field, too many files, an oversize upload (declared and
// chunked) and an unsupported layer are 4xx naming what is wrong, and none of them stores anything.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { testBackendName, useBackend } from '../backends.js';

const N = 4;
const CLASSES = 3;
const SHAPE = [5, 5, 2];

function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  const c1 = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false, name: 'conv_a', kernelInitializer: tf.initializers.glorotNormal({ seed: 11 }) }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn_a', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 12 }), betaInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 13 }), movingMeanInitializer: tf.initializers.randomNormal({ stddev: 0.2, seed: 14 }), movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 2, seed: 15 }) }).apply(c1) as tf.SymbolicTensor;
  const r = tf.layers.activation({ activation: 'relu' }).apply(bn) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'conv_b', kernelInitializer: tf.initializers.glorotNormal({ seed: 16 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 17 }) }).apply(r) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: 'skip' }).apply([r, c2]) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(sum) as tf.SymbolicTensor;
  const hidden = tf.layers.dense({ units: 6, activation: 'tanh', name: 'hidden', kernelInitializer: tf.initializers.glorotNormal({ seed: 18 }) }).apply(flat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: CLASSES, name: 'head', kernelInitializer: tf.initializers.glorotNormal({ seed: 19 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 20 }) }).apply(hidden) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const norm = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
const X = Array.from({ length: N * SHAPE.reduce((a, b) => a * b, 1) }, (_, i) => 1.3 * Math.sin(7.31 * (i + 1)));
const LABELS = [2, 0, 1, 2];
const nested = (flat: number[], shape: number[]): unknown => (shape.length === 1 ? flat : Array.from({ length: shape[0]! }, (_, i) => {
  const size = flat.length / shape[0]!;
  return nested(flat.slice(i * size, (i + 1) * size), shape.slice(1));
}));

interface Oracle { loss: number; gradNorms: Map<string, number> }
interface Saved { modelJson: Record<string, unknown>; weights: Uint8Array }

let app: FastifyInstance;
let base: string;
let saved: Saved;
const oracles = new Map<'train' | 'eval', Oracle>();
let httpUpload: { status: number; body: Record<string, unknown> };
/** tfjs's own SGD on a fresh copy of the model (train mode): each step's loss and gradient norms, steps 0…SGD.steps. */
let sgdOracle: Oracle[] = [];
const SGD = { learningRate: 0.1, steps: 3 };

/** tfjs's own tf.variableGrads on the original model: the softmax cross-entropy of its logits, a batch mean. */
async function variableGrads(model: tf.LayersModel, training: boolean): Promise<Oracle> {
  const x = tf.tensor(X, [N, ...SHAPE]);
  const y = tf.oneHot(tf.tensor1d(LABELS, 'int32'), CLASSES);
  const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training }) as tf.Tensor) as tf.Scalar,
    model.trainableWeights.map((w) => w.read() as tf.Variable));
  const gradNorms = new Map<string, number>();
  for (const w of model.trainableWeights) gradNorms.set(w.originalName, norm(await grads[(w.read() as tf.Variable).name]!.data()));
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads), x, y]);
  return { loss, gradNorms };
}

/** SGD by hand with tf.variableGrads on the model (w ← w − lr·g): the oracle of a training of the uploaded model. */
async function sgdSteps(model: tf.LayersModel): Promise<Oracle[]> {
  const out: Oracle[] = [];
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let step = 0; step <= SGD.steps; step++) {
    const x = tf.tensor(X, [N, ...SHAPE]);
    const y = tf.oneHot(tf.tensor1d(LABELS, 'int32'), CLASSES);
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
    const gradNorms = new Map<string, number>();
    for (const w of model.trainableWeights) gradNorms.set(w.originalName, norm(await grads[(w.read() as tf.Variable).name]!.data()));
    out.push({ loss: (await value.data())[0]!, gradNorms });
    if (step < SGD.steps) for (const v of vars) v.assign(tf.tidy(() => tf.sub(v, tf.mul(grads[v.name]!, SGD.learningRate))));
    tf.dispose([value, ...Object.values(grads), x, y]);
  }
  return out;
}

/**
 * On the cpu backend (the reference: wasm has no conv2d filter gradient for tfjs-layers itself): the oracle in
 * both modes, then the upload by tf.io.http and the artifacts for the other uploads, all saved after the oracle ran
 * (tfjs-layers' training pass moves the moving statistics: eval mode and the saved model see the same ones).
 */
async function onCpu(): Promise<void> {
  await useBackend('cpu');
  try {
    const model = buildModel();
    oracles.set('train', await variableGrads(model, true));
    oracles.set('eval', await variableGrads(model, false));
    const fresh = buildModel();
    sgdOracle = await sgdSteps(fresh);
    fresh.dispose();
    const response = await model.save(tf.io.http(`${base}/v1/models`, { fetchFunc: fetch }));
    const res = response.responses![0]!;
    httpUpload = { status: res.status, body: await res.json() as Record<string, unknown> };
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    saved = { modelJson: { format: 'layers-model', generatedBy: artifacts!.generatedBy, convertedBy: null, modelTopology: artifacts!.modelTopology, weightSpecs: artifacts!.weightSpecs }, weights: new Uint8Array((artifacts!.weightData as ArrayBuffer).slice(0)) };
    model.dispose();
  } finally {
    await useBackend(testBackendName());
  }
}

/** model.json and weight shards as tensorflowjs_converter writes them: the weights split into `shards` files. */
function converterForm(options: { shards?: number; drop?: string; json?: string | Uint8Array; extra?: [string, Blob | string][]; cut?: number } = {}): FormData {
  const shards = options.shards ?? 2;
  const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
  const { weightSpecs, ...rest } = saved.modelJson;
  const modelJson = { ...rest, weightsManifest: [{ paths, weights: weightSpecs }] };
  const form = new FormData();
  form.append('model.json', new Blob([(options.json ?? JSON.stringify(modelJson)) as BlobPart], { type: 'application/json' }), 'model.json');
  const weights = options.cut ? saved.weights.subarray(0, saved.weights.length - options.cut) : saved.weights;
  const size = Math.ceil(weights.length / shards);
  paths.forEach((p, i) => {
    if (p !== options.drop) form.append(p, new Blob([weights.slice(i * size, (i + 1) * size)]), p);
  });
  for (const [name, value] of options.extra ?? []) typeof value === 'string' ? form.append(name, value) : form.append(name, value, name);
  return form;
}

const post = (form: FormData, url = base) => fetch(`${url}/v1/models`, { method: 'POST', body: form });
const count = async (url = base): Promise<number> => ((await (await fetch(`${url}/v1/models?limit=100`)).json()) as { models: unknown[] }).models.length;

async function analyse(id: string, mode: 'train' | 'eval'): Promise<{ loss: number; parameters: { name: string; gradNorm: number }[]; layers: { name: string; op: string; parameters: { name: string }[] }[] }> {
  const res = await fetch(`${base}/v1/analyses`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: { id }, data: { source: 'inline', x: nested(X, [N, ...SHAPE]), y: LABELS }, loss: 'categorical_crossentropy', mode }),
  });
  const job = await res.json() as { status: string; result: never };
  expect(res.status, JSON.stringify(job).slice(0, 500)).toBe(200);
  expect(job.status).toBe('succeeded');
  return job.result;
}

beforeAll(async () => {
  app = await testApp();
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  await onCpu();
}, 60_000);
afterAll(async () => {
  await app.close();
});

describe('POST /v1/models, a tfjs LayersModel (multipart/form-data)', () => {
  it("uploaded by tfjs's own tf.io.http: 201, format tfjs-layers, the model's inputs, parameters and layers", async () => {
    expect(httpUpload.status, JSON.stringify(httpUpload.body)).toBe(201);
    const body = httpUpload.body;
    expect(body).toMatchObject({ format: 'tfjs-layers', outputKind: 'logits', unsupported: [], batchNormFolded: false });
    expect(body.inputs).toEqual([{ name: expect.any(String), shape: [null, ...SHAPE] }]);
    expect(body.outputs).toEqual([{ name: expect.any(String), shape: [null, CLASSES] }]);
    expect(body.parameters).toEqual([
      { name: 'conv_a/kernel', shape: [3, 3, 2, 3] }, { name: 'bn_a/gamma', shape: [3] }, { name: 'bn_a/beta', shape: [3] },
      { name: 'conv_b/kernel', shape: [3, 3, 3, 3] }, { name: 'conv_b/bias', shape: [3] },
      { name: 'hidden/kernel', shape: [75, 6] }, { name: 'hidden/bias', shape: [6] }, { name: 'head/kernel', shape: [6, 3] }, { name: 'head/bias', shape: [3] },
    ]);
    expect(body.parameterCount).toBe(54 + 6 + 81 + 3 + 450 + 6 + 18 + 3);
    expect((body.layers as { op: string; name: string }[]).map((l) => `${l.op}:${l.name}`)).toEqual(['Conv2D:conv_a', 'BatchNormalization:bn_a', 'Conv2D:conv_b', 'Dense:hidden', 'Dense:head']);
    expect(String(body.producer)).toMatch(/tfjs-layers/i);
    const got = await fetch(`${base}/v1/models/${body.id}`);
    expect(await got.json()).toEqual(body);
  });

  for (const mode of ['train', 'eval'] as const) {
    it(`analysis of the uploaded model (mode ${mode}): tf.variableGrads's loss and gradient norms to 1e-4`, async () => {
      const r = await analyse(String(httpUpload.body.id), mode);
      const oracle = oracles.get(mode)!;
      expect(rel(r.loss, oracle.loss)).toBeLessThan(1e-4);
      expect(r.parameters.map((p) => p.name)).toEqual([...oracle.gradNorms.keys()]);
      for (const p of r.parameters) {
        const e = oracle.gradNorms.get(p.name)!;
        expect(e).toBeGreaterThan(0);
        expect(rel(p.gradNorm, e), `${p.name}: ${p.gradNorm} vs tf.variableGrads ${e}`).toBeLessThan(1e-4);
      }
    });
  }

  it(`trained by POST /v1/trainings (sgd, ${SGD.steps} steps): every step's loss and gradient norms are tfjs's own SGD's to 1e-4`, async () => {
    const res = await fetch(`${base}/v1/trainings`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: { id: httpUpload.body.id }, data: { source: 'inline', x: nested(X, [N, ...SHAPE]), y: LABELS }, loss: 'categorical_crossentropy',
        optimizer: { name: 'sgd', learningRate: SGD.learningRate }, steps: SGD.steps, recordEvery: 1,
      }),
    });
    expect(res.status).toBe(202);
    const location = res.headers.get('location')!;
    let job: { status: string; result?: { records: { step: number; loss: number; parameters: { name: string; gradNorm: number }[] }[] }; error?: unknown };
    for (;;) {
      job = await (await fetch(`${base}${location}`)).json() as typeof job;
      if (job.status !== 'queued' && job.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const records = job.result!.records;
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: SGD.steps + 1 }, (_, i) => i));
    records.forEach((r, i) => {
      const o = sgdOracle[i]!;
      expect(rel(r.loss, o.loss), `step ${i}: loss ${r.loss} vs ${o.loss}`).toBeLessThan(1e-4);
      for (const p of r.parameters) expect(rel(p.gradNorm, o.gradNorms.get(p.name)!), `step ${i} ${p.name}`).toBeLessThan(1e-4);
    });
    // The loss moved: the steps were applied.
    expect(Math.abs(records[SGD.steps]!.loss - records[0]!.loss)).toBeGreaterThan(1e-3);
  });

  it('laid out as tensorflowjs_converter writes it (two shards): the same model, the same gradients; tensors do not pile up', async () => {
    const res = await post(converterForm());
    const body = await res.json() as { id: string; format: string; parameters: unknown; bytes: number };
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/models/${body.id}`);
    expect(body.format).toBe('tfjs-layers');
    expect(body.parameters).toEqual(httpUpload.body.parameters);
    expect(body.bytes).toBeGreaterThan(saved.weights.length);
    const r = await analyse(body.id, 'train');
    for (const p of r.parameters) expect(rel(p.gradNorm, oracles.get('train')!.gradNorms.get(p.name)!)).toBeLessThan(1e-4);
    const tensors = tf.memory().numTensors;
    const again = await post(converterForm());
    expect(again.status).toBe(201);
    await analyse(((await again.json()) as { id: string }).id, 'train');
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('a missing model.json, a weight file the manifest names but the upload lacks, a file it does not name: 400 naming it, nothing stored', async () => {
    const before = await count();
    const noJson = new FormData();
    noJson.append('group1-shard1of1.bin', new Blob([saved.weights.slice()]), 'group1-shard1of1.bin');
    const a = await post(noJson);
    expect(a.status).toBe(400);
    expect(await a.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'model.json' });
    const b = await post(converterForm({ drop: 'group1-shard2of2.bin' }));
    expect(b.status).toBe(400);
    const bb = await b.json() as { field: string; message: string };
    expect(bb.field).toBe('weights group1-shard2of2.bin');
    expect(bb.message).toContain('group1-shard2of2.bin');
    const c = await post(converterForm({ extra: [['stray.bin', new Blob([new Uint8Array(8)])]] }));
    expect(c.status).toBe(400);
    expect(await c.json()).toMatchObject({ field: 'stray.bin' });
    const d = await post(converterForm({ extra: [['note', 'hello']] }));
    expect(d.status).toBe(400);
    expect(await d.json()).toMatchObject({ field: 'fields' });
    expect(await count()).toBe(before);
  });

  it('a corrupt model.json, a topology tfjs cannot read, a weight for no variable, weights cut short: 400, nothing stored, no tensors left', async () => {
    const before = await count();
    const tensors = tf.memory().numTensors;
    const bad = await post(converterForm({ json: '{"modelTopology": {"class_name": "Model", "config": ' }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'model.json' });
    const noTopology = await post(converterForm({ json: '{"weightsManifest": []}' }));
    expect(noTopology.status).toBe(400);
    expect((await noTopology.json() as { message: string }).message).toMatch(/modelTopology/);
    const garbled = await post(converterForm({ json: JSON.stringify({ modelTopology: { class_name: 'Model', config: { layers: 'x' } }, weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: saved.modelJson.weightSpecs }] }) }));
    expect(garbled.status).toBe(400);
    expect(await garbled.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'model.json' });
    // tfjs builds the model's variables, then finds a weight named for no variable: the load fails, nothing kept.
    const misnamed = JSON.parse(JSON.stringify(saved.modelJson)) as { weightSpecs: { name: string }[] };
    misnamed.weightSpecs[0]!.name = 'nowhere/kernel';
    const wrong = await post(converterForm({ json: JSON.stringify({ ...misnamed, weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: misnamed.weightSpecs }] }) }));
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'model.json' });
    const short = await post(converterForm({ cut: 4 }));
    expect(short.status).toBe(400);
    const s = await short.json() as { field: string; message: string };
    expect(s.field).toMatch(/^weights group1-shard1of2\.bin/);
    expect(s.message).toMatch(/bytes/);
    expect(await count()).toBe(before);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('a layer class gradlens does not measure: 422 naming the class and the layer, nothing stored', async () => {
    const before = await count();
    const input = tf.input({ shape: [4, 3] });
    const out = tf.layers.simpleRNN({ units: 2, name: 'rnn' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const response = await model.save(tf.io.http(`${base}/v1/models`, { fetchFunc: fetch })).catch((err: Error) => err);
    model.dispose();
    // tf.io.http throws on a response that is not ok; the request reached the server and was refused.
    expect(response).toBeInstanceOf(Error);
    expect(String(response)).toMatch(/422/);
    const custom = JSON.parse(JSON.stringify(saved.modelJson)) as { modelTopology: { config: { layers: { class_name: string }[] } }; weightSpecs: unknown };
    custom.modelTopology.config.layers[2]!.class_name = 'MyOwnLayer';
    const res = await post(converterForm({ json: JSON.stringify({ ...custom, weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: custom.weightSpecs }] }) }));
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ code: 'UNSUPPORTED_OPERATOR', operator: 'MyOwnLayer', node: 'bn_a' });
    expect(await count()).toBe(before);
  });

  it('more files than an upload holds: 413 naming the limit, nothing stored', async () => {
    const before = await count();
    const form = converterForm();
    for (let i = 0; i < 70; i++) form.append(`f${i}.bin`, new Blob([new Uint8Array(1)]), `f${i}.bin`);
    const res = await post(form);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'TOO_MANY_FILES', field: 'files', limit: '64 files' });
    expect(await count()).toBe(before);
  });

  it('over GRADLENS_MAX_MODEL_BYTES, declared or sent chunked: 413 naming the variable, nothing stored', async () => {
    const small = await testApp({ modelMaxBytes: 4096 });
    const url = await small.listen({ port: 0, host: '127.0.0.1' });
    try {
      const declared = await post(converterForm(), url);
      expect(declared.status).toBe(413);
      expect(await declared.json()).toMatchObject({ code: 'BODY_TOO_LARGE', variable: 'GRADLENS_MAX_MODEL_BYTES' });
      // No Content-Length: the parts are counted as they arrive.
      const request = new Request(`${url}/v1/models`, { method: 'POST', body: converterForm() });
      const bytes = new Uint8Array(await request.arrayBuffer());
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 1024) controller.enqueue(bytes.subarray(at, at + 1024));
          controller.close();
        },
      });
      const chunked = await fetch(`${url}/v1/models`, { method: 'POST', headers: { 'content-type': request.headers.get('content-type')! }, body: stream, duplex: 'half' } as RequestInit);
      expect(chunked.status).toBe(413);
      const body = await chunked.json() as { code: string; variable: string; message: string };
      expect(body).toMatchObject({ code: 'BODY_TOO_LARGE', variable: 'GRADLENS_MAX_MODEL_BYTES' });
      expect(body.message).toContain('4096');
      expect(await count(url)).toBe(0);
    } finally {
      await small.close();
    }
  });
});
