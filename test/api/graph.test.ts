// Layer graphs through POST /v1/analyses: presets (ResNet-20 against its plain counterpart, He et al. 2016),
// rows with paths, kinds and shapes, include layouts, the async job path, and every shape or budget refusal.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';
import { getJob } from '../support/jobs.js';
import { until } from '../support/until.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: body as object, headers });
  return { status: res.statusCode, body: res.json() };
}

const SMALL = {
  network: { input: [6, 6, 2], layers: [
    { kind: 'conv2d', filters: 3, kernel: 3, activation: 'relu' },
    { kind: 'residual', layers: [{ kind: 'conv2d', filters: 3, kernel: 3, activation: 'relu' }, { kind: 'conv2d', filters: 3, kernel: 3 }], activation: 'relu' },
    { kind: 'global_avg_pool' },
    { kind: 'dense' },
  ] },
  data: { source: 'blobs', features: 72, classes: 3, batchSize: 4 },
};

describe('layer graphs through the API', () => {
  it('ResNet-20 keeps the backprop signal much closer to the output\'s than the plain 20-layer CNN (He et al. 2016)', async () => {
    // The paper's depth on MNIST's 28×28 images; half its channels and a small batch keep the cpu backend's
    // stock (JavaScript) convolutions to seconds.
    const data = { source: 'mnist', batchSize: 4 };
    const resnet = await post({ network: { preset: 'resnet', stages: [8, 16, 32], blocksPerStage: 3 }, data });
    const plain = await post({ network: { preset: 'plain_cnn', stages: [8, 16, 32], blocksPerStage: 3 }, data });
    expect(resnet.status).toBe(200);
    expect(plain.status).toBe(200);
    const r = resnet.body.result, p = plain.body.result;
    // 6n + 2 = 20 weight layers, plus the two projection shortcuts of stages 2 and 3.
    expect(p.layers).toHaveLength(20);
    expect(r.layers).toHaveLength(22);
    expect(r.layers.filter((l: { shortcut: boolean }) => l.shortcut).map((l: { path: string }) => l.path)).toEqual(['stage2.block1.shortcut', 'stage3.block1.shortcut']);
    expect(r.layers[0]).toMatchObject({ path: 'stem.conv', kind: 'conv2d', outputShape: [28, 28, 8], spatial: [28, 28], block: null, inputUnits: 9, units: 8, activation: 'relu' });
    expect(r.layers[8]).toMatchObject({ path: 'stage2.block1.conv2', outputShape: [14, 14, 16], block: 'stage2.block1', inputUnits: 144, activation: 'linear' });
    expect(r.layers[21]).toMatchObject({ path: 'head.dense', kind: 'dense', outputShape: [10], activation: 'softmax' });
    expect(r.layers[0].auxParameters.map((a: { layer: string; name: string }) => `${a.layer}:${a.name}`)).toEqual(['stem.bn:gamma', 'stem.bn:beta']);
    // The normalised spec writes the preset out as layers.
    expect(resnet.body.spec.network.preset).toBeUndefined();
    expect(resnet.body.spec.network.layers[2]).toMatchObject({ kind: 'residual', name: 'stage1.block1', shortcut: 'identity' });
    // The fits run over the main path: the projection shortcuts (rows 9 and 16) are left out.
    expect(r.summary.backpropLogSlope.layers).toEqual(Array.from({ length: 22 }, (_, i) => i).filter((i) => i !== 9 && i !== 16));
    expect(resnet.body.result.theory.applicable).toBe(false);
    expect(resnet.body.result.theory.reason).toMatch(/^no prediction, because batch normalisation/);
    const distance = (ratio: number): number => Math.abs(Math.log10(ratio));
    const dr = distance(r.summary.backpropFirstToLastRatio), dp = distance(p.summary.backpropFirstToLastRatio);
    // Measured here (cpu, seed 42): ResNet 1.61, plain 2.36 — the plain network's BN chain grows the signal toward the input.
    expect(dr, `ResNet first/last ${r.summary.backpropFirstToLastRatio} vs plain ${p.summary.backpropFirstToLastRatio}`).toBeLessThan(dp);
    expect(p.summary.backpropFirstToLastRatio).toBeGreaterThan(1);
    // The reasons say why: batch norm without shortcuts (Yang et al. 2019) for the plain net only, and which
    // projection rows the ResNet's fits left out.
    const yang = /Batch normalisation in a plain \(shortcut-free\) network .*Yang et al\. 2019/;
    expect(p.summary.reasons.some((x: string) => yang.test(x))).toBe(true);
    expect(r.summary.reasons.some((x: string) => yang.test(x))).toBe(false);
    expect(r.summary.reasons).toContainEqual(expect.stringMatching(/^Projection shortcut rows \(stage2\.block1\.shortcut, stage3\.block1\.shortcut\) are reported but left out/));
    expect(p.summary.reasons.some((x: string) => /^Projection shortcut rows/.test(x))).toBe(false);
  }, 300_000);

  it('returns conv kernels as [kh][kw][c_in][c_out] and image batches as NHWC, and takes its own normalised spec back', async () => {
    const { status, body } = await post({ ...SMALL, include: ['parameters', 'batch'] });
    expect(status).toBe(200);
    const w = body.result.parameters[0].weights;
    expect([w.length, w[0].length, w[0][0].length, w[0][0][0].length]).toEqual([3, 3, 2, 3]);
    expect(body.result.parameters.map((p: { path: string }) => p.path)).toEqual(['conv1', 'block1.conv1', 'block1.conv2', 'dense1']);
    const x = body.result.batch[0].x;
    expect([x.length, x[0].length, x[0][0].length, x[0][0][0].length]).toEqual([4, 6, 6, 2]);
    const again = await post(body.spec);
    expect(again.status).toBe(200);
    expect(again.body.result.layers).toEqual(body.result.layers);
  });

  it('runs as a job with Prefer: respond-async', async () => {
    const res = await post(SMALL, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    const done = await until(() => getJob(app, res.body.id), (j) => ['succeeded', 'failed', 'canceled'].includes(j.status));
    expect(done.status).toBe('succeeded');
    expect(done.result.layers.map((l: { path: string }) => l.path)).toEqual(['conv1', 'block1.conv1', 'block1.conv2', 'dense1']);
  });

  it.each([
    ['dense after a convolution without flatten', [{ kind: 'conv2d', filters: 2, kernel: 3 }, { kind: 'dense' }], [6, 6, 2], 'network.layers[1]', /dense1\): dense needs a flat \[features\] input \(or a \[time, features\] sequence\) but gets \[6, 6, 2\]/],
    ['conv2d on a flat input', [{ kind: 'conv2d', filters: 2, kernel: 3 }, { kind: 'dense' }], [72], 'network.layers[0]', /conv1\): conv2d needs an image input \[height, width, channels\] but gets \[72\]/],
    ['an identity shortcut around a branch that changes the shape',
      [{ kind: 'residual', layers: [{ kind: 'conv2d', filters: 4, kernel: 3, stride: 2 }] }, { kind: 'flatten' }, { kind: 'dense' }], [6, 6, 2],
      'network.layers[0].shortcut', /block1\): an identity shortcut needs the branch to keep its input's shape, but the branch maps \[6, 6, 2\] to \[3, 3, 4\]/],
    ['a kernel over the limit', [{ kind: 'conv2d', filters: 2, kernel: 17 }, { kind: 'flatten' }, { kind: 'dense' }], [6, 6, 2], 'network.layers[0].kernel', /kernel is 17 but the limit is 15/],
    ['a window larger than its input', [{ kind: 'max_pool', size: 8 }, { kind: 'flatten' }, { kind: 'dense' }], [6, 6, 2], 'network.layers[0]', /max_pool maps \[6, 6, 2\] to \[0, 0, 2\]: the input is too small for its window/],
    ['an input shape that does not match the data', [{ kind: 'flatten' }, { kind: 'dense' }], [5, 5, 2], 'network.input', /has 50 entries but the data's examples have 72 features/],
  ])('answers 400 naming the layer and both shapes: %s', async (_what, layers, input, field, message) => {
    const { status, body } = await post({ network: { input, layers }, data: SMALL.data });
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: 'INVALID_SPEC', field });
    expect(body.message).toMatch(message);
  });

  it('answers 400 when neither depth nor a layer graph is given, and when shorthand and graph are mixed', async () => {
    const none = await post({ network: { width: 8 }, data: { source: 'moons' } });
    expect(none.status).toBe(400);
    expect(none.body).toMatchObject({ field: 'network.depth' });
    const mixed = await post({ network: { depth: 3, layers: [{ kind: 'dense' }] }, data: { source: 'moons' } });
    expect(mixed.status).toBe(400);
    expect(mixed.body).toMatchObject({ field: 'network.depth' });
  });

  it('refuses a graph over the FLOP budget with 422 naming the variable, before anything runs', async () => {
    const t0 = performance.now();
    const { status, body } = await post({ network: { preset: 'resnet', blocksPerStage: 9 }, data: { source: 'mnist', batchSize: 64 } });
    expect(status).toBe(422);
    expect(body).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxAnalysisFlops', variable: 'GRADLENS_MAX_ANALYSIS_FLOPS' });
    // Refused at admission: the estimate (ResNet-56, 28×28, batch 64) is ~4e10, and nothing was computed.
    expect(body.value).toBeGreaterThan(2e10);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('refuses a graph over the parameter limit with 422 naming GRADLENS_MAX_PARAMETERS', async () => {
    // 15·15·2·4096 + 4096 … ≈ 1.9e6 conv weights, then a dense layer from 6·6·4096 entries to 3000 units: 4.4e8.
    const { status, body } = await post({
      network: { input: [6, 6, 2], layers: [{ kind: 'conv2d', filters: 4096, kernel: 15 }, { kind: 'flatten' }, { kind: 'dense', units: 3000 }, { kind: 'dense' }] },
      data: SMALL.data,
    });
    expect(status).toBe(422);
    expect(body).toMatchObject({ code: 'LIMIT_EXCEEDED', limit: 'maxParameters', variable: 'GRADLENS_MAX_PARAMETERS' });
  });
});
