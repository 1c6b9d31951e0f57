// The contract check of the test apps: an onSend hook that validates every real response body against the
// schema its route declares for that status (ajv), and turns a mismatch into a 500 CONTRACT_VIOLATION.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface ContractViolation {
  route: string;
  status: number;
  errors: string;
}

/** Every violation any contract-checked app saw in this test file (tests assert it stays empty). */
export const violations: ContractViolation[] = [];

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true, validateFormats: true }));
const compiled = new WeakMap<object, ValidateFunction>();

function validatorOf(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

type ResponseSchemas = Record<string, { content?: unknown; type?: unknown }>;

/** The declared schema of a status, or a reason why there is none. */
function declared(request: FastifyRequest, status: number): { schema: ResponseSchemas[string] } | { missing: string } | null {
  const response = (request.routeOptions.schema as { response?: ResponseSchemas } | undefined)?.response;
  if (!response) return null; // a route without response schemas (404 handler, static files)
  const schema = response[String(status)] ?? response[`${String(status)[0]}xx`] ?? response.default;
  return schema ? { schema } : { missing: `status ${status} is not declared (declared: ${Object.keys(response).join(', ')})` };
}

/** Checks one response; returns what is wrong, or null. */
export function checkResponse(request: FastifyRequest, reply: FastifyReply, payload: unknown): string | null {
  const found = declared(request, reply.statusCode);
  if (!found) return null;
  if ('missing' in found) return found.missing;
  const { schema } = found;
  // Non-JSON bodies (CSV, metrics, event streams) are declared by media type, with no JSON schema.
  if (schema.content !== undefined) return null;
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : null;
  if (text === null) return payload === undefined || payload === null ? (schema.type === 'null' ? null : 'empty body') : null;
  if (text === '') return schema.type === 'null' ? null : 'empty body';
  const type = String(reply.getHeader('content-type') ?? '');
  if (!type.includes('json')) return `content-type ${type} is not JSON`;
  const validate = validatorOf(schema);
  if (validate(JSON.parse(text))) return null;
  return ajv.errorsText(validate.errors, { separator: '; ' });
}

/** Adds the contract hook to a built (not yet ready) app. */
export function enforceContract(app: FastifyInstance): FastifyInstance {
  app.addHook('onSend', async (request, reply, payload) => {
    const errors = checkResponse(request, reply, payload);
    if (errors === null) return payload;
    const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
    violations.push({ route, status: reply.statusCode, errors });
    const status = reply.statusCode;
    reply.code(500).header('content-type', 'application/json; charset=utf-8');
    return JSON.stringify({ statusCode: 500, code: 'CONTRACT_VIOLATION', error: 'Internal Server Error', message: `${route} ${status}: ${errors}` });
  });
  return app;
}
