// A client of gradlens written against the types openapi-typescript generates from the served document
// (test/client/generated/api.d.ts, written by client.test.ts): no cast, and it must type-check under
// `tsc --strict`. It reads a synchronous analysis' per-layer stats, a training's per-step per-layer norms and
// a sweep's cells, and prints them as JSON.
import createClient from 'openapi-fetch';
import type { components, paths } from './generated/api.js';

type Job = components['schemas']['Job'];

const baseUrl = process.argv[2];
if (!baseUrl) throw new Error('usage: program.ts <server url>');
const client = createClient<paths>({ baseUrl });

async function finished(id: string): Promise<Job> {
  for (;;) {
    const { data, error } = await client.GET('/v1/jobs/{id}', { params: { path: { id } } });
    if (error) throw new Error(`GET /v1/jobs/${id}: ${error.code} ${error.message}`);
    if (data && data.status !== 'queued' && data.status !== 'running') return data;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const network = { depth: 4, width: 8, activation: 'tanh' as const };
const data = { source: 'xor' as const, samples: 64, batchSize: 32 };

// A synchronous analysis: 200 is the succeeded analysis job, 202 the pending one.
const analysis = await client.POST('/v1/analyses', { body: { network, data } });
if (!analysis.data) throw new Error(`POST /v1/analyses: ${analysis.error?.message}`);
if (analysis.data.status !== 'succeeded') throw new Error(`the analysis is ${analysis.data.status}`);
// 200 is a network's analysis or an uploaded model's (ModelAnalysisResult, which has the model's format).
const analysed = analysis.data.result;
if ('format' in analysed) throw new Error('a network was analysed, not a model');
const layerStats = analysed.layers.map((layer) => ({ index: layer.index, weightGradNorm: layer.weightGradNorm, backpropNorm: layer.backpropNorm }));
const verdict = analysed.summary.verdict;

// A training: per step, per layer, the weight-gradient norm.
const training = await client.POST('/v1/trainings', { body: { network, data, steps: 4, recordEvery: 2 } });
if (!training.data) throw new Error(`POST /v1/trainings: ${training.error?.message}`);
const trained = await finished(training.data.id);
if (trained.kind !== 'training' || trained.status !== 'succeeded') throw new Error(`the training is ${trained.status}`);
// A training job is of a network or of an uploaded model (ModelTrainingResult, which has the model's format).
if ('format' in trained.result) throw new Error('a network was trained, not a model');
const norms = trained.result.records.map((record) => ({ step: record.step, weightGradNorms: record.layers.map((layer) => layer.weightGradNorm) }));
const learns: boolean = trained.result.learns;

// A sweep: its cells, each with the verdict of its analysis.
const sweep = await client.POST('/v1/sweeps', { body: { base: { network, data }, grid: { 'network.activation': ['relu', 'tanh'] }, expect: { maxNonFinite: 0 } } });
if (!sweep.data) throw new Error(`POST /v1/sweeps: ${sweep.error?.message}`);
const swept = await finished(sweep.data.id);
if (swept.kind !== 'sweep' || swept.status !== 'succeeded') throw new Error(`the sweep is ${swept.status}`);
const cells = swept.result.rows.map((row) => ({ index: row.index, values: row.values, verdict: row.verdict }));
const cellChecks = (swept.result.cells ?? []).map((cell) => ({ index: cell.index, passed: cell.passed }));

process.stdout.write(`${JSON.stringify({ layerStats, verdict, norms, learns, cells, cellChecks })}\n`);
