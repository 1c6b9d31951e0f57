// Optional API keys: Bearer (or ?access_token= on GET) compared in constant time, open paths, and log redaction.
import fp from 'fastify-plugin';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SecurityConfig } from '../config.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** A short, log-safe id of the API key that authenticated the request (hash prefix); null without one. */
    apiKeyId: string | null;
  }
}

export const QUERY_TOKEN = 'access_token';

/** pino paths that may hold a key, for Fastify's `logger.redact`. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.query.access_token',
  'headers.authorization',
  'request.headers.authorization',
];

/** A query parameter's name as the query parser reads it ('+' is a space, %XX decoded); null if it cannot be decoded. */
function decodedName(name: string): string | null {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/**
 * Replaces the value of access_token in a URL's query string, wherever it appears. Names are compared
 * decoded, as the query parser (and so the authentication) reads them: `access%5Ftoken` is the same
 * parameter. A name that does not decode is redacted too, since nothing can say it is not the token.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const redacted = query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair;
    const name = decodedName(pair.slice(0, eq));
    return name === null || name.toLowerCase() === QUERY_TOKEN ? `${pair.slice(0, eq)}=[REDACTED]` : pair;
  });
  return `${url.slice(0, q)}?${redacted.join('&')}${hash < 0 ? '' : url.slice(hash)}`;
}

/**
 * Fastify's default request serializer, except that the url loses its access_token: the token is a key, and
 * request lines are logged at info level (pino's redact cannot reach inside a string).
 */
export function serializeRequest(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** OpenAPI security schemes (components.securitySchemes). */
export const SECURITY_SCHEMES: { bearerAuth: { type: 'http'; scheme: string; description: string }; accessToken: { type: 'apiKey'; in: 'query'; name: string; description: string } } = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description:
      'When the server is started with GRADLENS_API_KEYS (or GRADLENS_API_KEYS_FILE), every /v1 route needs `Authorization: Bearer <key>`; 401 with WWW-Authenticate otherwise. /health, /ready, /metrics, /docs, /openapi.json and the dashboard stay open (GRADLENS_OPEN_PATHS). Without keys configured, no authentication is needed.',
  },
  accessToken: {
    type: 'apiKey',
    in: 'query',
    name: QUERY_TOKEN,
    description:
      'The same key as a query parameter, accepted on GET requests only, for browsers: EventSource (GET /v1/jobs/{id}/events) cannot set headers. The server removes it before validation and redacts it from logs; prefer the header everywhere else, since URLs end up in proxy logs and browser history.',
  },
};

/** Glob over route patterns: `**` matches anything, `*` anything but '/'. */
export function pathMatcher(patterns: string[]): (path: string) => boolean {
  const regexes = patterns.map((p) => {
    const body = p.split('**').map((part) => part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*');
    return new RegExp(`^${body}$`);
  });
  return (path) => regexes.some((re) => re.test(path));
}

// SHA-256 first so both sides of timingSafeEqual have the same length whatever the caller sends.
const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export interface KeyChecker {
  /** The key's id when it is one of the configured keys, else null. Takes the same time for every input. */
  check(candidate: string): string | null;
}

export function keyChecker(keys: string[]): KeyChecker {
  const digests = keys.map((key) => ({ digest: digest(key), id: digest(key).toString('hex').slice(0, 12) }));
  return {
    check(candidate) {
      const d = digest(candidate);
      let found: string | null = null;
      // No early exit: the time does not depend on which key matched, or whether one did.
      for (const key of digests) if (timingSafeEqual(d, key.digest)) found = key.id;
      return found;
    },
  };
}

function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  return m ? m[1]! : null;
}

function unauthorized(reply: FastifyReply, invalid: boolean, viaQuery: boolean): FastifyReply {
  const challenge = invalid ? 'Bearer realm="gradlens", error="invalid_token", error_description="the API key is not valid"' : 'Bearer realm="gradlens"';
  return reply.code(401).header('www-authenticate', challenge).send({
    statusCode: 401,
    code: invalid ? 'INVALID_API_KEY' : 'UNAUTHORIZED',
    error: 'Unauthorized',
    message: invalid
      ? `the API key${viaQuery ? ` in ${QUERY_TOKEN}` : ''} is not valid`
      : `this route needs an API key: send Authorization: Bearer <key>${viaQuery ? '' : ` (GET requests may use ?${QUERY_TOKEN}=<key>)`}`,
  });
}

export interface AuthOptions {
  security: SecurityConfig;
  /** Called with each refused request (metrics). */
  onRefused?(reason: 'missing' | 'invalid'): void;
  /** Called with each request refused because its address failed too often (metrics). */
  onFailuresLimited?(): void;
  /** The clock of the failure windows (tests). */
  now?: () => number;
}

/**
 * Invalid keys per client address in fixed windows. Past `max` failures every request of that address that
 * needs a key gets 429 until the window ends, whatever key it carries: answering a right key normally would
 * tell a guesser when it has found one. Tracks at most `capacity` addresses (expired windows are dropped
 * first, then the oldest), so a flood of addresses cannot grow the map without bound.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, { failures: number; resetAt: number }>();

  constructor(private readonly o: { max: number; windowMs: number; now: () => number; capacity?: number }) {}

  /** Seconds until `address` may try again; 0 when it may now. */
  retryAfterSeconds(address: string): number {
    const w = this.windows.get(address);
    const now = this.o.now();
    if (!w || w.resetAt <= now || w.failures < this.o.max) return 0;
    return Math.max(1, Math.ceil((w.resetAt - now) / 1000));
  }

  recordFailure(address: string): void {
    const now = this.o.now();
    const w = this.windows.get(address);
    if (w && w.resetAt > now) {
      w.failures++;
      return;
    }
    this.windows.delete(address);
    if (this.windows.size >= (this.o.capacity ?? 100_000)) this.evict(now);
    this.windows.set(address, { failures: 1, resetAt: now + this.o.windowMs });
  }

  get tracked(): number {
    return this.windows.size;
  }

  /**
   * Every window lasts windowMs and is (re)inserted when it starts, so the map is in order of resetAt: the
   * expired windows, and then the oldest, come first. Stops at the first one to keep: O(1) amortised.
   */
  private evict(now: number): void {
    const capacity = this.o.capacity ?? 100_000;
    for (const [address, w] of this.windows) {
      if (w.resetAt > now && this.windows.size < capacity) break;
      this.windows.delete(address);
    }
  }
}

/**
 * Global onRequest hook. Whether a path is open is decided on the matched route's pattern, not the raw URL,
 * so encodings and dot segments cannot make a protected route look like an open one; unmatched paths (404)
 * are checked by their literal path.
 */
export const authPlugin = fp<AuthOptions>(async (app, { security, onRefused, onFailuresLimited, now = Date.now }) => {
  const enabled = security.apiKeys.length > 0;
  const checker = keyChecker(security.apiKeys);
  const isOpen = pathMatcher(security.openPaths);
  const failures = security.authFailureMax > 0 ? new FailureLimiter({ max: security.authFailureMax, windowMs: security.rateLimitWindowMs, now }) : null;
  app.decorateRequest('apiKeyId', null);

  // Documented on every /v1 route whether or not keys are configured, so the OpenAPI document does not
  // depend on the deployment and Swagger UI offers "Authorize".
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || !route.schema || (route.schema as { hide?: boolean }).hide) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as { security?: unknown };
    schema.security ??= methods.includes('GET') ? [{ bearerAuth: [] }, { accessToken: [] }] : [{ bearerAuth: [] }];
  });

  app.addHook('onRequest', async (request, reply) => {
    const method = request.method;
    const readOnly = method === 'GET' || method === 'HEAD';
    const query = request.query as Record<string, unknown> | undefined;
    // Always removed, so that strict query schemas (GET /v1/jobs) accept the dashboard's URLs with or without keys.
    let queryToken: unknown;
    if (readOnly && query && typeof query === 'object' && QUERY_TOKEN in query) {
      queryToken = query[QUERY_TOKEN];
      delete query[QUERY_TOKEN];
    }
    if (!enabled || method === 'OPTIONS') return;
    const path = request.routeOptions.url ?? request.url.split('?')[0]!;
    if (isOpen(path)) return;

    const headerKey = bearer(request.headers.authorization);
    const useQuery = headerKey === null && security.queryToken && readOnly && typeof queryToken === 'string' && queryToken !== '';
    const candidate = headerKey ?? (useQuery ? (queryToken as string) : null);
    if (candidate === null) {
      onRefused?.('missing');
      return unauthorized(reply, false, false);
    }
    const wait = failures?.retryAfterSeconds(request.ip) ?? 0;
    if (wait > 0) {
      onFailuresLimited?.();
      return reply.code(429).header('retry-after', String(wait)).send({
        statusCode: 429,
        code: 'TOO_MANY_AUTH_FAILURES',
        error: 'Too Many Requests',
        message: `this address sent more than ${security.authFailureMax} invalid API keys in ${Math.round(security.rateLimitWindowMs / 1000)} s (GRADLENS_AUTH_FAILURE_MAX); retry in ${wait} s`,
        retryAfter: wait,
      });
    }
    const id = checker.check(candidate);
    if (id === null) {
      failures?.recordFailure(request.ip);
      onRefused?.('invalid');
      return unauthorized(reply, true, useQuery);
    }
    request.apiKeyId = id;
  });
}, { name: 'gradlens-auth', fastify: '5.x' });
