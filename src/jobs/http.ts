// HTTP views of jobs: the public representation, strong ETags with 304, and the Prefer: respond-async test.
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import type { JobRecord, JobSummary } from './store.js';
import type { JobSchema, JobSummarySchema } from '../schemas/jobs.js';

export type JobView = Static<typeof JobSchema>;
export type JobSummaryView = Static<typeof JobSummarySchema>;

export const jobPath = (id: string): string => `/v1/jobs/${id}`;

function links(job: JobSummary): JobSummaryView['links'] {
  return {
    self: jobPath(job.id),
    events: `${jobPath(job.id)}/events`,
    ...(job.kind === 'sweep' ? { csv: `${jobPath(job.id)}/result.csv` } : {}),
  };
}

/** A list entry: the job without its spec and result (which can be large). */
export function jobSummaryView(job: JobSummary): JobSummaryView {
  return {
    id: job.id,
    kind: job.kind,
    status: job.status,
    progress: job.progress,
    attempts: job.attempts,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    updatedAt: job.updatedAt,
    ...(job.error ? { error: job.error } : {}),
    links: links(job),
  };
}

/**
 * The full job: summary fields, the spec (as submitted; once succeeded, as the engine normalised it,
 * every default filled in), expect, and when succeeded the engine output's fields (result, cost,
 * timings, environment). A synchronous analysis response is this same object.
 */
export function jobView(job: JobRecord): JobView {
  const { spec, ...output } = (job.output ?? {}) as Record<string, unknown>;
  return {
    ...jobSummaryView(job),
    spec: spec ?? job.spec,
    ...(job.expect !== null && job.expect !== undefined ? { expect: job.expect } : {}),
    ...output,
  } as JobView;
}

/**
 * jobView as JSON text, embedding the stored output text as it is (the worker encoded it once): the summary,
 * expect, then the output's fields (spec first). The same object as JSON.stringify(jobView(job)), field order
 * aside; a record without stored output text is encoded from jobView.
 */
export function jobViewText(job: JobRecord): string {
  const output = job.outputJson;
  if (!output || !output.startsWith('{"spec":')) return JSON.stringify(jobView(job));
  const head = JSON.stringify({
    ...jobSummaryView(job),
    ...(job.expect !== null && job.expect !== undefined ? { expect: job.expect } : {}),
  });
  return `${head.slice(0, -1)},${output.slice(1)}`;
}

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Sends JSON text as it is: with a JSON content type Fastify writes a string payload without serialising it.
 * The route's response schema still describes (and documents) the body; responses are not serialised by it.
 */
export function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.header('content-type', JSON_CONTENT_TYPE).send(text);
}

export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === bare;
  });
}

/** Sends a JSON body with a strong ETag, or 304 when the client already has this representation. */
export function sendWithEtag(request: FastifyRequest, reply: FastifyReply, body: unknown, status = 200): FastifyReply {
  return sendTextWithEtag(request, reply, JSON.stringify(body), status);
}

/** sendWithEtag for a body that is JSON text already (jobViewText): sent as it is, not serialised again. */
export function sendTextWithEtag(request: FastifyRequest, reply: FastifyReply, text: string, status = 200): FastifyReply {
  const etag = etagOf(text);
  reply.header('etag', etag).header('cache-control', 'no-cache');
  if (status === 200 && matchesIfNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
  return sendJsonText(reply.code(status), text);
}

/** RFC 7240: `Prefer: respond-async` (among other preferences, any case). */
export function prefersAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  const values = Array.isArray(prefer) ? prefer : prefer ? [prefer] : [];
  return values.some((v) => v.split(',').some((p) => p.trim().split(';')[0]!.trim().toLowerCase() === 'respond-async'));
}

/** 202 Accepted with Location, the shape of every async submission. */
export function sendAccepted(reply: FastifyReply, job: JobRecord, preferenceApplied = false): FastifyReply {
  reply.code(202).header('location', jobPath(job.id));
  if (preferenceApplied) reply.header('preference-applied', 'respond-async');
  return reply.send(jobView(job));
}
