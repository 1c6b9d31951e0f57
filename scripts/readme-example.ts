// The README's second example (ReLU + He on MNIST): the request and the figures its sentence quotes, computed by the real app.
//
//   npx tsx scripts/readme-example.ts [backend]     prints the figures as the README states them (default backend auto)
//
// test/docs/readme-claims.test.ts runs the same request and fails when README.md no longer states what it returns.
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';

/**
 * A request of its own, not the textbook one with fields changed: nothing of the textbook request carries over
 * (no `outputActivation`, `useBias` or `loss`), so the loss is MNIST's default, categorical cross-entropy on a
 * softmax output layer.
 */
export const RELU_EXAMPLE = {
  seed: 1,
  network: { depth: 20, width: 256, activation: 'relu', init: { weights: 'he_normal' } },
  data: { source: 'mnist', batchSize: 128 },
} as const;

export interface ExampleFigures {
  verdict: string;
  /** As the README writes them: "1.24", "1.01". */
  backpropRatio: string;
  factorPerLayer: string;
  loss: string;
  outputActivation: string;
}

export async function reluExampleFigures(app: FastifyInstance): Promise<ExampleFigures> {
  const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: RELU_EXAMPLE });
  if (res.statusCode !== 200) throw new Error(`POST /v1/analyses: ${res.statusCode} ${res.body.slice(0, 300)}`);
  const result = res.json().result as {
    summary: { verdict: string; backpropFirstToLastRatio: number; backpropLogSlope: { factorPerLayer: number } };
    layers: { activation: string }[];
  };
  const spec = res.json().spec as { loss?: string } | undefined;
  return {
    verdict: result.summary.verdict,
    backpropRatio: result.summary.backpropFirstToLastRatio.toFixed(2),
    factorPerLayer: result.summary.backpropLogSlope.factorPerLayer.toFixed(2),
    loss: spec?.loss ?? '(not echoed)',
    outputActivation: result.layers.at(-1)!.activation,
  };
}

/** The README's words for the figures. */
export function exampleSentence(f: ExampleFigures): string {
  return `says \`${f.verdict}\`: backprop first-to-last ratio ${f.backpropRatio}, ×${f.factorPerLayer} per layer`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { buildApp } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config.js');
  const backend = (process.argv[2] ?? 'auto') as 'auto';
  const app = await buildApp(loadConfig({}, { backend, logLevel: 'silent', jobs: { workers: 0, db: ':memory:' } }), { logger: false });
  const figures = await reluExampleFigures(app);
  console.log(JSON.stringify({ backend: app.backend.name, ...figures }));
  console.log(exampleSentence(figures));
  await app.close();
}
