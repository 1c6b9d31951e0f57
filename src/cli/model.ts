// The CLI's model flow (`gradlens check model.onnx --data mnist`, `gradlens analyze model.onnx`, and the same
// with a tfjs LayersModel's model.json): the options that build an analysis of an uploaded model, the analysis
// request (after the upload, POST /v1/models), and the table of its result; with --steps a training of the model
// instead (POST /v1/trainings). An HTTP client only: what the model is and whether the data fits, the server says;
// for a model.json it reads the weightsManifest only to find the weight files to send beside it (in model.json's
// folder, as model.save() and tensorflowjs_converter put them).
import { dirname, join } from 'node:path';
import { isOneOf, MODEL_DATA_SOURCES, MODEL_LOSSES, MODEL_MODES, OPTIMIZER_NAMES } from '../schemas/vocabulary.js';

/** A tfjs LayersModel is named by its model.json (any folder). */
export const isLayersModelFile = (file: string): boolean => /(^|[\\/])model\.json$/i.test(file);

/** The file is a model (uploaded), not a spec: an .onnx file or a tfjs model.json. */
export const isModelFile = (file: string): boolean => /\.onnx$/i.test(file) || isLayersModelFile(file);

/** What POST /v1/models is sent: an ONNX file as the body, or model.json and its weight files as multipart parts. */
export type ModelUpload =
  | { kind: 'onnx'; bytes: Uint8Array }
  | { kind: 'tfjs-layers'; files: { name: string; bytes: Uint8Array }[] };

export const MODEL_OPTIONS = {
  data: { type: 'string' },
  'batch-size': { type: 'string' },
  seed: { type: 'string' },
  mode: { type: 'string' },
  loss: { type: 'string' },
  steps: { type: 'string' },
  optimizer: { type: 'string' },
  'learning-rate': { type: 'string' },
  'record-every': { type: 'string' },
} as const;

export const MODEL_USAGE = `
Model files (.onnx, e.g. from torch.onnx.export, or a tfjs LayersModel's model.json, sent with the weight
files its weightsManifest names from the same folder): uploaded with POST /v1/models, then analysed by id.
  --data <source>    mnist | gaussian_images | a JSON file with inline "x" (the model's own input layout,
                     NCHW for a PyTorch export) and "y" (class indices or targets). Required.
  --batch-size <n>   mnist, gaussian_images: examples in the batch (default 64).
  --seed <n>         Seeds the batch drawn (default 42).
  --mode <mode>      train (BatchNorm on batch statistics, default) | eval (running statistics).
  --loss <loss>      categorical_crossentropy (on logits: F.cross_entropy, default) | mse.
  --steps <n>        Train the model's own parameters for n steps on the batch instead (POST /v1/trainings);
                     --expect then takes training checks (learns, status, maxFinalLoss, minLossReduction).
  --optimizer <name> With --steps: ${OPTIMIZER_NAMES.join(' | ')} (default sgd).
  --learning-rate <x>  With --steps: the step size (default: the optimizer's).
  --record-every <n> With --steps: record every n steps (default about 50 records).
  check gates on --expect (exit 1 when a check fails); analyze prints every parameter and only reports.
`;

export interface ModelOptions {
  data: string;
  batchSize?: number;
  seed?: number;
  mode?: string;
  loss?: string;
  /** Given: a training of the model (POST /v1/trainings), with these fields. */
  training?: { steps: number; optimizer?: { name: string; learningRate?: number }; recordEvery?: number };
}

const integer = (value: string | undefined, name: string, fail: (m: string) => Error): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw fail(`--${name} must be a non-negative integer`);
  return n;
};

export function parseModelOptions(values: Record<string, unknown>, fail: (m: string) => Error): ModelOptions {
  const data = values.data as string | undefined;
  if (!data) throw fail(`a model needs --data (${MODEL_DATA_SOURCES.filter((s) => s !== 'inline').join(', ')} or a JSON file with inline x and y)`);
  const mode = values.mode as string | undefined;
  if (mode !== undefined && !isOneOf(MODEL_MODES, mode)) throw fail(`--mode must be one of ${MODEL_MODES.join(', ')}`);
  const loss = values.loss as string | undefined;
  if (loss !== undefined && !isOneOf(MODEL_LOSSES, loss)) throw fail(`--loss must be one of ${MODEL_LOSSES.join(', ')}`);
  const batchSize = integer(values['batch-size'] as string | undefined, 'batch-size', fail);
  const seed = integer(values.seed as string | undefined, 'seed', fail);
  const training = parseTraining(values, fail);
  return {
    data, ...(batchSize !== undefined ? { batchSize } : {}), ...(seed !== undefined ? { seed } : {}),
    ...(mode !== undefined ? { mode } : {}), ...(loss !== undefined ? { loss } : {}), ...(training ? { training } : {}),
  };
}

/** --steps and the options that go with it; the server checks the ranges and says which field is wrong. */
function parseTraining(values: Record<string, unknown>, fail: (m: string) => Error): ModelOptions['training'] {
  const steps = integer(values.steps as string | undefined, 'steps', fail);
  const name = values.optimizer as string | undefined;
  const rate = values['learning-rate'] as string | undefined;
  const recordEvery = integer(values['record-every'] as string | undefined, 'record-every', fail);
  if (steps === undefined) {
    if (name !== undefined || rate !== undefined || recordEvery !== undefined) throw fail('--optimizer, --learning-rate and --record-every go with --steps (a training)');
    return undefined;
  }
  if (name !== undefined && !isOneOf(OPTIMIZER_NAMES, name)) throw fail(`--optimizer must be one of ${OPTIMIZER_NAMES.join(', ')}`);
  const learningRate = rate === undefined ? undefined : Number(rate);
  if (learningRate !== undefined && !(learningRate > 0)) throw fail('--learning-rate must be a number > 0');
  const optimizer = name !== undefined || learningRate !== undefined ? { name: name ?? 'sgd', ...(learningRate !== undefined ? { learningRate } : {}) } : undefined;
  return { steps, ...(optimizer ? { optimizer } : {}), ...(recordEvery !== undefined ? { recordEvery } : {}) };
}

export interface ModelSpecIo {
  readBytes(path: string): Promise<Uint8Array>;
  readData(path: string): Promise<Record<string, unknown>>;
  /** POST /v1/models; the stored model's id. */
  upload(model: ModelUpload): Promise<string>;
  fail(message: string): Error;
}

async function readOrFail(path: string, io: ModelSpecIo, why = ''): Promise<Uint8Array> {
  try {
    return await io.readBytes(path);
  } catch (err) {
    throw io.fail(`cannot read ${path}${why}: ${(err as Error).message}`);
  }
}

/** The weight files model.json's weightsManifest names (empty when it names none or does not parse: the server says what is wrong). */
function manifestPaths(json: Uint8Array): string[] {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return [];
  }
  const groups = (value as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(groups)) return [];
  return groups.flatMap((g: { paths?: unknown }) => (Array.isArray(g?.paths) ? g.paths.filter((p): p is string => typeof p === 'string') : []));
}

/** The model file as it is uploaded; a model.json with the weight files it names, read from its folder. */
export async function readModel(file: string, io: ModelSpecIo): Promise<ModelUpload> {
  if (!isLayersModelFile(file)) return { kind: 'onnx', bytes: await readOrFail(file, io) };
  const json = await readOrFail(file, io);
  const files = [{ name: 'model.json', bytes: json }];
  for (const path of manifestPaths(json)) {
    const name = path.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.').pop() ?? path;
    if (files.some((f) => f.name === name)) continue;
    files.push({ name, bytes: await readOrFail(join(dirname(file), path), io, ` (named in ${file}'s weightsManifest)`) });
  }
  return { kind: 'tfjs-layers', files };
}

/** The analysis request of a model file: uploaded, then named by id, with the data the options describe. */
export async function modelSpec(file: string, o: ModelOptions, io: ModelSpecIo): Promise<Record<string, unknown>> {
  let data: Record<string, unknown>;
  if (isOneOf(MODEL_DATA_SOURCES, o.data) && o.data !== 'inline') {
    data = { source: o.data, ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}) };
  } else {
    if (o.batchSize !== undefined) throw io.fail('--batch-size applies to mnist and gaussian_images; inline data is all of x');
    const inline = await io.readData(o.data);
    data = { source: 'inline', x: inline.x, y: inline.y };
  }
  const id = await io.upload(await readModel(file, io));
  return {
    ...(o.seed !== undefined ? { seed: o.seed } : {}), model: { id }, data,
    ...(o.mode !== undefined ? { mode: o.mode } : {}), ...(o.loss !== undefined ? { loss: o.loss } : {}),
    ...(o.training ?? {}),
  };
}

interface ModelLayer {
  name: string;
  op: string;
  outputShape?: number[];
  backpropNorm?: unknown;
  parameters?: { name: string; shape?: number[]; gradNorm?: unknown; gradRms?: unknown }[];
}

/**
 * An uploaded model's rows (they carry op): one per layer with its parameters' gradient norms, or with
 * everyParameter one per parameter. null for a network's result.
 */
export function modelRows(
  result: Record<string, unknown>, table: (rows: string[][]) => string, fmt: (v: unknown) => string, everyParameter: boolean,
): string | null {
  const layers = result.layers as ModelLayer[] | undefined;
  if (!Array.isArray(layers) || layers.length === 0 || layers[0]!.op === undefined) return null;
  if (everyParameter) {
    return table([
      ['LAYER', 'OP', 'BACKPROP', 'PARAMETER', 'SHAPE', 'GRAD NORM', 'GRAD RMS'],
      ...layers.flatMap((l) => (l.parameters ?? []).map((p) => [l.name, l.op, fmt(l.backpropNorm), p.name, `[${(p.shape ?? []).join(', ')}]`, fmt(p.gradNorm), fmt(p.gradRms)])),
    ]);
  }
  return table([
    ['LAYER', 'OP', 'SHAPE', 'BACKPROP', 'PARAMETER GRAD NORMS'],
    ...layers.map((l) => [l.name, l.op, `[${(l.outputShape ?? []).join(', ')}]`, fmt(l.backpropNorm), (l.parameters ?? []).map((p) => `${p.name} ${fmt(p.gradNorm)}`).join(', ')]),
  ]);
}
