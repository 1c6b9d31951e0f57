// Load shedding, security headers, CORS, rate limits, early body-size refusal and a rate-limited 404.
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { SecurityConfig } from '../config.js';
import { redactUrl } from './auth.js';
import { addMissingSecurityHeaders, HELMET_OPTIONS, SECURITY_HEADERS } from './security-headers.js';

/** Routes that must answer even when the server sheds load or a client is over its rate: probes and scrapes. */
const OPERATIONS_ROUTES = new Set(['/health', '/ready', '/metrics']);

/**
 * Routes that start compute get the stricter bucket: POSTs under /v1 queue jobs, and GET /v1/theory runs
 * its quadrature on a compute worker (up to ~2 s at depth 1000 on a small machine).
 */
export function startsCompute(method: string | string[], url: string): boolean {
  const methods = Array.isArray(method) ? method : [method];
  return (methods.includes('POST') && url.startsWith('/v1/')) || (methods.includes('GET') && url === '/v1/theory');
}

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/**
 * Fastify's genReqId: a client's x-request-id is kept when it is short and plain, so that it can be logged and
 * echoed safely; anything else gets a fresh UUID.
 */
export function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Fastify's trustProxy; a hop count becomes the function Fastify itself would build (its types omit numbers). */
export function trustProxyOption(value: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof value === 'number' ? (_address, hop) => hop < value : value;
}

/**
 * Fastify's frameworkErrors: malformed percent-encoding (400) and over-long path parameters (414) are refused by
 * the router before any hook runs, so without this they would lack the request id and come in another shape.
 * The message does not repeat the URL, which may carry an access_token.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const message = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is longer than this server accepts'
    : error.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid (malformed percent-encoding)'
    : 'the request could not be routed';
  void reply.code(status).headers(SECURITY_HEADERS).header('x-request-id', request.id).header('cache-control', 'no-store')
    .send({ statusCode: status, code: error.code ?? 'BAD_REQUEST', error: STATUS_CODES[status] ?? 'Bad Request', message });
}

export class RateLimitedError extends Error {
  readonly statusCode = 429;
  readonly code = 'RATE_LIMITED';
  constructor(message: string) {
    super(message);
    this.name = 'RateLimitedError';
  }
}

export interface ProtectionOptions {
  security: SecurityConfig;
  bodyLimitBytes: number;
  /** Compute runs on worker threads: only then does event-loop delay measure HTTP overload (not compute). */
  computeOffMainThread: boolean;
  onShed?(reason: string): void;
  onRateLimited?(bucket: 'all' | 'create' | 'not_found'): void;
}

const LOOP_MEASURES = new Set(['eventLoopDelay', 'eventLoopUtilization']);

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

export const protectionPlugin = fp<ProtectionOptions>(async (app, opts) => {
  const { security } = opts;
  const retryAfter = security.pressureRetryAfterSeconds;

  // Route options are adjusted before the plugins below read them in their own onRoute hooks.
  app.addHook('onRoute', (route: RouteOptions) => {
    if (OPERATIONS_ROUTES.has(route.url)) {
      route.config = { ...(route.config as object), pressureHandler: () => undefined, rateLimit: false } as typeof route.config;
    }
  });

  const thresholds = {
    maxEventLoopDelay: opts.computeOffMainThread ? security.maxEventLoopDelayMs : 0,
    maxEventLoopUtilization: opts.computeOffMainThread ? security.maxEventLoopUtilization : 0,
    maxHeapUsedBytes: security.maxHeapUsedBytes,
    maxRssBytes: security.maxRssBytes,
  };
  // Start-up (module loading, worker start, schema compilation) blocks the loop on purpose; the samples that
  // cover it say nothing about load, so event-loop measures count from the second full sample after ready.
  let settledAt = Number.POSITIVE_INFINITY;
  app.addHook('onReady', async () => {
    settledAt = Date.now() + 2 * security.pressureSampleMs;
  });
  await app.register(underPressure, {
    ...thresholds,
    sampleInterval: security.pressureSampleMs,
    retryAfter,
    // under-pressure sends what the handler returns (handlePressure in its index.js); its typings say void.
    pressureHandler: ((_req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      if (LOOP_MEASURES.has(type) && Date.now() < settledAt) return undefined;
      opts.onShed?.(type);
      reply.code(503).header('retry-after', String(retryAfter));
      return {
        statusCode: 503,
        code: 'OVERLOADED',
        error: 'Service Unavailable',
        message: `the server is shedding load (${type}${value !== undefined ? ` ${Math.round(value * 1000) / 1000}` : ''} is over its limit); retry in ${retryAfter} s`,
        retryAfter,
      };
    }) as unknown as (req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void,
  });

  await app.register(helmet, { global: true, ...HELMET_OPTIONS });
  // Load shedding answers before helmet's onRequest hook runs: every answer gets the headers it lacks.
  app.addHook('onSend', async (_request, reply) => {
    addMissingSecurityHeaders(reply);
  });

  if (security.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: security.corsOrigins.includes('*') ? '*' : security.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'prefer', 'if-none-match', 'x-request-id', 'last-event-id'],
      exposedHeaders: [
        'location', 'content-location', 'etag', 'retry-after', 'x-request-id', 'preference-applied',
        'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset',
      ],
      // Keys travel in Authorization, never in cookies.
      credentials: false,
      maxAge: 600,
    });
  }

  // Refuse before reading a byte of the body, naming the variable; chunked bodies still meet Fastify's own limit.
  app.addHook('onRequest', async (request, reply) => {
    const length = Number(request.headers['content-length']);
    const limit = request.routeOptions.bodyLimit ?? opts.bodyLimitBytes;
    // A route with its own limit (POST /v1/models: GRADLENS_MAX_MODEL_BYTES) names its own variable.
    const variable = (request.routeOptions.config as { bodyLimitVariable?: string } | undefined)?.bodyLimitVariable ?? 'GRADLENS_BODY_LIMIT';
    if (Number.isFinite(length) && length > limit) {
      return reply.code(413).header('connection', 'close').send({
        statusCode: 413,
        code: 'BODY_TOO_LARGE',
        error: 'Payload Too Large',
        message: `the request body has ${length} bytes but the limit (${variable}) is ${limit} bytes`,
        variable,
      });
    }
  });

  const notFound = async (request: FastifyRequest, reply: FastifyReply) =>
    reply.code(404).send({
      statusCode: 404,
      code: 'NOT_FOUND',
      error: 'Not Found',
      message: `no route ${request.method} ${redactUrl(request.url).split('?')[0]}`,
    });

  if (security.rateLimitMax <= 0) {
    app.setNotFoundHandler(notFound);
    return;
  }

  const windowMs = security.rateLimitWindowMs;
  const keyGenerator = (req: FastifyRequest): string => (req.apiKeyId ? `key:${req.apiKeyId}` : `ip:${req.ip}`);
  const who = (req: FastifyRequest): string => (req.apiKeyId ? 'this API key' : 'this address');

  let createLimit: ((req: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; max?: number; remaining?: number; ttlInSeconds?: number }>) | null = null;
  if (security.rateLimitCreateMax > 0) {
    const createMax = security.rateLimitCreateMax;
    app.addHook('onRoute', (route: RouteOptions) => {
      if (!startsCompute(route.method, route.url)) return;
      const hook = async (request: FastifyRequest, reply: FastifyReply) => {
        createLimit ??= app.createRateLimit({ max: createMax, timeWindow: windowMs, keyGenerator });
        const r = await createLimit(request);
        if (r.isAllowed) return;
        if (!r.isExceeded) {
          reply.header('x-ratelimit-create-limit', String(r.max)).header('x-ratelimit-create-remaining', String(r.remaining));
          return;
        }
        opts.onRateLimited?.('create');
        const after = Math.max(1, r.ttlInSeconds ?? 1);
        return reply.code(429).header('retry-after', String(after)).send({
          statusCode: 429,
          code: 'RATE_LIMITED',
          error: 'Too Many Requests',
          message: `${who(request)} may start ${createMax} computations (job submissions, theory) per ${seconds(windowMs)} (GRADLENS_RATE_LIMIT_CREATE_MAX); retry in ${after} s`,
          retryAfter: after,
        });
      };
      route.onRequest = [...(Array.isArray(route.onRequest) ? route.onRequest : route.onRequest ? [route.onRequest] : []), hook];
    });
  }

  await app.register(rateLimit, {
    global: true,
    max: security.rateLimitMax,
    timeWindow: windowMs,
    keyGenerator,
    errorResponseBuilder: (request, context) => {
      opts.onRateLimited?.(request.is404 ? 'not_found' : 'all');
      return new RateLimitedError(
        `${who(request)} may make ${context.max} requests per ${seconds(windowMs)} (GRADLENS_RATE_LIMIT_MAX); retry in ${context.after}`,
      );
    },
  });
  // Unknown paths cost the client's budget too, so that scanning them is throttled like any other request.
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, notFound);
}, { name: 'gradlens-protection', fastify: '5.x' });
