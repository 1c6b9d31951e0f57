// A tfjs LayersModel kept as one blob (what the model store holds and a model-analysis task carries), so that
// model.json and its weight files are stored, read and deleted together, by one INSERT and one DELETE:
//
//   bytes 0..7    the magic "GLTFJSL1" (never the start of an ONNX file: 'G' is protobuf field 8 with wire
//                 type 7, which does not exist, so a ModelProto cannot begin with it)
//   bytes 8..11   n, the header's length in bytes, uint32 little-endian
//   n bytes       the header, UTF-8 JSON: { "modelJson": <bytes of model.json>, "weights": [{ "path", "bytes" }] }
//   then          model.json as uploaded, then each weight file in the header's order, back to back.
//
// Decoding checks every length against the blob (truncated or corrupt: ModelFormatError naming 'file').
// describeLayersModel loads the model with tfjs-layers (the importer), describes it as describeOnnx does an
// ONNX file, and frees it: a model that does not load, or uses a layer class the importer does not measure,
// throws here, before anything is stored.
import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from './errors.js';
import { importLayersModel, type LayersModelFiles, type LayersModelJson, type LayersModelImport } from './layers-model.js';
import { describeOnnx, importOnnx, type ModelDescription, type OnnxModel } from './onnx-model.js';

const MAGIC = new TextEncoder().encode('GLTFJSL1');
const HEADER_AT = MAGIC.length + 4;

interface BundleHeader { modelJson: number; weights: { path: string; bytes: number }[] }

/** Whether the bytes are a bundled LayersModel (else an ONNX file). */
export function isLayersBundle(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** model.json (as uploaded) and its weight files, in one blob. */
export function encodeLayersBundle(modelJson: Uint8Array, weights: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const header: BundleHeader = { modelJson: modelJson.length, weights: [...weights].map(([path, b]) => ({ path, bytes: b.length })) };
  const head = new TextEncoder().encode(JSON.stringify(header));
  const total = HEADER_AT + head.length + modelJson.length + header.weights.reduce((s, w) => s + w.bytes, 0);
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, head.length, true);
  let at = HEADER_AT;
  for (const part of [head, modelJson, ...weights.values()]) { out.set(part, at); at += part.length; }
  return out;
}

function headerOf(bytes: Uint8Array): BundleHeader {
  const corrupt = (why: string) => new ModelFormatError('file', `the stored tfjs model is truncated or corrupt: ${why}`);
  if (!isLayersBundle(bytes) || bytes.length < HEADER_AT) throw corrupt('no bundle header');
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  if (HEADER_AT + n > bytes.length) throw corrupt(`the header runs past the end (${n} bytes)`);
  let header: BundleHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(HEADER_AT, HEADER_AT + n))) as BundleHeader;
  } catch {
    throw corrupt('the header is not JSON');
  }
  const sizes = [header?.modelJson, ...(Array.isArray(header?.weights) ? header.weights.map((w) => w.bytes) : [NaN])];
  if (!sizes.every((s) => Number.isInteger(s) && s >= 0)) throw corrupt('the header\'s lengths are not sizes');
  if (HEADER_AT + n + sizes.reduce((a, b) => a + b, 0) !== bytes.length) throw corrupt('the lengths do not add up to the blob');
  return header;
}

/** The raw model.json and the weight files back from a bundle. */
export function decodeLayersBundleRaw(bytes: Uint8Array): { modelJson: Uint8Array; weights: Map<string, Uint8Array> } {
  const header = headerOf(bytes);
  let at = HEADER_AT + new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  const modelJson = bytes.subarray(at, at + header.modelJson);
  at += header.modelJson;
  const weights = new Map<string, Uint8Array>();
  for (const w of header.weights) { weights.set(w.path, bytes.subarray(at, at + w.bytes)); at += w.bytes; }
  return { modelJson, weights };
}

/** model.json's bytes parsed: a file that is not JSON, or not an object with a modelTopology, is ModelFormatError('model.json'). */
export function parseModelJson(bytes: Uint8Array): LayersModelJson {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ModelFormatError('model.json', `model.json is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('modelTopology' in value) || !value.modelTopology) {
    throw new ModelFormatError('model.json', 'model.json has no modelTopology (not a tfjs LayersModel, as model.save() or tensorflowjs_converter write it)');
  }
  const manifest = (value as { weightsManifest?: unknown }).weightsManifest;
  const groups = manifest === undefined ? [] : manifest;
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'object' && g !== null && Array.isArray(g.paths) && g.paths.every((p: unknown) => typeof p === 'string') && Array.isArray(g.weights))) {
    throw new ModelFormatError('model.json', 'model.json\'s weightsManifest must be a list of { paths: [file names], weights: [specs] }');
  }
  return { ...(value as object), weightsManifest: groups } as unknown as LayersModelJson;
}

/** The weight file names model.json's manifest lists, in order. */
export const manifestPaths = (json: LayersModelJson): string[] => json.weightsManifest.flatMap((g) => [...g.paths]);

/** A bundle as the importer takes it. */
export function decodeLayersBundle(bytes: Uint8Array): LayersModelFiles {
  const raw = decodeLayersBundleRaw(bytes);
  return { modelJson: parseModelJson(raw.modelJson), weights: raw.weights };
}

function producerOf(json: LayersModelJson): string {
  const { generatedBy, convertedBy } = json as { generatedBy?: unknown; convertedBy?: unknown };
  const parts = [generatedBy, convertedBy].filter((s): s is string => typeof s === 'string' && s.length > 0);
  return parts.length > 0 ? parts.join(', converted by ').slice(0, 200) : 'tfjs-layers';
}

/** Loads (tfjs-layers), checks and describes a LayersModel, then frees it; throws as importLayersModel does. */
export async function describeLayersModel(files: LayersModelFiles): Promise<ModelDescription> {
  // A thread that never chose a backend (the HTTP thread beside a worker pool) loads it on the pure-JS cpu one.
  if (!tf.engine().backendName) await tf.setBackend('cpu');
  const model = await importLayersModel(files);
  try {
    const shapeOf = (s: readonly (number | null)[]) => [...s];
    const inputs = model.model.inputs.map((t, i) => ({ name: model.model.inputNames[i] ?? t.name, shape: shapeOf(t.shape) }));
    const outputs = model.model.outputs.map((t, i) => ({ name: model.model.outputNames[i] ?? t.name, shape: shapeOf(t.shape) }));
    return {
      format: 'tfjs-layers', opset: 0, producer: producerOf(files.modelJson), inputs, outputs,
      outputKind: model.outputKind, parameters: model.parameters,
      parameterCount: model.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
      layers: model.layers.map((l) => ({ name: l.name, op: l.op, parameters: l.parameters })),
      batchNormFolded: false, unsupported: [],
    };
  } finally {
    model.dispose();
  }
}

/** A stored model file (an ONNX file or a bundled LayersModel, told apart by the bundle's magic) imported. */
export async function importStoredModel(bytes: Uint8Array): Promise<OnnxModel | LayersModelImport> {
  return isLayersBundle(bytes) ? importLayersModel(decodeLayersBundle(bytes)) : importOnnx(bytes);
}

/** A stored model file described as at upload (a bundle is loaded and freed; an ONNX file is only parsed). */
export async function describeStoredModel(bytes: Uint8Array): Promise<ModelDescription> {
  return isLayersBundle(bytes) ? describeLayersModel(decodeLayersBundle(bytes)) : describeOnnx(bytes);
}
