// The committed openapi/openapi.json must equal the document generated from the route schemas.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { generateOpenApi } from '../../src/openapi.js';

describe('OpenAPI document', () => {
  it('matches the committed openapi/openapi.json (run `npm run openapi` after changing a route schema)', async () => {
    const generated = await generateOpenApi();
    const committed = readFileSync(new URL('../../openapi/openapi.json', import.meta.url), 'utf8');
    expect(committed).toBe(generated);
  });

  it('is OpenAPI 3.1 with a description on every property of the analysis request and result', async () => {
    const doc = JSON.parse(await generateOpenApi());
    expect(doc.openapi).toBe('3.1.0');
    const op = doc.paths['/v1/analyses'].post;
    const missing: string[] = [];
    const walk = (schema: Record<string, any>, path: string): void => {
      if (!schema || typeof schema !== 'object') return;
      for (const [key, prop] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
        if (!prop.description && !prop.$ref && prop.const === undefined) missing.push(`${path}.${key}`);
        walk(prop, `${path}.${key}`);
      }
      for (const k of ['anyOf', 'oneOf', 'allOf']) (schema[k] ?? []).forEach((s: any, i: number) => walk(s, `${path}.${k}[${i}]`));
      if (schema.items) walk(schema.items, `${path}[]`);
    };
    walk(op.requestBody.content['application/json'].schema, 'body');
    walk(op.responses['200'].content['application/json'].schema, 'response');
    expect(missing).toEqual([]);
  });
});
