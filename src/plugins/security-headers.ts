// The security headers every response carries: helmet's set, also on answers written before or outside Fastify's hooks.
import helmet from 'helmet';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Helmet's defaults suit the API and the Swagger UI at /docs (no inline scripts; inline styles are allowed by
 * style-src 'unsafe-inline'). upgrade-insecure-requests would break /docs served over plain HTTP. The
 * dashboard sets its own, stricter CSP on its page.
 */
export const HELMET_OPTIONS = {
  contentSecurityPolicy: { useDefaults: true, directives: { 'upgrade-insecure-requests': null } },
} as const;

/** What helmet's middleware sets with HELMET_OPTIONS (it depends on nothing in the request), computed once. */
function helmetHeaders(): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(HELMET_OPTIONS)({} as IncomingMessage, res as unknown as ServerResponse, () => undefined);
  return Object.freeze(headers);
}

export const SECURITY_HEADERS = helmetHeaders();

/**
 * Fastify's onSend: the helmet headers a reply does not have yet. @fastify/helmet sets them in an onRequest
 * hook, so answers sent before it ran (load shedding) or without hooks (routing errors) would lack them.
 * A header the route set itself (the dashboard's CSP) is kept.
 */
export function addMissingSecurityHeaders(reply: { hasHeader(name: string): boolean; header(name: string, value: string): unknown }): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!reply.hasHeader(name)) reply.header(name, value);
  }
}

/**
 * Fastify's clientErrorHandler: what Node's HTTP parser refuses (a malformed request line, header or
 * Content-Length; headers too large; a request that took too long) is answered on the raw socket, like
 * Fastify's default handler, but with the security headers and Cache-Control every other answer has.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'the request took too long to arrive']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'the request headers are larger than this server accepts']
    : [400, 'the request is not valid HTTP'];
  const reason = STATUS_CODES[status]!;
  const body = JSON.stringify({ statusCode: status, code: 'CLIENT_ERROR', error: reason, message });
  this.log.debug({ err }, 'client error');
  if (socket.writable) {
    const headers = { ...SECURITY_HEADERS, 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
    socket.write(`HTTP/1.1 ${status} ${reason}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
