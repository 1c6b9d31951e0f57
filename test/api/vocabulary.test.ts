// One source for every list: the served OpenAPI enums are the vocabulary's arrays, and the engine's
// registries know exactly these names (each one works, a name outside the list is refused).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { FastifyInstance } from 'fastify';
import * as V from '../../src/schemas/vocabulary.js';
import { ACTIVATION_NAMES, activation, normalizeActivation } from '../../src/engine/model/activations.js';
import { INITIALIZER_NAMES, normalizeInitializer, SCALING_DISTRIBUTIONS } from '../../src/engine/model/initializers.js';
import { normalizeOptimizer } from '../../src/engine/model/optimizers.js';
import { DATA_SOURCES } from '../../src/engine/data/datasets.js';
import { BACKEND_CHOICES } from '../../src/engine/backends/select.js';
import { VERDICTS } from '../../src/schemas/checks.js';
import { testApp } from '../support/app.js';

let app: FastifyInstance;
let doc: { components: { schemas: Record<string, { enum?: string[] }> }; paths: Record<string, Record<string, any>> };
beforeAll(async () => {
  app = await testApp();
  doc = (await app.inject({ url: '/openapi.json' })).json();
});
afterAll(async () => app.close());

const component = (name: string): string[] | undefined => doc.components.schemas[name]?.enum;

describe('the vocabulary', () => {
  it('is what the served document enumerates', () => {
    expect(component('JobKind')).toEqual([...V.JOB_KINDS]);
    expect(component('JobStatus')).toEqual([...V.JOB_STATUSES]);
    expect(component('DataSource')).toEqual([...V.DATA_SOURCES]);
    expect(component('FeatureNormalization')).toEqual([...V.FEATURE_NORMALIZATIONS]);
    expect(component('ActivationName')).toEqual([...V.ACTIVATION_NAMES]);
    expect(component('InitializerName')).toEqual([...V.INITIALIZER_NAMES]);
    expect(component('Loss')).toEqual([...V.LOSS_NAMES]);
    expect(component('Verdict')).toEqual([...V.VERDICTS]);
    expect(component('LayerFlag')).toEqual([...V.LAYER_FLAGS]);
    expect(component('TrainingOutcome')).toEqual([...V.TRAINING_OUTCOMES]);
    const network = doc.components.schemas.Network as { properties: Record<string, any> };
    expect(network.properties.normalization.enum).toEqual([...V.NORMALIZATION_KINDS]);
    expect(network.properties.residual.properties.variant.enum).toEqual([...V.RESIDUAL_VARIANTS]);
    const optimizer = doc.components.schemas.Optimizer as { properties: Record<string, any> };
    expect(optimizer.properties.name.enum).toEqual([...V.OPTIMIZER_NAMES]);
    const environment = doc.components.schemas.Environment as { properties: Record<string, any> };
    expect(environment.properties.backend.enum).toEqual([...V.BACKEND_NAMES]);
    const listParams = doc.paths['/v1/jobs']!.get!.parameters as { name: string; schema: { $ref?: string } }[];
    expect(listParams.find((p) => p.name === 'kind')?.schema.$ref).toBe('#/components/schemas/JobKind');
  });

  it('is the engine\'s registries, name for name', () => {
    expect([...ACTIVATION_NAMES]).toEqual([...V.ACTIVATION_NAMES]);
    expect([...INITIALIZER_NAMES]).toEqual([...V.INITIALIZER_NAMES]);
    expect([...SCALING_DISTRIBUTIONS]).toEqual([...V.SCALING_DISTRIBUTIONS]);
    expect([...DATA_SOURCES]).toEqual([...V.DATA_SOURCES]);
    expect([...BACKEND_CHOICES]).toEqual([...V.BACKEND_CHOICES]);
    expect([...VERDICTS]).toEqual([...V.VERDICTS]);
    // Every name works in the engine, and one outside the list does not.
    for (const name of V.ACTIVATION_NAMES) expect(activation(normalizeActivation(name, 'a')).spec.name).toBe(name);
    expect(() => normalizeActivation('relux', 'a')).toThrow(/not a known activation/);
    for (const name of V.INITIALIZER_NAMES) expect(normalizeInitializer(name, 'w').name).toBe(name);
    expect(() => normalizeInitializer('kaiming', 'w')).toThrow();
    for (const name of V.OPTIMIZER_NAMES) expect(normalizeOptimizer({ name }).name).toBe(name);
    expect(() => normalizeOptimizer({ name: 'adagrad' } as never)).toThrow();
  });

  it('guards values that did not pass a schema', () => {
    expect(V.isOneOf(V.JOB_KINDS, 'sweep')).toBe(true);
    expect(V.isOneOf(V.JOB_KINDS, 'Sweep')).toBe(false);
    expect(V.isOneOf(V.JOB_KINDS, 3)).toBe(false);
  });

  it('names an unknown value with its field and the allowed names (case-sensitive)', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/analyses', payload: { network: { depth: 2, activation: 'ReLU' }, data: { source: 'iris' } } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'INVALID_SPEC', field: 'network.activation' });
    expect(res.json().message).toContain(`"ReLU" is not one of ${V.ACTIVATION_NAMES.join(', ')}`);
  });
});
