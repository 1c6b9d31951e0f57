// /v1/models over app.inject: an ONNX file exported by PyTorch uploads (201, Location, the state_dict names
// and the parameterised nodes), lists, reads and deletes; an unsupported operator is 422 naming operator and
// node, a truncated file 400, an oversize one 413 naming GRADLENS_MAX_MODEL_BYTES; none of them stores anything.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import type { FastifyInstance } from 'fastify';
import { testApp } from '../support/app.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx');
const file = (name: string): Buffer => readFileSync(join(FIXTURES, `${name}.onnx`));
const fixture = (name: string): { parameters: { name: string; shape: number[] }[] } => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
const upload = (app: FastifyInstance, body: Buffer | Uint8Array, contentType = 'application/octet-stream') =>
  app.inject({ method: 'POST', url: '/v1/models', headers: { 'content-type': contentType }, payload: Buffer.from(body) });

let app: FastifyInstance;
beforeAll(async () => {
  app = await testApp();
});
afterAll(async () => {
  await app.close();
});

const count = async (): Promise<number> => (await app.inject({ method: 'GET', url: '/v1/models?limit=100' })).json().models.length;

describe('POST /v1/models', () => {
  it('stores a PyTorch export: 201, Location, state_dict names, layers, nothing unsupported', async () => {
    const res = await upload(app, file('residual'));
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(res.headers.location).toBe(`/v1/models/${body.id}`);
    expect(body).toMatchObject({ format: 'onnx', opset: 15, outputKind: 'logits', batchNormFolded: false, unsupported: [] });
    expect(body.producer).toMatch(/^pytorch/);
    expect(body.inputs).toEqual([{ name: 'input', shape: [4, 2, 6, 6] }]);
    expect(body.parameters).toEqual(fixture('residual').parameters.map((p) => ({ name: p.name, shape: p.shape })));
    expect(body.layers.map((l: { name: string }) => l.name)).toEqual([
      '/stem/Conv', '/stem_bn/BatchNormalization', '/conv1/Conv', '/bn1/BatchNormalization', '/conv2/Conv', '/bn2/BatchNormalization', '/fc/Gemm',
    ]);
    expect(body.bytes).toBe(file('residual').length);

    const got = await app.inject({ method: 'GET', url: res.headers.location as string });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(body);
    const list = (await app.inject({ method: 'GET', url: '/v1/models' })).json();
    expect(list.models.map((m: { id: string }) => m.id)).toContain(body.id);

    expect((await app.inject({ method: 'DELETE', url: res.headers.location as string })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: res.headers.location as string })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: res.headers.location as string })).statusCode).toBe(404);
  });

  it('an unsupported operator: 422 naming operator and node, nothing stored', async () => {
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(file('mlp'));
    model.graph!.node!.find((n) => n.opType === 'Relu')!.opType = 'Hardmax';
    const before = await count();
    const res = await upload(app, onnx.ModelProto.encode(model).finish());
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'UNSUPPORTED_OPERATOR', operator: 'Hardmax', node: '/Relu' });
    expect(res.json().message).toContain('Hardmax');
    expect(await count()).toBe(before);
  });

  it('a model that fails in a tfjs kernel on its own input (fc2.weight reshaped to [16, 12]): 400 naming the node, not a 500', async () => {
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(file('mlp'));
    // The same 192 values, but Gemm's product of [6, 16] with the transposed [16, 12] has inner dimensions 16 and 12.
    model.graph!.initializer!.find((t) => t.name === 'fc2.weight')!.dims = [16, 12];
    const res = await upload(app, onnx.ModelProto.encode(model).finish());
    expect(res.statusCode, res.body).toBe(201);
    const { input } = JSON.parse(readFileSync(join(FIXTURES, 'mlp.json'), 'utf8')) as { input: { shape: number[]; data: number[] } };
    const x = Array.from({ length: input.shape[0]! }, (_, i) => input.data.slice(i * input.shape[1]!, (i + 1) * input.shape[1]!));
    const analysis = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { model: { id: res.json().id }, data: { source: 'inline', x, y: x.map(() => 0) } } });
    expect(analysis.statusCode, analysis.body).toBe(400);
    expect(analysis.json()).toMatchObject({ code: 'INVALID_SPEC' });
    expect(analysis.json().message).toMatch(/node "[^"]+" \(Gemm\) cannot run on this input/);
  });

  it('a truncated file, an empty body, JSON: 400, nothing stored', async () => {
    const before = await count();
    const bytes = file('cnn_bn');
    const truncated = await upload(app, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(truncated.statusCode).toBe(400);
    expect(truncated.json().code).toBe('INVALID_MODEL');
    expect(truncated.json().message).toMatch(/truncated or corrupt/);
    expect((await upload(app, Buffer.alloc(0))).statusCode).toBe(400);
    const json = await app.inject({ method: 'POST', url: '/v1/models', payload: { network: {} } });
    expect(json.statusCode).toBe(400);
    expect(await count()).toBe(before);
  });

  it('a file over GRADLENS_MAX_MODEL_BYTES: 413 naming the variable (its own limit, not GRADLENS_BODY_LIMIT)', async () => {
    const small = await testApp({ modelMaxBytes: 2048 });
    try {
      const res = await upload(small, file('cnn_bn'));
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'BODY_TOO_LARGE', variable: 'GRADLENS_MAX_MODEL_BYTES' });
      expect(res.json().message).toContain('GRADLENS_MAX_MODEL_BYTES');
      expect((await small.inject({ method: 'GET', url: '/v1/models' })).json().models).toEqual([]);
      // Under it, the same server takes a model larger than nothing but smaller than the limit.
      expect((await upload(small, file('regression'))).statusCode).toBe(201);
    } finally {
      await small.close();
    }
  });

  it('the default model limit is 64 MB, above GRADLENS_BODY_LIMIT (ResNet-18 exports to 45 MB)', () => {
    expect(app.config.modelMaxBytes).toBe(64 * 1024 * 1024);
    expect(app.config.modelMaxBytes).toBeGreaterThan(app.config.bodyLimitBytes);
  });
});
