// `gradlens analyze path/to/model.json` as a CI pipeline runs it: the bin as a child process against the real
// server (worker pool, from the sources through tsx). A tfjs LayersModel saved in the test (model.json and two
// weight shards in one folder, as tensorflowjs_converter lays them out) is uploaded with its weight files and
// analysed by id; the gradient norms it prints are tfjs's own tf.variableGrads on the model for that batch.
// A weight file missing from the folder is exit 2 naming it, before anything is sent.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TEST_BACKEND } from '../support/app.js';
import { CLI_ARGS, startServer, stop, type Server } from '../support/server.js';
import { testBackendName, useBackend } from '../backends.js';

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[]): Promise<Run> {
  const { GRADLENS_URL: _url, GRADLENS_API_KEY: _key, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: inherited, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const N = 4;
const X = Array.from({ length: N * 4 * 4 * 1 }, (_, i) => 1.1 * Math.cos(3.7 * (i + 1)));
const LABELS = [1, 0, 1, 0];
const nested = (flat: number[], shape: number[]): unknown => (shape.length === 1 ? flat : Array.from({ length: shape[0]! }, (_, i) => {
  const size = flat.length / shape[0]!;
  return nested(flat.slice(i * size, (i + 1) * size), shape.slice(1));
}));
const norm = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [4, 4, 1] });
  const c = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv', kernelInitializer: tf.initializers.glorotNormal({ seed: 31 }) }).apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: 'bn', gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 32 }) }).apply(c) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([bn, c]) as tf.SymbolicTensor;
  const flat = tf.layers.flatten().apply(sum) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, name: 'head', kernelInitializer: tf.initializers.glorotNormal({ seed: 33 }) }).apply(flat) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** The model's files in `folder` (model.json + two shards) and tf.variableGrads's norms, on the cpu backend. */
async function saveWithOracle(folder: string): Promise<Map<string, number>> {
  await useBackend('cpu');
  try {
    const model = buildModel();
    const x = tf.tensor(X, [N, 4, 4, 1]);
    const y = tf.oneHot(tf.tensor1d(LABELS, 'int32'), 2);
    const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      model.trainableWeights.map((w) => w.read() as tf.Variable));
    const oracle = new Map<string, number>();
    for (const w of model.trainableWeights) oracle.set(w.originalName, norm(await grads[(w.read() as tf.Variable).name]!.data()));
    tf.dispose([...Object.values(grads), x, y]);
    await model.save(tf.io.withSaveHandler(async (a) => {
      const data = new Uint8Array(a.weightData as ArrayBuffer);
      const half = Math.ceil(data.length / 2);
      const paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
      writeFileSync(join(folder, 'model.json'), JSON.stringify({ format: 'layers-model', generatedBy: a.generatedBy, convertedBy: null, modelTopology: a.modelTopology, weightsManifest: [{ paths, weights: a.weightSpecs }] }));
      writeFileSync(join(folder, paths[0]!), data.subarray(0, half));
      writeFileSync(join(folder, paths[1]!), data.subarray(half));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    model.dispose();
    return oracle;
  } finally {
    await useBackend(testBackendName());
  }
}

describe('gradlens analyze on a tfjs model.json against the real server', () => {
  let server: Server;
  let dir: string;
  let oracle: Map<string, number>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradlens-cli-tfjs-'));
    mkdirSync(join(dir, 'tfjs'));
    oracle = await saveWithOracle(join(dir, 'tfjs'));
    writeFileSync(join(dir, 'data.json'), JSON.stringify({ x: nested(X, [N, 4, 4, 1]), y: LABELS }));
    server = await startServer({ GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1' });
  }, 90_000);
  afterAll(async () => {
    await stop(server, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it("analyze: uploads model.json with its shards; every parameter's gradient norm is tf.variableGrads's", async () => {
    const run = await cli(['analyze', join(dir, 'tfjs', 'model.json'), '--url', server.url, '--data', join(dir, 'data.json')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/uploaded .*model\.json as model [0-9a-f-]{36}/);
    expect(oracle.size).toBe(6);
    for (const [name, e] of oracle) {
      const row = run.stdout.split('\n').find((line) => line.includes(` ${name} `));
      expect(row, `${name} in\n${run.stdout}`).toBeDefined();
      // The GRAD NORM column, printed to 4 significant digits.
      const printed = Number(row!.trim().split(/\s+/).at(-2));
      expect(Math.abs(printed - e) / e, name).toBeLessThan(1e-3);
    }
  }, 120_000);

  it('a weight file missing from the folder: exit 2 naming it', async () => {
    unlinkSync(join(dir, 'tfjs', 'group1-shard2of2.bin'));
    const run = await cli(['check', join(dir, 'tfjs', 'model.json'), '--url', server.url, '--data', join(dir, 'data.json')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/cannot read .*group1-shard2of2\.bin \(named in .*model\.json's weightsManifest\)/);
  }, 60_000);
});
