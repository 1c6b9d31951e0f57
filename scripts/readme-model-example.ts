// The README's PyTorch → ONNX → gradlens example: scripts/onnx-fixtures.py's MnistCnn, exported by PyTorch in
// training mode (test/fixtures/onnx-mnist/mnist_cnn.onnx), uploaded and analysed on the MNIST digits gradlens
// draws for seed 42, beside PyTorch's own float64 gradient norms on the same digits (mnist_cnn.json).
//
//   npx tsx scripts/readme-model-example.ts [backend]     prints the README's table and sentence (default backend auto)
//
// test/docs/readme-claims.test.ts runs the same requests and fails when README.md no longer states what they return.
import { readFileSync } from 'node:fs';
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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { buildApp } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config.js');
  const backend = (process.argv[2] ?? 'auto') as 'auto';
  const app = await buildApp(loadConfig({}, { backend, logLevel: 'silent', jobs: { workers: 0, db: ':memory:' } }), { logger: false });
  await app.ready();
  console.log(`backend ${app.backend.name}`);
  console.log(modelExampleText(await modelExampleFigures(app)).join('\n'));
  await app.close();
}
