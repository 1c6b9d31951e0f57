// `gradlens check model.onnx` and `gradlens analyze model.onnx` as a CI pipeline runs them: the bin as a child
// process against the real server (worker pool, from the sources through tsx). The CLI uploads the PyTorch
// export, analyses it by id and gates on --expect; the gradient norms it prints are PyTorch's (the mnist_cnn
// fixture, computed by PyTorch on the digits gradlens draws for that seed).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_BACKEND } from '../support/app.js';
import { CLI_ARGS, startServer, stop, type Server } from '../support/server.js';
import { torchOracle } from '../support/torch-oracle.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const MNIST_MODEL = join(FIXTURES, 'onnx-mnist', 'mnist_cnn.onnx');
const mnistFixture = JSON.parse(readFileSync(join(FIXTURES, 'onnx-mnist', 'mnist_cnn.json'), 'utf8')) as {
  loss64: number; mnist: { batchSize: number; seed: number }; parameters: { name: string; gradNorm64: number }[];
};

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

describe('gradlens check / analyze on a model file against the real server', () => {
  let server: Server;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradlens-cli-model-'));
    server = await startServer({ GRADLENS_BACKEND: TEST_BACKEND, GRADLENS_DB: ':memory:', GRADLENS_WORKERS: '1' });
  }, 90_000);
  afterAll(async () => {
    await stop(server, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  const mnist = ['--data', 'mnist', '--batch-size', String(mnistFixture.mnist.batchSize), '--seed', String(mnistFixture.mnist.seed)];

  it('check --expect: uploads, analyses by id, prints the checks; exit 0 when they pass, 1 when one fails', async () => {
    const pass = await cli(['check', MNIST_MODEL, '--url', server.url, ...mnist, '--expect', `{"maxLoss": ${mnistFixture.loss64 * 1.01}, "maxNonFinite": 0}`]);
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stderr).toMatch(/uploaded .*mnist_cnn\.onnx as model [0-9a-f-]{36}/);
    expect(pass.stdout).toMatch(/verdict: (healthy|vanishing|exploding)/);
    expect(pass.stdout).toContain('/conv/Conv');
    expect(pass.stdout).toMatch(/PASSED: 2 of 2 checks/);

    const fail = await cli(['check', MNIST_MODEL, '--url', server.url, ...mnist, '--expect', `{"maxLoss": ${mnistFixture.loss64 * 0.5}}`]);
    expect(fail.code, fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(/maxLoss .* FAIL/);
    expect(fail.stdout).toMatch(/FAILED: 1 of 1 checks/);
  }, 120_000);

  it("analyze: every parameter under its state_dict name with PyTorch's gradient norm, exit 0 whatever the checks", async () => {
    const run = await cli(['analyze', MNIST_MODEL, '--url', server.url, ...mnist, '--expect', '{"maxLoss": 0}']);
    expect(run.code, run.stderr).toBe(0);
    for (const p of mnistFixture.parameters) {
      const row = run.stdout.split('\n').find((line) => line.includes(` ${p.name} `));
      expect(row, p.name).toBeDefined();
      // The GRAD NORM column, printed to 4 significant digits.
      const printed = Number(row!.trim().split(/\s+/).at(-2));
      expect(Math.abs(printed - p.gradNorm64) / p.gradNorm64, p.name).toBeLessThan(1e-3 + 5e-4);
    }
  }, 120_000);

  it("check --steps: trains the uploaded model on the worker pool, gates on training checks; the losses are PyTorch's replay", async () => {
    const args = ['check', MNIST_MODEL, '--url', server.url, ...mnist, '--steps', '10', '--optimizer', 'adam', '--learning-rate', '0.01', '--record-every', '5'];
    const pass = await cli([...args, '--expect', '{"learns": true, "maxNonFinite": 0}']);
    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stdout).toMatch(/gradlens: training [0-9a-f-]{36} succeeded/);
    expect(pass.stdout).toMatch(/PASSED: 2 of 2 checks/);
    const printed = /loss: (\S+) -> (\S+)/.exec(pass.stdout)!;
    const replay = torchOracle<{ steps: { loss: number }[] }>('model_train_reference.py', {
      name: 'mnist_cnn', steps: 10, optimizer: { name: 'adam', learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }, dtype: 'float64',
    });
    expect(Math.abs(Number(printed[1]) - replay.steps[0]!.loss) / replay.steps[0]!.loss).toBeLessThan(1e-3);
    expect(Math.abs(Number(printed[2]) - replay.steps[10]!.loss) / replay.steps[10]!.loss).toBeLessThan(1e-2);
    const fail = await cli([...args, '--expect', '{"minLossReduction": 1.5}']);
    expect(fail.code, fail.stderr).toBe(1);
    const stray = await cli(['check', MNIST_MODEL, '--url', server.url, ...mnist, '--optimizer', 'adam']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain('go with --steps');
  }, 180_000);

  it('inline data from a file, and the errors a pipeline meets: exit 2 naming what is wrong', async () => {
    const data = join(dir, 'data.json');
    writeFileSync(data, JSON.stringify({ x: [[[[1, 2]]]], y: [0] }));
    const wrongShape = await cli(['check', MNIST_MODEL, '--url', server.url, '--data', data]);
    expect(wrongShape.code).toBe(2);
    expect(wrongShape.stderr).toMatch(/HTTP 400 INVALID_SPEC: data\.x holds examples of shape \[1, 1, 2\]; the model takes \[1, 28, 28\].*\(field data\.x\)/);

    const noData = await cli(['check', MNIST_MODEL, '--url', server.url]);
    expect(noData.code).toBe(2);
    expect(noData.stderr).toContain('a model needs --data');

    const notAModel = join(dir, 'broken.onnx');
    writeFileSync(notAModel, 'not protobuf at all');
    const broken = await cli(['check', notAModel, '--url', server.url, '--data', 'mnist']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/POST \/v1\/models: HTTP 400 INVALID_MODEL/);
  }, 120_000);
});
