// JSON schemas (TypeBox) of jobs: the job resource (a union discriminated by kind and status), lists, query
// strings and the responses of the job routes.
import { Type, type Static, type TSchema } from 'typebox';
import { AnalysisCostSchema, AnalysisResultSchema, EnvironmentSchema, ErrorSchema, TimingsSchema } from './result.js';
import { ExpectSchema } from './checks.js';
import { AnalysisSpecSchema } from './spec.js';
import { TrainingResultSchema, TrainingSpecSchema } from './training.js';
import { SweepResultSchema, SweepSpecSchema } from './sweep.js';
import { ModelAnalysisCostSchema, ModelAnalysisResultSchema, ModelAnalysisSpecSchema } from './model-analysis.js';
import { ModelTrainingCostSchema, ModelTrainingResultSchema, ModelTrainingSpecSchema } from './model-training.js';
import { enumOf, JobKindSchema, JobStatusSchema, PENDING_STATUSES, STORAGE_PROBLEMS, UNSUCCESSFUL_STATUSES } from './vocabulary.js';

export { JobKindSchema, JobStatusSchema };

export const JobErrorSchema = Type.Object(
  {
    code: Type.String({ description: 'INVALID_SPEC, LIMIT_EXCEEDED, TIMEOUT (GRADLENS_JOB_TIMEOUT_MS), WORKER_CRASHED, INTERRUPTED (the server stopped while it ran, GRADLENS_JOB_MAX_ATTEMPTS times), RESULT_NOT_STORED (the result did not fit in the job database), CANCELED or INTERNAL_ERROR.' }),
    message: Type.String({ description: 'What went wrong.' }),
  },
  { additionalProperties: false, title: 'JobError', description: 'Why the job failed or was canceled.' },
);

const Timestamp = (description: string) => Type.String({ format: 'date-time', description });
const NullableTimestamp = (description: string) => Type.Union([Timestamp(description), Type.Null()], { description });

const JobLinksSchema = Type.Object(
  {
    self: Type.String({ description: 'GET: this job (with ETag; If-None-Match gives 304). DELETE: cancel it.' }),
    events: Type.String({ description: 'GET: server-sent events of this job (state, progress, record, done, failed, canceled).' }),
    csv: Type.Optional(Type.String({ description: 'Sweeps: GET the result table as CSV once succeeded.' })),
  },
  { additionalProperties: false, title: 'JobLinks', description: 'Related resources.' },
);

const jobFields = {
  id: Type.String({ description: 'Job identifier (UUID): GET /v1/jobs/{id}.' }),
  progress: Type.Number({ minimum: 0, maximum: 1, description: 'Fraction done, 0..1: training steps done / steps, sweep cells done / cells; 1 once succeeded. Stored at most twice a second; the event stream has every step.' }),
  attempts: Type.Integer({ minimum: 0, description: 'Times the job has been started: more than 1 when a crash interrupted it and it was re-queued at the next start.' }),
  createdAt: Timestamp('When the job was submitted (ISO 8601, UTC).'),
  startedAt: NullableTimestamp('When its current attempt started; null while queued.'),
  finishedAt: NullableTimestamp('When it succeeded, failed or was canceled; null before.'),
  updatedAt: Timestamp('Last change of status or stored progress.'),
  links: JobLinksSchema,
};

export const JobSummarySchema = Type.Object(
  { ...jobFields, kind: JobKindSchema, status: JobStatusSchema, error: Type.Optional(JobErrorSchema) },
  { additionalProperties: false, title: 'JobSummary', description: 'A job without its spec and result (GET /v1/jobs/{id} has them).' },
);

const PendingStatusSchema = enumOf(PENDING_STATUSES, 'queued (waiting for a worker) or running: no result yet.');
const UnsuccessfulStatusSchema = enumOf(UNSUCCESSFUL_STATUSES, 'failed or canceled: error says why; no result.');

interface KindShapes<K extends string, S extends TSchema, R extends TSchema, C extends TSchema> {
  kind: K;
  /** Component name stem: Analysis, Training, Sweep. */
  name: string;
  spec: S;
  result: R;
  cost: C;
  resultDescription: string;
}

/** The three states of one kind of job: pending (no result), succeeded (its kind's result), unsuccessful (error). */
function jobStates<K extends string, S extends TSchema, R extends TSchema, C extends TSchema>(k: KindShapes<K, S, R, C>) {
  const kind = Type.Literal(k.kind, { description: `The kind of work: ${k.kind}.` });
  const submitted = {
    spec: { ...k.spec, description: 'The work as submitted (without expect).' } as S,
    expect: Type.Optional(ExpectSchema),
  };
  const pending = Type.Object(
    { ...jobFields, kind, status: PendingStatusSchema, ...submitted },
    { additionalProperties: false, title: `Pending${k.name}Job`, description: `A ${k.kind} job that is queued or running: no result yet.` },
  );
  const succeeded = Type.Object(
    {
      ...jobFields,
      kind,
      status: Type.Literal('succeeded', { description: 'succeeded: result, cost, timings and environment are present.' }),
      spec: { ...k.spec, description: 'The spec as the engine normalised it, every default filled in (valid to submit again).' } as S,
      expect: Type.Optional(ExpectSchema),
      result: { ...k.result, description: k.resultDescription } as R,
      cost: k.cost,
      timings: TimingsSchema,
      environment: EnvironmentSchema,
    },
    { additionalProperties: false, title: `Succeeded${k.name}Job`, description: `A ${k.kind} job that succeeded, with its result.` },
  );
  const unsuccessful = Type.Object(
    { ...jobFields, kind, status: UnsuccessfulStatusSchema, ...submitted, error: JobErrorSchema },
    { additionalProperties: false, title: `Unsuccessful${k.name}Job`, description: `A ${k.kind} job that failed or was canceled: error says why.` },
  );
  return { pending, succeeded, unsuccessful };
}

const costFields = AnalysisCostSchema.properties;

export const TrainingCostSchema = Type.Object(
  {
    parameters: costFields.parameters,
    flopsPerStep: costFields.flopsPerStep,
    flops: Type.Number({ description: 'Estimated FLOPs of the whole training (steps, records and evaluation), checked against GRADLENS_MAX_TRAINING_FLOPS before queueing.' }),
    steps: Type.Integer({ description: 'Optimizer steps.' }),
    records: Type.Integer({ description: 'Records that will be taken.' }),
    evaluationExamples: Type.Integer({ description: 'Examples in the evaluation set.' }),
    includedValues: Type.Optional(Type.Integer({ description: 'With include: the numbers it adds to the result.' })),
  },
  { additionalProperties: false, title: 'TrainingCost', description: 'Cost estimate of a training run.' },
);

export const SweepCostSchema = Type.Object(
  {
    parameters: costFields.parameters,
    flopsPerStep: costFields.flopsPerStep,
    flops: Type.Number({ description: 'Estimated FLOPs of every cell together, checked against GRADLENS_MAX_SWEEP_FLOPS before queueing.' }),
    cells: Type.Integer({ description: 'Cells of the grid.' }),
  },
  { additionalProperties: false, title: 'SweepCost', description: 'Cost estimate of a sweep.' },
);

export const AnalysisJobStates = jobStates({
  kind: 'analysis', name: 'Analysis', spec: AnalysisSpecSchema, result: AnalysisResultSchema, cost: AnalysisCostSchema,
  resultDescription: 'The analysis result; with expect, also checks and passed.',
});
export const ModelAnalysisJobStates = jobStates({
  kind: 'analysis', name: 'ModelAnalysis', spec: ModelAnalysisSpecSchema, result: ModelAnalysisResultSchema, cost: ModelAnalysisCostSchema,
  resultDescription: 'The analysis of an uploaded model; with expect, also checks and passed.',
});
export const TrainingJobStates = jobStates({
  kind: 'training', name: 'Training', spec: TrainingSpecSchema, result: TrainingResultSchema, cost: TrainingCostSchema,
  resultDescription: 'The training result: records (per-step per-layer statistics), learns, status, …; with expect, also checks and passed.',
});
export const ModelTrainingJobStates = jobStates({
  kind: 'training', name: 'ModelTraining', spec: ModelTrainingSpecSchema, result: ModelTrainingResultSchema, cost: ModelTrainingCostSchema,
  resultDescription: 'The training of an uploaded model: records (per-step per-parameter gradient norms under the initializer names), learns, status; with expect, also checks and passed.',
});
export const SweepJobStates = jobStates({
  kind: 'sweep', name: 'Sweep', spec: SweepSpecSchema, result: SweepResultSchema, cost: SweepCostSchema,
  resultDescription: 'The sweep table: one row per cell (also as CSV at links.csv); with expect, also checks, passed and each cell\'s checks.',
});

/** Every state of every kind of job: discriminated by kind, then by status. */
export const JobSchema = Type.Union(
  [
    AnalysisJobStates.pending, AnalysisJobStates.succeeded, AnalysisJobStates.unsuccessful,
    ModelAnalysisJobStates.pending, ModelAnalysisJobStates.succeeded, ModelAnalysisJobStates.unsuccessful,
    TrainingJobStates.pending, TrainingJobStates.succeeded, TrainingJobStates.unsuccessful,
    ModelTrainingJobStates.pending, ModelTrainingJobStates.succeeded, ModelTrainingJobStates.unsuccessful,
    SweepJobStates.pending, SweepJobStates.succeeded, SweepJobStates.unsuccessful,
  ],
  { title: 'Job', description: 'A job: queued or running work (no result), a success (the result of its kind) or a failure (error). Narrow on kind and status.' },
);

/** POST /v1/analyses 200 (synchronous): the succeeded analysis job, of a network or of an uploaded model. */
export const AnalysisJobSchema = Type.Union([AnalysisJobStates.succeeded, ModelAnalysisJobStates.succeeded], { title: 'AnalysisJob' });
/** POST /v1/analyses 202: the queued analysis job. */
export const PendingAnalysisJobSchema = Type.Union([AnalysisJobStates.pending, ModelAnalysisJobStates.pending], { title: 'PendingAnalysisJobOfAnyKind' });

export const JobListSchema = Type.Object(
  {
    jobs: Type.Array(JobSummarySchema, { description: 'Newest first.' }),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next (older) page; null on the last page.' }),
  },
  { additionalProperties: false, title: 'JobList', description: 'A page of jobs.' },
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
    problem: Type.Optional(enumOf(STORAGE_PROBLEMS, 'With STORAGE_UNAVAILABLE: full, read_only, io_error, replaced (the file at GRADLENS_DB was deleted or swapped while the server ran) or unreachable (the PostgreSQL server of GRADLENS_STORE does not answer).')),
    jobId: Type.Optional(Type.String({ description: 'With STORAGE_UNAVAILABLE on a synchronous analysis: the job that ran but whose outcome is not stored yet.' })),
  },
  { title: 'ServiceUnavailable', description: 'QUEUE_FULL: the queue holds GRADLENS_QUEUE_LIMIT jobs (see the Retry-After header); SHUTTING_DOWN: the server is closing; STORAGE_UNAVAILABLE: the job database cannot take writes (disk full, read-only, file replaced, PostgreSQL unreachable), so nothing is acknowledged that could be lost; QUEUE_UNAVAILABLE: the Redis of GRADLENS_QUEUE does not answer.' },
);

export const NotModifiedSchema = Type.Null({ description: 'Not Modified: the job is unchanged since the ETag given in If-None-Match.' });

