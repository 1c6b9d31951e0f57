// Strict numbers in query strings: decimal text only, finite and within the schema's bounds, converted before validation.
import fp from 'fastify-plugin';
import type { FastifyRequest, RouteOptions } from 'fastify';

/**
 * Bodies are JSON and get no type coercion (a number must be a JSON number). Query strings are text, so
 * their numeric parameters are converted here, before schema validation, instead of by Ajv's coerceTypes,
 * which accepts "Infinity" (and then skips minimum/maximum: depth=Infinity pinned a worker forever), "0x10",
 * " 7", "1e1" for an integer and "" as 0. A parameter is an integer when it is written in decimal digits,
 * a number when it is a decimal with an optional exponent; either must be finite and within its bounds.
 */
const INTEGER_TEXT = /^[+-]?\d{1,16}$/;
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$/;
// Long enough for any number a bound allows; the value is echoed in the message, so it must not be unbounded.
const MAX_TEXT = 40;

interface NumericParameter {
  type: 'integer' | 'number';
  minimum?: number;
  maximum?: number;
}

export class QueryParameterError extends Error {
  readonly statusCode = 400;
  readonly code = 'FST_ERR_VALIDATION';
  constructor(readonly field: string, message: string) {
    super(message);
    this.name = 'QueryParameterError';
  }
}

/** The querystring schema's top-level integer and number properties. */
export function numericParameters(schema: unknown): Map<string, NumericParameter> {
  const found = new Map<string, NumericParameter>();
  const properties = (schema as { properties?: Record<string, { type?: unknown; minimum?: unknown; maximum?: unknown }> } | undefined)?.properties;
  for (const [name, p] of Object.entries(properties ?? {})) {
    if (p.type !== 'integer' && p.type !== 'number') continue;
    found.set(name, {
      type: p.type,
      ...(typeof p.minimum === 'number' ? { minimum: p.minimum } : {}),
      ...(typeof p.maximum === 'number' ? { maximum: p.maximum } : {}),
    });
  }
  return found;
}

function describe(p: NumericParameter): string {
  const what = p.type === 'integer' ? 'an integer in decimal digits' : 'a finite decimal number';
  if (p.minimum !== undefined && p.maximum !== undefined) return `${what} between ${p.minimum} and ${p.maximum}`;
  if (p.minimum !== undefined) return `${what} of at least ${p.minimum}`;
  if (p.maximum !== undefined) return `${what} of at most ${p.maximum}`;
  return what;
}

/** The number a query parameter's text stands for; throws QueryParameterError naming the field and its bounds. */
export function parseQueryNumber(name: string, raw: unknown, p: NumericParameter): number {
  const field = `querystring/${name}`;
  const fail = (got: string): never => {
    throw new QueryParameterError(field, `${field} must be ${describe(p)}, got ${got}`);
  };
  if (Array.isArray(raw)) return fail(`${raw.length} values`);
  if (typeof raw === 'number') return raw; // already converted (the hook ran before)
  if (typeof raw !== 'string') return fail(typeof raw);
  const shown = raw.length > MAX_TEXT ? `"${raw.slice(0, MAX_TEXT)}…" (${raw.length} characters)` : JSON.stringify(raw);
  const text = raw.trim() === raw ? raw : null;
  if (text === null || !(p.type === 'integer' ? INTEGER_TEXT : NUMBER_TEXT).test(text)) return fail(shown);
  const value = Number(text);
  if (!Number.isFinite(value) || (p.type === 'integer' && !Number.isSafeInteger(value))) return fail(shown);
  if ((p.minimum !== undefined && value < p.minimum) || (p.maximum !== undefined && value > p.maximum)) return fail(shown);
  return value;
}

function appendHook<T>(existing: T | T[] | undefined, hook: T): T[] {
  return [...(Array.isArray(existing) ? existing : existing ? [existing] : []), hook];
}

export const strictQueryPlugin = fp(async (app) => {
  app.addHook('onRoute', (route: RouteOptions) => {
    const numeric = numericParameters((route.schema as { querystring?: unknown } | undefined)?.querystring);
    if (numeric.size === 0) return;
    const convert = async (request: FastifyRequest): Promise<void> => {
      const query = request.query as Record<string, unknown>;
      for (const [name, p] of numeric) {
        if (query[name] !== undefined) query[name] = parseQueryNumber(name, query[name], p);
      }
    };
    route.preValidation = appendHook(route.preValidation, convert);
  });
}, { name: 'gradlens-strict-query', fastify: '5.x' });
