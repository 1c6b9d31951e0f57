// README sentences that state what the service does, checked against the running app: the second example's figures, and which rate limit bites first.
import { describe, it, expect, afterEach } from 'vitest';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { TEST_BACKEND, testApp } from '../support/app.js';
import { RELU_EXAMPLE, exampleSentence, reluExampleFigures } from '../../scripts/readme-example.js';
import { loadConfig } from '../../src/config.js';
import { modelExampleFigures, modelExampleText, modelTrainingFigures, modelTrainingText } from '../../scripts/readme-model-example.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('README: the ReLU + He example', () => {
  it('states the request exactly and the figures it returns (scripts/readme-example.ts)', async () => {
    app = await testApp();
    const figures = await reluExampleFigures(app);
    expect(figures.loss).toBe('categorical_crossentropy');
    expect(figures.outputActivation).toBe('softmax');
    expect(README).toContain(JSON.stringify(RELU_EXAMPLE).replace(/([{:,])/g, '$1 ').replace(/}/g, ' }').replace(/\s+/g, ' '));
    expect(README).toContain(exampleSentence(figures));
  });
});

describe('README: the PyTorch → ONNX → gradlens example', () => {
  it('states the per-parameter gradient norms the service returns, beside PyTorch\'s (scripts/readme-model-example.ts)', async () => {
    app = await testApp();
    const figures = await modelExampleFigures(app);
    // The service agrees with PyTorch to the digits shown: an independent oracle, not the product against itself.
    for (const [name, ours, theirs] of figures.parameters) expect(ours, name).toBe(theirs);
    for (const line of modelExampleText(figures)) expect(README).toContain(line);
  });
});

describe('README: training an uploaded model', () => {
  it('states the records the service returns, beside PyTorch float64 replaying the training (scripts/readme-model-example.ts)', async () => {
    app = await testApp();
    const figures = await modelTrainingFigures(app);
    // Every figure agrees with PyTorch's replay to 1e-3: an independent oracle, not the product against itself.
    for (const r of figures.rows) for (const k of [1, 3, 5]) expect(Math.abs(Number(r[k]) - Number(r[k + 1])) / Number(r[k + 1]), r.join(' ')).toBeLessThan(1e-3);
    // The README's table is the script's output on the native backend (`npx tsx scripts/readme-model-example.ts native`);
    // other backends round a last digit differently (float32 summation order), so there each figure is held to 1e-3.
    const cells = (line: string): string[] => line.split('|').map((c) => c.trim()).filter((c) => c !== '');
    for (const line of modelTrainingText(figures)) {
      if (TEST_BACKEND === 'native' || !/^\d+$/.test(cells(line)[0] ?? '')) {
        expect(README).toContain(line);
        continue;
      }
      const [step, ...values] = cells(line);
      const stated = README.match(new RegExp(`\\| ${step} \\|((?: [^| ]+ \\|){${values.length}})`))?.[1];
      expect(stated, `README has no row for step ${step}`).toBeDefined();
      cells(stated!).forEach((v, k) => expect(Math.abs(Number(v) - Number(values[k])) / Math.abs(Number(values[k])), `step ${step}: ${v} vs ${values[k]}`).toBeLessThan(1e-3));
    }
  });
});

describe('README: rate limits', () => {
  // An invalid body answers 400 without computing, and still counts: the limits run before validation.
  const post = (a: FastifyInstance) => a.inject({ method: 'POST', url: '/v1/analyses', payload: { network: { depth: 0 } } });
  const statuses = async (a: FastifyInstance, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await post(a)).statusCode);
    return out;
  };

  it('by default the 60-per-minute compute limit is the one a client hits first', async () => {
    const defaults = loadConfig({}).security;
    expect([defaults.rateLimitCreateMax, defaults.rateLimitMax, defaults.rateLimitWindowMs]).toEqual([60, 600, 60_000]);
    expect(README).toContain('may start 60 computations per minute');
    app = await testApp();
    const s = await statuses(app, 61);
    expect(s.slice(0, 60).every((c) => c === 400)).toBe(true);
    const refused = await post(app);
    expect(s[60]).toBe(429);
    expect(refused.json().message).toMatch(/GRADLENS_RATE_LIMIT_CREATE_MAX/);
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(200);
  });

  it('GRADLENS_RATE_LIMIT_CREATE_MAX=0 lifts only that limit; the per-request limit still applies', async () => {
    expect(README).toContain('`GRADLENS_RATE_LIMIT_CREATE_MAX=0` lifts only that limit');
    app = await testApp({ security: { rateLimitMax: 70, rateLimitCreateMax: 0 } });
    const s = await statuses(app, 71);
    expect(s.slice(0, 70).every((c) => c === 400)).toBe(true);
    expect(s[70]).toBe(429);
    expect((await post(app)).json().message).toMatch(/GRADLENS_RATE_LIMIT_MAX\)/);
  });

  it('GRADLENS_RATE_LIMIT_MAX=0 turns both off', async () => {
    expect(README).toContain('`GRADLENS_RATE_LIMIT_MAX=0` turns both off');
    app = await testApp({ security: { rateLimitMax: 0, rateLimitCreateMax: 60 } });
    expect((await statuses(app, 65)).every((c) => c === 400)).toBe(true);
  });
});
