// A tfjs LayersModel upload (POST /v1/models as multipart/form-data): model.json and the weight files its
// weightsManifest names, each a file part named as model.save() writes them (tf.io.http sends model.json and
// model.weights.bin; tensorflowjs_converter writes group1-shard1ofN.bin). Parts are matched to the manifest by
// file name (the part's filename, else its field name; a leading ./ and folders dropped). Everything is read
// into memory under one total, GRADLENS_MAX_MODEL_BYTES (413 naming it), in at most MAX_MODEL_FILES file
// parts and no plain fields; a missing model.json, a weight file the manifest names but the upload lacks, a
// file the manifest does not name, or a duplicate is 400 naming it. Nothing here stores anything.
import type { FastifyRequest } from 'fastify';
import type {} from '@fastify/multipart';
import { manifestPaths, parseModelJson, type LayersModelJson } from '../engine/index.js';

/** Most file parts in one upload: model.json and its weight shards (the converter writes 4 MB shards: 64 MB is 16). */
export const MAX_MODEL_FILES = 64;
export const MODEL_JSON = 'model.json';

/** A refused upload, answered as it is (a 4xx in the ModelError shape). */
export class UploadError extends Error {
  constructor(readonly statusCode: 400 | 413, readonly body: Record<string, string | number>) {
    super(String(body.message));
  }
}

const badRequest = (field: string, message: string) =>
  new UploadError(400, { statusCode: 400, code: 'INVALID_MODEL', error: 'Bad Request', message, field });

export interface LayersUpload {
  /** model.json's bytes as sent (stored as they are). */
  modelJsonBytes: Uint8Array;
  modelJson: LayersModelJson;
  /** Weight files by the path the manifest names them with, in manifest order. */
  weights: Map<string, Uint8Array>;
}

export interface UploadLimits {
  maxBytes: number;
  /** The variable that sets maxBytes, named in the 413. */
  variable: string;
}

/** './model.weights.bin' and 'weights/group1-shard1of1.bin' are matched by their file name alone. */
export const fileNameOf = (path: string): string => path.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.').pop() ?? '';

/** @fastify/multipart's own refusals (limits, malformed bodies) as 4xx naming the limit; anything else rethrown. */
function mapMultipartError(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') {
    return new UploadError(413, { statusCode: 413, code: 'TOO_MANY_FILES', error: 'Payload Too Large', message: `an upload holds at most ${MAX_MODEL_FILES} files (model.json and its weight files)`, field: 'files', limit: `${MAX_MODEL_FILES} files` });
  }
  if (code === 'FST_FIELDS_LIMIT') return badRequest('fields', 'the upload takes files only (model.json and its weight files), no plain form fields');
  if (code === 'FST_PROTO_VIOLATION') return badRequest('files', 'a part is named __proto__ or constructor');
  if (err instanceof UploadError) return err;
  // busboy's own errors: a body that does not parse as multipart (no boundary, cut short).
  if (err instanceof Error && !(err as { statusCode?: number }).statusCode) return badRequest('body', `the multipart body does not parse: ${err.message}`);
  return err;
}

/** Reads one file part under the running total; over it, 413 naming the variable. */
async function readPart(file: AsyncIterable<Buffer>, used: number, limits: UploadLimits): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = used;
  for await (const chunk of file) {
    total += chunk.length;
    if (total > limits.maxBytes) {
      throw new UploadError(413, { statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large', message: `the model's files add up to more than the limit (${limits.variable}) of ${limits.maxBytes} bytes`, variable: limits.variable });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readFiles(request: FastifyRequest, limits: UploadLimits): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  let used = 0;
  const parts = request.parts({ limits: { files: MAX_MODEL_FILES, parts: MAX_MODEL_FILES, fields: 0, fileSize: limits.maxBytes + 1 } });
  for await (const part of parts) {
    if (part.type !== 'file') throw badRequest(part.fieldname, `the upload takes files only; ${JSON.stringify(part.fieldname).slice(0, 100)} is a plain field`);
    const name = fileNameOf(part.filename || part.fieldname);
    const bytes = await readPart(part.file, used, limits);
    used += bytes.length;
    if (name === '') throw badRequest('files', 'a file part has neither a file name nor a field name');
    if (files.has(name)) throw badRequest(name, `the file ${JSON.stringify(name)} is sent twice`);
    files.set(name, bytes);
  }
  return files;
}

const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** model.json and the weight files it names, checked against each other; UploadError for what a client got wrong. */
export async function readLayersUpload(request: FastifyRequest, limits: UploadLimits): Promise<LayersUpload> {
  let files: Map<string, Buffer>;
  try {
    files = await readFiles(request, limits);
  } catch (err) {
    throw mapMultipartError(err);
  }
  const json = files.get(MODEL_JSON);
  if (!json) throw badRequest(MODEL_JSON, `a tfjs model upload needs a file part named ${MODEL_JSON} (it has ${[...files.keys()].map((k) => JSON.stringify(k)).join(', ').slice(0, 300) || 'none'})`);
  const modelJson = parseModelJson(view(json));
  const weights = new Map<string, Uint8Array>();
  for (const path of manifestPaths(modelJson)) {
    const bytes = files.get(fileNameOf(path));
    if (!bytes) throw badRequest(`weights ${path}`.slice(0, 200), `model.json's weightsManifest names the weight file ${JSON.stringify(path).slice(0, 200)}, which the upload does not hold`);
    if (weights.has(path)) throw badRequest(`weights ${path}`.slice(0, 200), `model.json's weightsManifest names ${JSON.stringify(path).slice(0, 200)} twice`);
    weights.set(path, view(bytes));
  }
  const named = new Set(manifestPaths(modelJson).map(fileNameOf));
  const extra = [...files.keys()].find((k) => k !== MODEL_JSON && !named.has(k));
  if (extra) throw badRequest(extra.slice(0, 200), `the file ${JSON.stringify(extra).slice(0, 200)} is not named in model.json's weightsManifest`);
  return { modelJsonBytes: view(json), modelJson, weights };
}
