// JSON schemas (TypeBox) of jobs: the job resource, lists, query strings and the responses of the job routes.
import { Type, type Static } from 'typebox';
import { AnalysisResponseSchema, EnvironmentSchema, ErrorSchema } from './result.js';
import { ChecksSchema, ExpectSchema } from './checks.js';

export const JobKindSchema = Type.Union([Type.Literal('analysis'), Type.Literal('training'), Type.Literal('sweep')], {
  description: 'analysis (POST /v1/analyses), training (POST /v1/trainings) or sweep (POST /v1/sweeps).',
});

export const JobStatusSchema = Type.Union(
  [Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('canceled')],
  { description: 'queued (waiting for a worker), running, succeeded (result present), failed (error present) or canceled.' },
);

export const JobErrorSchema = Type.Object(
  {
    code: Type.String({ description: 'INVALID_SPEC, LIMIT_EXCEEDED, TIMEOUT (GRADLENS_JOB_TIMEOUT_MS), WORKER_CRASHED, INTERRUPTED (the server stopped while it ran, GRADLENS_JOB_MAX_ATTEMPTS times), RESULT_NOT_STORED (the result did not fit in the job database), CANCELED or INTERNAL_ERROR.' }),
    message: Type.String({ description: 'What went wrong.' }),
  },
  { description: 'Why the job failed or was canceled.' },
);

const Timestamp = (description: string) => Type.String({ format: 'date-time', description });
const NullableTimestamp = (description: string) => Type.Union([Timestamp(description), Type.Null()], { description });

const JobLinksSchema = Type.Object(
  {
    self: Type.String({ description: 'GET: this job (with ETag; If-None-Match gives 304). DELETE: cancel it.' }),
    events: Type.String({ description: 'GET: server-sent events of this job (state, progress, record, done, failed, canceled).' }),
    csv: Type.Optional(Type.String({ description: 'Sweeps: GET the result table as CSV once succeeded.' })),
  },
  { description: 'Related resources.' },
);

const jobFields = {
  id: Type.String({ description: 'Job identifier (UUID): GET /v1/jobs/{id}.' }),
  progress: Type.Number({ minimum: 0, maximum: 1, description: 'Fraction done, 0..1: training steps done / steps, sweep cells done / cells; 1 once succeeded. Stored at most twice a second; the event stream has every step.' }),
  attempts: Type.Integer({ minimum: 0, description: 'Times the job has been started: more than 1 when a crash interrupted it and it was re-queued at the next start.' }),
  createdAt: Timestamp('When the job was submitted (ISO 8601, UTC).'),
  startedAt: NullableTimestamp('When its current attempt started; null while queued.'),
  finishedAt: NullableTimestamp('When it succeeded, failed or was canceled; null before.'),
  updatedAt: Timestamp('Last change of status or stored progress.'),
  error: Type.Optional(JobErrorSchema),
  links: JobLinksSchema,
};

export const JobSummarySchema = Type.Object(
  { ...jobFields, kind: JobKindSchema, status: JobStatusSchema },
  { description: 'A job without its spec and result (GET /v1/jobs/{id} has them).' },
);

export const JobSchema = Type.Object(
  {
    ...jobFields,
    kind: JobKindSchema,
    status: JobStatusSchema,
    spec: Type.Unknown({ description: 'The work as submitted (without expect); once succeeded, as the engine normalised it with every default filled in (valid to submit again).' }),
    expect: Type.Optional(ExpectSchema),
    result: Type.Optional(
      Type.Unknown({
        description:
          'When succeeded. analysis: the analysis result (as POST /v1/analyses returns it); training: the training result (records, learns, status, …); sweep: { cells, rows } with one row per cell, also as CSV at links.csv. With expect, result.checks (name, expected, actual, passed) and result.passed, for sweeps also result.cells (each cell\'s checks).',
      }),
    ),
    cost: Type.Optional(Type.Unknown({ description: 'When succeeded: the cost estimate checked against the limits before queueing.' })),
    timings: Type.Optional(Type.Unknown({ description: 'When succeeded (analyses, trainings): engine time in milliseconds.' })),
    environment: Type.Optional(EnvironmentSchema),
  },
  { additionalProperties: true, description: 'A job: queued or running work, or its outcome.' },
);

/** POST /v1/analyses (synchronous): the analysis response, which is also the stored job. */
export const AnalysisJobSchema = Type.Object(
  {
    ...AnalysisResponseSchema.properties,
    ...jobFields,
    id: Type.String({ description: 'Job identifier: GET /v1/jobs/{id} returns this same object.' }),
    expect: Type.Optional(ExpectSchema),
    result: Type.Object(
      {
        ...AnalysisResponseSchema.properties.result.properties,
        checks: Type.Optional(ChecksSchema),
        passed: Type.Optional(Type.Boolean({ description: 'Whether every check passed (present when expect was given).' })),
      },
      { additionalProperties: true, description: 'The analysis result; with expect, also checks and passed.' },
    ),
  },
  { additionalProperties: true, description: 'The finished analysis, stored as a job.' },
);

export const JobListSchema = Type.Object(
  {
    jobs: Type.Array(JobSummarySchema, { description: 'Newest first.' }),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next (older) page; null on the last page.' }),
  },
  { description: 'A page of jobs.' },
);

export const JobListQuerySchema = Type.Object(
  {
    kind: Type.Optional(JobKindSchema),
    status: Type.Optional(JobStatusSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Jobs per page (default 20, at most 100).' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page.' })),
  },
  { additionalProperties: false },
);

export const JobParamsSchema = Type.Object({
  id: Type.String({ maxLength: 64, description: 'Job identifier.' }),
});

export const PreferHeaderSchema = Type.Object(
  {
    prefer: Type.Optional(Type.String({ description: 'respond-async: answer 202 with Location and the queued job instead of waiting for the result (RFC 7240).' })),
  },
  { additionalProperties: true },
);

export const IfNoneMatchHeaderSchema = Type.Object(
  {
    'if-none-match': Type.Optional(Type.String({ description: 'The ETag of a previous response: 304 Not Modified when the job has not changed.' })),
  },
  { additionalProperties: true },
);

export const IfMatchHeaderSchema = Type.Object(
  {
    'if-match': Type.Optional(Type.String({ description: 'The ETag of GET /v1/jobs/{id}: act only if the job is still that representation (412 otherwise).' })),
  },
  { additionalProperties: true },
);

export const QueueFullSchema = Type.Object(
  {
    ...ErrorSchema.properties,
    retryAfter: Type.Optional(Type.Integer({ description: 'Seconds to wait before retrying, as in the Retry-After header.' })),
    problem: Type.Optional(Type.String({ description: 'With STORAGE_UNAVAILABLE: full, read_only, io_error or replaced (the file at GRADLENS_DB was deleted or swapped while the server ran).' })),
    jobId: Type.Optional(Type.String({ description: 'With STORAGE_UNAVAILABLE on a synchronous analysis: the job that ran but whose outcome is not stored yet.' })),
  },
  { description: 'QUEUE_FULL: the queue holds GRADLENS_QUEUE_LIMIT jobs (see the Retry-After header); SHUTTING_DOWN: the server is closing; STORAGE_UNAVAILABLE: the job database cannot take writes (disk full, read-only, file replaced), so nothing is acknowledged that could be lost.' },
);

export const NotModifiedSchema = Type.Null({ description: 'Not Modified: the job is unchanged since the ETag given in If-None-Match.' });

