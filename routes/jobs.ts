// Job routes: list, poll (ETag/304), cancel or delete, the sweep CSV, and server-sent events of one job.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorSchema } from '../src/schemas/result.js';
import { IfMatchHeaderSchema, IfNoneMatchHeaderSchema, JobListQuerySchema, JobListSchema, JobParamsSchema, JobSchema, NotModifiedSchema, QueueFullSchema } from '../src/schemas/jobs.js';
import { HEADERS, withHeaders } from '../src/plugins/openapi.js';
import { etagOf, jobSummaryView, jobView, jobViewText, sendTextWithEtag } from '../src/jobs/http.js';
import { EventStream, EventStreams } from '../src/jobs/sse.js';
import { TERMINAL_STATUSES, type JobRecord } from '../src/jobs/store.js';
import type { JobEvent } from '../src/jobs/manager.js';
import { sweepToCsv, type SweepResult } from '../src/engine/index.js';

export interface JobRoutesOptions {
  /** Keep-alive comment interval of event streams. */
  keepAliveMs?: number;
}

const JobNotFoundSchema = { ...ErrorSchema, description: 'JOB_NOT_FOUND: no job has this id (or it was deleted).' };

const notFound = (id: string) => ({ statusCode: 404, code: 'JOB_NOT_FOUND', error: 'Not Found', message: `no job ${id}` });

/** If-Match (RFC 9110 §13.1.1) uses the strong comparison: a weak tag never matches. */
function matchesIfMatch(header: string, etag: string): boolean {
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag;
  });
}

const terminalEvent = (job: JobRecord): 'done' | 'failed' | 'canceled' =>
  job.status === 'succeeded' ? 'done' : job.status === 'failed' ? 'failed' : 'canceled';

const jobRoutes: FastifyPluginAsyncTypebox<JobRoutesOptions> = async (app, opts) => {
  const streams = new EventStreams();
  // Open event streams would keep app.close() (and a graceful shutdown) waiting forever.
  app.addHook('preClose', async () => streams.closeAll());

  app.get('/jobs', {
    schema: {
      summary: 'List jobs',
      operationId: 'listJobs',
      description: 'Jobs of every kind, newest first, without their specs and results; filter by kind and status, page with cursor.',
      tags: ['jobs'],
      querystring: JobListQuerySchema,
      response: { 200: JobListSchema },
    },
  }, async (request) => {
    const { kind, status, cursor } = request.query;
    const page = await app.jobs.list({ limit: request.query.limit ?? 20, ...(kind ? { kind } : {}), ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) });
    return { jobs: page.jobs.map(jobSummaryView), nextCursor: page.nextCursor };
  });

  app.get('/jobs/:id', {
    schema: {
      summary: 'Get a job',
      operationId: 'getJob',
      description: 'Status, progress 0..1, timestamps, and the result when succeeded or the error when failed. Send the ETag back in If-None-Match to get 304 while nothing changed.',
      tags: ['jobs'],
      params: JobParamsSchema,
      headers: IfNoneMatchHeaderSchema,
      response: {
        200: withHeaders({ ...JobSchema, description: 'The job, by kind and status.' }, HEADERS.etag),
        304: withHeaders(NotModifiedSchema, HEADERS.etag),
        404: JobNotFoundSchema,
      },
    },
  }, async (request, reply) => {
    const job = await app.jobs.get(request.params.id);
    if (!job) return reply.code(404).send(notFound(request.params.id));
    return sendTextWithEtag(request, reply, jobViewText(job));
  });

  app.delete('/jobs/:id', {
    schema: {
      summary: 'Cancel or delete a job',
      operationId: 'deleteJob',
      description:
        'On a queued or running job: cancels it (200 with the job, now canceled; it stays listed) and its compute stops at the next training step (or its worker is replaced). '
        + 'On a finished job (succeeded, failed or canceled): deletes it and its result (204); a second DELETE of a running job therefore deletes what the first canceled. '
        + 'Send If-Match with the ETag of GET /v1/jobs/{id} to act only on the representation you saw (412 when the job has changed since, e.g. finished). '
        + 'Finished jobs are also deleted by retention (GRADLENS_RETENTION_MAX_AGE_S, _MAX_JOBS, _MAX_BYTES).',
      tags: ['jobs'],
      params: JobParamsSchema,
      headers: IfMatchHeaderSchema,
      response: {
        200: { ...JobSchema, description: 'The job was queued or running and is now canceled.' },
        204: Type.Null({ description: 'The finished job and its result were deleted.' }),
        404: JobNotFoundSchema,
        409: { ...ErrorSchema, description: 'JOB_FINISHED: the job finished while it was being canceled; nothing was changed (status says how it ended).' },
        412: { ...ErrorSchema, description: 'PRECONDITION_FAILED: the job has changed since the ETag in If-Match.' },
        503: QueueFullSchema,
      },
    },
  }, async (request, reply) => {
    const { id } = request.params;
    const ifMatch = request.headers['if-match'];
    // With If-Match on a job that was unfinished, a DELETE may cancel but never delete a result it has not seen.
    let mayDelete = true;
    if (ifMatch !== undefined) {
      const job = await app.jobs.get(id);
      if (!job) return reply.code(404).send(notFound(id));
      const etag = etagOf(jobViewText(job));
      if (!matchesIfMatch(ifMatch, etag)) {
        return reply.code(412).send({
          statusCode: 412, code: 'PRECONDITION_FAILED', error: 'Precondition Failed',
          message: `job ${id} has changed since the ETag in If-Match (it is ${job.status} now); GET it again and decide`,
        });
      }
      mayDelete = TERMINAL_STATUSES.has(job.status);
    }
    const outcome = await app.jobs.cancelOrDelete(id, { mayDelete });
    if (!outcome) return reply.code(404).send(notFound(id));
    if (outcome.action === 'deleted') return reply.code(204).send(null);
    if (outcome.action === 'unchanged') {
      return reply.code(409).send({
        statusCode: 409, code: 'JOB_FINISHED', error: 'Conflict', status: outcome.job.status,
        message: `job ${id} finished (${outcome.job.status}) while it was being canceled; DELETE it again to delete it`,
      });
    }
    return jobView(outcome.job);
  });

  // A cancel that can never delete: what a button labelled "cancel" must send (DELETE of a job that
  // finished a moment before the click would delete its result).
  app.post('/jobs/:id/cancel', {
    schema: {
      summary: 'Cancel a job (never deletes)',
      operationId: 'cancelJob',
      description: 'On a queued or running job: cancels it, as DELETE does (200 with the job, now canceled). On a finished job: changes nothing and answers 409 with its status, so a late click cannot delete a result.',
      tags: ['jobs'],
      params: JobParamsSchema,
      response: {
        200: { ...JobSchema, description: 'The job was queued or running and is now canceled.' },
        404: JobNotFoundSchema,
        409: { ...ErrorSchema, description: 'JOB_FINISHED: the job had already finished; nothing was changed (status says how it ended).' },
      },
    },
  }, async (request, reply) => {
    const { id } = request.params;
    const outcome = await app.jobs.cancelOrDelete(id, { mayDelete: false });
    if (!outcome) return reply.code(404).send(notFound(id));
    if (outcome.action === 'unchanged') {
      return reply.code(409).send({
        statusCode: 409, code: 'JOB_FINISHED', error: 'Conflict', status: outcome.job.status,
        message: `job ${id} has already finished (${outcome.job.status}); nothing was canceled`,
      });
    }
    return jobView(outcome.job);
  });

  app.get('/jobs/:id/result.csv', {
    schema: {
      summary: 'Sweep result as CSV',
      operationId: 'getSweepCsv',
      description: 'The table of a succeeded sweep, one row per cell.',
      tags: ['jobs'],
      params: JobParamsSchema,
      response: {
        200: { description: 'CSV with a header row.', content: { 'text/csv': { schema: Type.String() } } },
        404: { ...ErrorSchema, description: 'JOB_NOT_FOUND: no such job, or it is not a sweep.' },
        409: { ...ErrorSchema, description: 'NO_RESULT: the sweep has not succeeded (yet).' },
      },
    },
  }, async (request, reply) => {
    const job = await app.jobs.get(request.params.id);
    if (!job || job.kind !== 'sweep') {
      return reply.code(404).send({ ...notFound(request.params.id), message: job ? `job ${job.id} is a ${job.kind}, not a sweep` : `no job ${request.params.id}` });
    }
    if (job.status !== 'succeeded') {
      return reply.code(409).send({ statusCode: 409, code: 'NO_RESULT', error: 'Conflict', message: `sweep ${job.id} is ${job.status}: the table exists once it has succeeded` });
    }
    const { rows, paths } = (job.output as { result: SweepResult }).result;
    const csv = sweepToCsv(rows, paths);
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="sweep-${job.id}.csv"`)
      .send(csv);
  });

  app.get('/jobs/:id/events', {
    schema: {
      summary: 'Job events (SSE)',
      operationId: 'streamJobEvents',
      description:
        'A text/event-stream: first `state` (the job now), then `progress` ({ progress }), `record` ({ record, progress }: each training record as it is taken; records taken before you connected are replayed after state), `state` again when the job starts running, and finally `done` (the job with its result), `failed` (with error) or `canceled`, after which the stream ends. It also ends when the server shuts down.',
      tags: ['jobs'],
      params: JobParamsSchema,
      response: {
        200: { description: 'Server-sent events.', content: { 'text/event-stream': { schema: Type.String() } } },
        404: JobNotFoundSchema,
      },
    },
  }, async (request, reply) => {
    const { id } = request.params;
    // Listen before reading the job, so nothing that happens while the store answers is lost.
    const buffered: JobEvent[] = [];
    let deliver: ((event: JobEvent) => void) | null = null;
    const unsubscribe = app.jobs.subscribe(id, (event) => (deliver ? deliver(event) : buffered.push(event)));
    const job = await app.jobs.get(id);
    if (!job) {
      unsubscribe();
      return reply.code(404).send(notFound(id));
    }
    const stream = new EventStream(request, reply, opts.keepAliveMs);
    streams.add(stream);
    stream.onClose(unsubscribe);
    const forward = (event: JobEvent): void => {
      switch (event.type) {
        case 'state':
          stream.send('state', jobView(event.job));
          return;
        case 'progress':
          stream.send('progress', { progress: event.progress });
          return;
        case 'record':
          stream.send('record', { record: event.record, progress: event.progress });
          return;
        case 'unsaved':
          // The outcome is kept and retried; the stream ends with done/failed once it is stored.
          return;
        default:
          stream.send(event.type, jobView(event.job));
          stream.close();
      }
    };
    stream.send('state', jobView(job));
    if (TERMINAL_STATUSES.has(job.status)) {
      stream.send(terminalEvent(job), jobView(job));
      stream.close();
      return reply;
    }
    const live = await app.jobs.liveState(id);
    const replayed = live?.records.length ?? 0;
    for (const { record, progress } of live?.records ?? []) stream.send('record', { record, progress });
    // Records in the buffer that the replay above had already: by index, as the replay may be read from another process.
    for (const event of buffered) if (!(event.type === 'record' && event.index < replayed)) forward(event);
    deliver = forward;
    return reply;
  });
};

export default jobRoutes;
