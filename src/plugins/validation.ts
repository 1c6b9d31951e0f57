// Fastify's schemaErrorFormatter: a value outside a vocabulary (an unknown activation, initialiser, data
// source…) is named with its field, the value and the allowed names; other errors keep Fastify's wording.
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';

/** /network/layers/2/name → network.layers[2].name */
function dotted(instancePath: string): string {
  return instancePath.split('/').slice(1).map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : `${i ? '.' : ''}${part}`)).join('');
}

export function schemaErrorFormatter(errors: FastifySchemaValidationError[], dataVar: string): Error & { field?: string; code?: string } {
  const unknownName = errors.find((e) => e.keyword === 'enum' && typeof (e as { data?: unknown }).data === 'string');
  if (unknownName) {
    const field = dotted(unknownName.instancePath);
    const allowed = (unknownName.params as { allowedValues?: unknown[] }).allowedValues ?? [];
    const value = String((unknownName as { data?: unknown }).data).slice(0, 64);
    const err: Error & { field?: string; code?: string } = new Error(`${dataVar}.${field} "${value}" is not one of ${allowed.join(', ')} (names are case-sensitive)`);
    // The code the engine gave an unknown name before the schema knew the names.
    err.code = 'INVALID_SPEC';
    err.field = field;
    return err;
  }
  return new Error(errors.map((e) => `${dataVar}${e.instancePath} ${e.message ?? ''}`).join(', '));
}
