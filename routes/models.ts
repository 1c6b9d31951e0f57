// /v1/models: upload a model (ONNX, the raw file as the body), list, read and delete the stored ones. The
// file is parsed and checked before anything is stored (an unsupported operator is 422 naming operator and
// node; a file that does not read as a model is 400), under its own size limit, GRADLENS_MAX_MODEL_BYTES.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { describeOnnx, ModelFormatError, UnsupportedOperatorError, capEcho } from '../src/engine/index.js';
import { ErrorSchema } from '../src/schemas/result.js';
import { ModelListQuerySchema, ModelListSchema, ModelParamsSchema, ModelSchema, type Model } from '../src/schemas/models.js';
import { HEADERS, withHeaders } from '../src/plugins/openapi.js';
import type { StoredModelSummary } from '../src/jobs/model-store.js';

const ModelErrorSchema = Type.Object({
  ...ErrorSchema.properties,
  operator: Type.Optional(Type.String({ description: 'UNSUPPORTED_OPERATOR: the operator (with its domain when not the default one).' })),
  node: Type.Optional(Type.String({ description: 'UNSUPPORTED_OPERATOR: the node that uses it.' })),
}, { title: 'ModelError' });

const modelPath = (id: string): string => `/v1/models/${id}`;
const notFound = (id: string) => ({ statusCode: 404, code: 'MODEL_NOT_FOUND', error: 'Not Found', message: capEcho(`no model ${id}`) });

function view(m: StoredModelSummary): Model {
  const { inputs, outputs, ...rest } = m.description;
  return {
    id: m.id, bytes: m.bytes, createdAt: m.createdAt, ...rest,
    inputs: inputs.map((i) => ({ name: i.name, shape: i.shape ? [...i.shape] : null })),
    outputs: outputs.map((o) => ({ name: o.name, shape: o.shape ? [...o.shape] : null })),
    parameters: rest.parameters.map((p) => ({ name: p.name, shape: [...p.shape] })),
    layers: rest.layers.map((l) => ({ ...l, parameters: [...l.parameters] })),
    unsupported: [...rest.unsupported],
  };
}

const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const limit = app.config.modelMaxBytes;
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) => done(null, body));

  app.post('/models', {
    bodyLimit: limit,
    config: { bodyLimitVariable: 'GRADLENS_MAX_MODEL_BYTES' },
    schema: {
      summary: 'Upload a model',
      operationId: 'createModel',
      description: 'The body is an ONNX file (Content-Type: application/octet-stream), e.g. from PyTorch\'s torch.onnx.export (training mode keeps BatchNormalization nodes and the state_dict names). It is parsed and checked before it is stored: an operator gradlens does not execute is 422 naming the operator and the node; a file that does not read as a model (truncated, corrupt) is 400. The size limit is GRADLENS_MAX_MODEL_BYTES (413 names it).',
      tags: ['models'],
      response: {
        201: withHeaders({ ...ModelSchema, description: 'The model was stored (Location: its URL).' }, HEADERS.location),
        400: { ...ModelErrorSchema, description: 'INVALID_MODEL: the body is not a readable ONNX model (field says where), or empty.' },
        413: { ...ModelErrorSchema, description: 'BODY_TOO_LARGE: the file is larger than GRADLENS_MAX_MODEL_BYTES (named in variable).' },
        422: { ...ModelErrorSchema, description: 'UNSUPPORTED_OPERATOR: the model uses an operator gradlens does not execute (operator, node).' },
      },
    },
  }, async (request, reply) => {
    const body = request.body as unknown;
    if (!Buffer.isBuffer(body) || body.length === 0) {
      return reply.code(400).send({ statusCode: 400, code: 'INVALID_MODEL', error: 'Bad Request', message: 'the body must be the model file, sent as application/octet-stream', field: 'body' });
    }
    const bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    let description;
    try {
      description = describeOnnx(bytes);
    } catch (err) {
      if (err instanceof UnsupportedOperatorError) {
        return reply.code(422).send({ statusCode: 422, code: err.code, error: 'Unprocessable Entity', message: err.message, operator: capEcho(err.operator, 200), node: capEcho(err.node, 200) });
      }
      if (err instanceof ModelFormatError) {
        return reply.code(400).send({ statusCode: 400, code: err.code, error: 'Bad Request', message: err.message, field: capEcho(err.field, 200) });
      }
      throw err;
    }
    const stored = await app.models.put(randomUUID(), bytes, description);
    return reply.code(201).header('location', modelPath(stored.id)).send(view(stored));
  });

  app.get('/models', {
    schema: {
      summary: 'List uploaded models', operationId: 'listModels', tags: ['models'], querystring: ModelListQuerySchema,
      response: { 200: { ...ModelListSchema, description: 'The stored models, newest first.' } },
    },
  }, async (request) => ({ models: (await app.models.list(request.query.limit ?? 20)).map(view) }));

  app.get('/models/:id', {
    schema: {
      summary: 'Read an uploaded model', operationId: 'getModel', tags: ['models'], params: ModelParamsSchema,
      response: { 200: { ...ModelSchema, description: 'The model.' }, 404: { ...ErrorSchema, description: 'MODEL_NOT_FOUND.' } },
    },
  }, async (request, reply) => {
    const m = await app.models.get(request.params.id);
    return m ? view(m) : reply.code(404).send(notFound(request.params.id));
  });

  app.delete('/models/:id', {
    schema: {
      summary: 'Delete an uploaded model', operationId: 'deleteModel', tags: ['models'], params: ModelParamsSchema,
      response: { 204: { type: 'null', description: 'Deleted.' }, 404: { ...ErrorSchema, description: 'MODEL_NOT_FOUND.' } },
    },
  }, async (request, reply) => ((await app.models.delete(request.params.id)) ? reply.code(204).send(null) : reply.code(404).send(notFound(request.params.id))));
};

export default modelRoutes;
