// /v1/models: upload a model — an ONNX file (the raw file as the body, application/octet-stream) or a tfjs
// LayersModel (multipart/form-data: model.json and its weight files, read by src/plugins/model-upload.ts) —
// list, read and delete the stored ones. The model is parsed (a LayersModel loaded by tfjs-layers) and checked
// before anything is stored (an unsupported operator or layer class is 422 naming it and the node or layer; a
// file that does not read as a model is 400), under its own size limit, GRADLENS_MAX_MODEL_BYTES. A LayersModel
// is stored as one blob, model.json and its weights bundled (engine/import/layers-bundle.ts), by one INSERT.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import multipart from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  describeOnnx, describeLayersModel, encodeLayersBundle, ModelFormatError, UnsupportedOperatorError, capEcho, type ModelDescription,
} from '../src/engine/index.js';
import { MAX_MODEL_FILES, readLayersUpload, UploadError } from '../src/plugins/model-upload.js';
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

/** The raw body as an ONNX file, parsed and described; undefined when there is no file. */
function onnxModel(body: unknown): { file: Uint8Array; description: ModelDescription } | undefined {
  if (!Buffer.isBuffer(body) || body.length === 0) return undefined;
  const file = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  return { file, description: describeOnnx(file) };
}

/** model.json and its weights from the multipart body, loaded and described by tfjs-layers, bundled into one blob. */
async function layersModel(request: FastifyRequest, maxBytes: number): Promise<{ file: Uint8Array; description: ModelDescription }> {
  const upload = await readLayersUpload(request, { maxBytes, variable: 'GRADLENS_MAX_MODEL_BYTES' });
  const description = await describeLayersModel({ modelJson: upload.modelJson, weights: upload.weights });
  const file = encodeLayersBundle(upload.modelJsonBytes, upload.weights);
  return { file, description };
}

/** What a client got wrong, answered 4xx; anything else is the server's fault and rethrown. */
function refuse(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof UploadError) return reply.code(err.statusCode).header('connection', 'close').send(err.body);
  if (err instanceof UnsupportedOperatorError) {
    return reply.code(422).send({ statusCode: 422, code: err.code, error: 'Unprocessable Entity', message: err.message, operator: capEcho(err.operator, 200), node: capEcho(err.node, 200) });
  }
  if (err instanceof ModelFormatError) {
    return reply.code(400).send({ statusCode: 400, code: err.code, error: 'Bad Request', message: err.message, field: capEcho(err.field, 200) });
  }
  throw err;
}

const BINARY = { type: 'string', contentMediaType: 'application/octet-stream' } as const;

/** The body as the document shows it (no JSON schema validates a file; config.requestBody, plugins/openapi.ts). */
const REQUEST_BODY = {
  required: true,
  description: `An ONNX file, or a tfjs LayersModel as model.save() or tensorflowjs_converter write it (model.json and its weight files, at most ${MAX_MODEL_FILES} files). Either is limited to GRADLENS_MAX_MODEL_BYTES in all.`,
  content: {
    'application/octet-stream': { schema: { ...BINARY, description: 'The ONNX file, e.g. from torch.onnx.export.' } },
    'multipart/form-data': {
      schema: {
        type: 'object', required: ['model.json'],
        properties: { 'model.json': { type: 'string', contentMediaType: 'application/json', description: 'model.json: modelTopology and the weightsManifest that names the weight files.' } },
        additionalProperties: { ...BINARY, description: 'A weight file, its part named (file name, else field name) as the weightsManifest names it (group1-shard1of1.bin; tf.io.http sends model.weights.bin).' },
      },
    },
  },
};

const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const limit = app.config.modelMaxBytes;
  // Multipart for this plugin only; its parts are read under GRADLENS_MAX_MODEL_BYTES in all (plugins/model-upload.ts).
  await app.register(multipart, { limits: { fileSize: limit + 1, files: MAX_MODEL_FILES, parts: MAX_MODEL_FILES, fields: 0 } });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: limit }, (_request, body, done) => done(null, body));

  app.post('/models', {
    bodyLimit: limit,
    config: { bodyLimitVariable: 'GRADLENS_MAX_MODEL_BYTES', requestBody: REQUEST_BODY },
    schema: {
      summary: 'Upload a model',
      operationId: 'createModel',
      description: `The body is an ONNX file (Content-Type: application/octet-stream), e.g. from PyTorch's torch.onnx.export (training mode keeps BatchNormalization nodes and the state_dict names), or a tfjs LayersModel (Content-Type: multipart/form-data) with a file part model.json and one per weight file its weightsManifest names (format tfjs-layers; a Keras model converted by tensorflowjs_converter is one). It is parsed and checked (a LayersModel loaded by tfjs-layers) before it is stored: an operator or layer class gradlens does not execute is 422 naming it and the node or layer; a file that does not read as a model (truncated, corrupt, a missing model.json or weight file) is 400 naming it. The size limit is GRADLENS_MAX_MODEL_BYTES in all (413 names it); an upload holds at most ${MAX_MODEL_FILES} files (413 TOO_MANY_FILES).`,
      tags: ['models'],
      response: {
        201: withHeaders({ ...ModelSchema, description: 'The model was stored (Location: its URL).' }, HEADERS.location),
        400: { ...ModelErrorSchema, description: 'INVALID_MODEL: the body is not a readable ONNX model or tfjs LayersModel (field says where: model.json, weights <file>), or empty.' },
        413: { ...ModelErrorSchema, description: 'BODY_TOO_LARGE: the file (a LayersModel\'s files together) is larger than GRADLENS_MAX_MODEL_BYTES (named in variable); TOO_MANY_FILES: more file parts than an upload holds (limit).' },
        422: { ...ModelErrorSchema, description: 'UNSUPPORTED_OPERATOR: the model uses an operator (ONNX) or layer class (tfjs) gradlens does not execute (operator, node: the layer).' },
      },
    },
  }, async (request, reply) => {
    let model: { file: Uint8Array; description: ModelDescription } | undefined;
    try {
      model = request.isMultipart() ? await layersModel(request, limit) : onnxModel(request.body);
    } catch (err) {
      return refuse(reply, err);
    }
    if (!model) {
      return reply.code(400).send({ statusCode: 400, code: 'INVALID_MODEL', error: 'Bad Request', message: 'the body must be an ONNX file (application/octet-stream) or a tfjs LayersModel (multipart/form-data: model.json and its weight files)', field: 'body' });
    }
    const stored = await app.models.put(randomUUID(), model.file, model.description);
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
