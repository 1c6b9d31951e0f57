// The README's PyTorch → ONNX → gradlens example: scripts/onnx-fixtures.py's MnistCnn, exported by PyTorch in
// training mode (test/fixtures/onnx-mnist/mnist_cnn.onnx), uploaded and analysed on the MNIST digits gradlens
// draws for seed 42, beside PyTorch's own float64 gradient norms on the same digits (mnist_cnn.json); then the
// same model trained on that batch (POST /v1/trainings with model), beside PyTorch float64 replaying the
// training with torch.optim.Adam (test/support/model_train_reference.py, run by /usr/bin/python3).
//
//   npx tsx scripts/readme-model-example.ts [backend]     prints the README's table and sentence (default backend auto)
//
// test/docs/readme-claims.test.ts runs the same requests and fails when README.md no longer states what they return.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';

const FIXTURE = new URL('../test/fixtures/onnx-mnist/', import.meta.url);

/** The analysis request after the upload (the id is the one POST /v1/models answered). */
export const modelExampleRequest = (id: string) => ({ seed: 42, model: { id }, data: { source: 'mnist', batchSize: 8 } });

export interface ModelExampleFigures {
  verdict: string;
  backpropRatio: string;
  loss: string;
  lossPyTorch: string;
  /** state_dict name, gradlens's gradient norm, PyTorch's, both to 4 significant digits. */
  parameters: [string, string, string][];
}

const sig = (x: number): string => x.toPrecision(4);

export async function modelExampleFigures(app: FastifyInstance): Promise<ModelExampleFigures> {
  const upload = await app.inject({
    method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(new URL('mnist_cnn.onnx', FIXTURE)),
  });
  if (upload.statusCode !== 201) throw new Error(`POST /v1/models: ${upload.statusCode} ${upload.body.slice(0, 300)}`);
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: modelExampleRequest(upload.json().id) });
  if (res.statusCode !== 200) throw new Error(`POST /v1/analyses: ${res.statusCode} ${res.body.slice(0, 300)}`);
  const result = res.json().result as {
    loss: number; summary: { verdict: string; backpropFirstToLastRatio: number }; parameters: { name: string; gradNorm: number }[];
  };
  const torch = JSON.parse(readFileSync(new URL('mnist_cnn.json', FIXTURE), 'utf8')) as { loss64: number; parameters: { name: string; gradNorm64: number }[] };
  return {
    verdict: result.summary.verdict,
    backpropRatio: result.summary.backpropFirstToLastRatio.toPrecision(3),
    loss: sig(result.loss),
    lossPyTorch: sig(torch.loss64),
    parameters: result.parameters.map((p) => [p.name, sig(p.gradNorm), sig(torch.parameters.find((q) => q.name === p.name)!.gradNorm64)]),
  };
}

/** The README's table and sentence for the figures. */
export function modelExampleText(f: ModelExampleFigures): string[] {
  return [
    '| parameter | gradlens ‖∂L/∂θ‖ | PyTorch (float64) |',
    '|---|---|---|',
    ...f.parameters.map(([name, ours, theirs]) => `| \`${name}\` | ${ours} | ${theirs} |`),
    `Loss ${f.loss} (PyTorch ${f.lossPyTorch}); the verdict is \`${f.verdict}\`, backprop first-to-last ratio ${f.backpropRatio}`,
  ];
}

/** The training request after the upload: Adam (PyTorch's ε) for 20 steps on the seed-42 digits, a record every 10. */
export const modelTrainingRequest = (id: string) => ({
  seed: 42, model: { id }, data: { source: 'mnist', batchSize: 8 }, steps: 20, recordEvery: 10,
  optimizer: { name: 'adam', learningRate: 0.01, epsilon: 1e-8 },
});

export interface ModelTrainingFigures {
  status: string;
  /** Per record: step, then loss, conv.weight and fc.weight gradient norms, each gradlens's and PyTorch's (4 significant digits). */
  rows: string[][];
}

interface Replay { steps: { loss: number; parameters: Record<string, { gradNorm: number }> }[] }

/** PyTorch float64 replaying the training (the fixture's seeded MnistCnn, torch.optim.Adam, the same digits). */
function torchReplay(optimizer: object, steps: number): Replay {
  const script = fileURLToPath(new URL('../test/support/model_train_reference.py', import.meta.url));
  const run = spawnSync('/usr/bin/python3', [script], { input: JSON.stringify({ name: 'mnist_cnn', steps, optimizer, dtype: 'float64' }), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`model_train_reference.py: ${run.stderr}`);
  return JSON.parse(run.stdout) as Replay;
}

export async function modelTrainingFigures(app: FastifyInstance): Promise<ModelTrainingFigures> {
  const upload = await app.inject({
    method: 'POST', url: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, payload: readFileSync(new URL('mnist_cnn.onnx', FIXTURE)),
  });
  const res = await app.inject({ method: 'POST', url: '/v1/trainings', payload: modelTrainingRequest(upload.json().id) });
  if (res.statusCode !== 202) throw new Error(`POST /v1/trainings: ${res.statusCode} ${res.body.slice(0, 300)}`);
  let job = res.json();
  while (job.status === 'queued' || job.status === 'running') {
    await new Promise((resolve) => setTimeout(resolve, 50));
    job = (await app.inject({ url: res.headers.location as string })).json();
  }
  if (job.status !== 'succeeded') throw new Error(`training ${job.status}: ${JSON.stringify(job.error)}`);
  const result = job.result as { status: string; records: { step: number; loss: number; parameters: { name: string; gradNorm: number }[] }[] };
  const torch = torchReplay(job.spec.optimizer, job.spec.steps);
  const grad = (r: (typeof result.records)[number], name: string): number => r.parameters.find((p) => p.name === name)!.gradNorm;
  return {
    status: result.status,
    rows: result.records.map((r) => {
      const t = torch.steps[r.step]!;
      return [String(r.step), sig(r.loss), sig(t.loss), sig(grad(r, 'conv.weight')), sig(t.parameters['conv.weight']!.gradNorm), sig(grad(r, 'fc.weight')), sig(t.parameters['fc.weight']!.gradNorm)];
    }),
  };
}

/** The README's training table and sentence. */
export function modelTrainingText(f: ModelTrainingFigures): string[] {
  return [
    '| step | loss | PyTorch | ‖∂L/∂`conv.weight`‖ | PyTorch | ‖∂L/∂`fc.weight`‖ | PyTorch |',
    '|---|---|---|---|---|---|---|',
    ...f.rows.map((r) => `| ${r.join(' | ')} |`),
    `The training's status is \`${f.status}\``,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { buildApp } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config.js');
  const backend = (process.argv[2] ?? 'auto') as 'auto';
  const app = await buildApp(loadConfig({}, { backend, logLevel: 'silent', jobs: { workers: 0, db: ':memory:' } }), { logger: false });
  await app.ready();
  console.log(`backend ${app.backend.name}`);
  console.log(modelExampleText(await modelExampleFigures(app)).join('\n'));
  console.log(modelTrainingText(await modelTrainingFigures(app)).join('\n'));
  await app.close();
}
