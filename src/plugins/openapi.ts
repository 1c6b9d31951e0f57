// The OpenAPI document: @fastify/swagger with servers and license, every titled schema hoisted into
// components.schemas behind a $ref, `security: []` on the open routes, and the responses every route can give
// because of the plugins in front of it (401, 413, 415, 429, 500, 503) with their headers.
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { RouteOptions } from 'fastify';
import { ErrorSchema } from '../schemas/result.js';
import { QueueFullSchema } from '../schemas/jobs.js';
import { SECURITY_SCHEMES } from './auth.js';

type Json = Record<string, unknown>;

const header = (description: string, schema: Json = { type: 'string' }): Json => ({ ...schema, description });

/** Response headers, by name, as @fastify/swagger reads them from a response schema's `headers`. */
export const HEADERS = {
  requestId: { 'X-Request-Id': header('The request id (a client\'s own x-request-id when short and plain); it is in the server log line.') },
  rateLimit: {
    'X-RateLimit-Limit': header('Requests allowed per window (GRADLENS_RATE_LIMIT_MAX); sent when rate limiting is on.', { type: 'integer' }),
    'X-RateLimit-Remaining': header('Requests left in this window.', { type: 'integer' }),
    'X-RateLimit-Reset': header('Seconds until the window resets.', { type: 'integer' }),
  },
  retryAfter: { 'Retry-After': header('Seconds to wait before retrying.', { type: 'integer' }) },
  location: { Location: header('The job: /v1/jobs/{id}.') },
  contentLocation: { 'Content-Location': header('The stored job: GET /v1/jobs/{id} returns this same representation.') },
  preferenceApplied: { 'Preference-Applied': header('respond-async when Prefer: respond-async was honoured (RFC 7240).') },
  etag: { ETag: header('Strong validator of this representation: send it in If-None-Match (304) or If-Match (DELETE, 412).') },
  wwwAuthenticate: { 'WWW-Authenticate': header('Bearer challenge (RFC 6750).') },
} as const;

/** A response schema with declared headers (the serializer ignores `headers`; the document lists them). */
export function withHeaders<T extends object>(schema: T, ...headers: Record<string, Json>[]): T {
  const existing = (schema as { headers?: Record<string, Json> }).headers ?? {};
  return { ...schema, headers: Object.assign({}, existing, ...headers) };
}

const error = (description: string) => ({ ...ErrorSchema, description });

/** Responses that the plugins in front of a /v1 route can give, whatever its handler does. */
function commonResponses(route: RouteOptions): Record<string, object> {
  const isApi = route.url.startsWith('/v1/');
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  // Fastify parses a body sent with any method but GET and HEAD, declared or not: it may be malformed (400)
  // or of a media type it has no parser for (415).
  const takesBody = methods.some((m) => m !== 'GET' && m !== 'HEAD');
  const hasInput = takesBody || route.schema?.querystring !== undefined || route.schema?.params !== undefined || route.schema?.headers !== undefined;
  const out: Record<string, object> = {};
  if (hasInput) out[400] = error('The request is not valid (FST_ERR_VALIDATION, INVALID_SPEC, a malformed body): the message names the field.');
  out[401] = withHeaders(error(isApi
    ? 'UNAUTHORIZED: the server enforces API keys (GRADLENS_API_KEYS) and the request has none or a wrong one.'
    : 'UNAUTHORIZED: only when API keys are enforced and GRADLENS_OPEN_PATHS does not list this route (by default it does).'), HEADERS.wwwAuthenticate);
  if (isApi) {
    out[429] = withHeaders(error('RATE_LIMITED: too many requests (GRADLENS_RATE_LIMIT_MAX), computations (GRADLENS_RATE_LIMIT_CREATE_MAX) or invalid keys (GRADLENS_AUTH_FAILURE_MAX) from this client.'), HEADERS.retryAfter);
    out[503] = QueueFullSchema;
  }
  // The Content-Length check runs on every route, before any body is read.
  out[413] = error('BODY_TOO_LARGE: the request declares a body larger than GRADLENS_BODY_LIMIT.');
  if (takesBody) out[415] = error('FST_ERR_CTP_INVALID_MEDIA_TYPE: a body must be application/json.');
  out[500] = error('INTERNAL_ERROR: a fault of the server; details are in its log, never in the response.');
  return out;
}

/** Adds the plugins' responses and the headers every answer carries; open routes get `security: []`. */
function declareRoute(route: RouteOptions): void {
  const schema = route.schema as (Json & { hide?: boolean; response?: Record<string, object> }) | undefined;
  if (!schema || schema.hide) return;
  const isApi = route.url.startsWith('/v1/');
  // The auth plugin declares the schemes of /v1 routes; everything else never needs a key.
  if (!isApi) schema.security ??= [];
  const response: Record<string, object> = { ...commonResponses(route), ...(schema.response ?? {}) };
  for (const [status, body] of Object.entries(response)) {
    const headers = [HEADERS.requestId, ...(isApi && status.startsWith('2') ? [HEADERS.rateLimit] : []), ...(status === '503' ? [HEADERS.retryAfter] : [])];
    response[status] = withHeaders(body, ...headers);
  }
  schema.response = response;
}

const SKIPPED_KEYS = new Set(['examples', 'example', 'default', 'const', 'enum', 'securitySchemes']);

/** JSON with sorted keys: two schemas are the same component when these strings are equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Json)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Moves every schema with a `title` into components.schemas[title] and leaves a $ref (with the site's own
 * description where it differs). Two different schemas with one title are a programming error: it throws.
 */
export function hoistComponents<T extends Json>(document: T): T {
  const components = (document.components ?? {}) as Json & { schemas?: Json };
  const schemas: Json = { ...(components.schemas ?? {}) };
  const seen = new Map<string, { text: string; description: unknown }>();
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (!node || typeof node !== 'object') return node;
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) out[key] = SKIPPED_KEYS.has(key) ? value : visit(value);
    const title = out.title;
    if (typeof title !== 'string' || !('type' in out || 'anyOf' in out || 'oneOf' in out || 'enum' in out || 'allOf' in out)) return out;
    const { description, ...body } = out;
    const text = canonical(body);
    const known = seen.get(title);
    if (!known) {
      seen.set(title, { text, description });
      schemas[title] = description === undefined ? body : { ...body, description };
    } else if (known.text !== text) {
      throw new Error(`OpenAPI: two different schemas are both titled ${title}`);
    }
    const ref: Json = { $ref: `#/components/schemas/${title}` };
    return description !== undefined && description !== (known ?? seen.get(title))!.description ? { ...ref, description } : ref;
  };
  const paths = visit(document.paths);
  const sorted = Object.fromEntries(Object.keys(schemas).sort().map((k) => [k, schemas[k]]));
  return { ...document, paths, components: { ...components, schemas: sorted } };
}

export interface OpenApiOptions {
  version: string;
}

/**
 * A route whose body no JSON schema can validate (POST /v1/models: a file, or multipart files) documents it
 * in config.requestBody, an OpenAPI requestBody object put into the document as it is.
 */
function withRequestBodies(document: Json, bodies: ReadonlyMap<string, { method: string; body: Json }>): Json {
  const paths = (document.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const [url, { method, body }] of bodies) {
    const op = paths[url]?.[method];
    if (op) op.requestBody = body;
  }
  return document;
}

export const openApiPlugin = fp<OpenApiOptions>(async (app, { version }) => {
  const bodies = new Map<string, { method: string; body: Json }>();
  app.addHook('onRoute', (route) => {
    declareRoute(route);
    const body = (route.config as { requestBody?: Json } | undefined)?.requestBody;
    const method = Array.isArray(route.method) ? route.method[0] : route.method;
    if (body && method) bodies.set(route.url, { method: method.toLowerCase(), body });
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gradlens',
        version,
        description:
          'How gradients flow through deep networks: builds a dense network from a JSON spec with TensorFlow.js, runs real batches forward and backward with autodiff, and returns per-layer gradient statistics.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/', description: 'The server that serves this document (npm start listens on port 3000 by default).' }],
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    transformObject: (documentObject) => hoistComponents(withRequestBodies((documentObject as { openapiObject: Json }).openapiObject, bodies)),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}, { name: 'gradlens-openapi', fastify: '5.x' });
