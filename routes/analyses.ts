// POST /v1/analyses: one gradient-flow analysis of a network spec, run on a worker and stored as a job.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { AnalysisRequestSchema } from '../src/schemas/checks.js';
import { ErrorSchema } from '../src/schemas/result.js';
import { AnalysisJobSchema, PendingAnalysisJobSchema, PreferHeaderSchema, QueueFullSchema } from '../src/schemas/jobs.js';
import { HEADERS, withHeaders } from '../src/plugins/openapi.js';
import { TEXTBOOK_CHAIN_EXAMPLE } from '../src/schemas/examples.js';
import { jobPath, jobViewText, prefersAsync, sendAccepted, sendJsonText } from '../src/jobs/http.js';
import type { JobRecord } from '../src/jobs/store.js';
import { capEcho } from '../src/engine/index.js';

/** HTTP status of a failed job's code; what is not listed is the server's fault (500). */
const STATUS_OF_CODE: Record<string, [number, string]> = {
  INVALID_SPEC: [400, 'Bad Request'],
  LIMIT_EXCEEDED: [422, 'Unprocessable Entity'],
  // The analysis ran past GRADLENS_JOB_TIMEOUT_MS: the server gave up on its own work, as a gateway would.
  TIMEOUT: [504, 'Gateway Timeout'],
  RESULT_NOT_STORED: [507, 'Insufficient Storage'],
};

/** A synchronous analysis that did not succeed: the status a direct engine call would have given. */
function sendUnsuccessful(reply: FastifyReply, job: JobRecord): FastifyReply {
  const error = job.error ?? { code: 'INTERNAL_ERROR', message: 'the analysis failed' };
  const [status, reason] = job.status === 'canceled' ? [409, 'Conflict'] : STATUS_OF_CODE[error.code] ?? [500, 'Internal Server Error'];
  return reply.code(status).header('location', jobPath(job.id)).send({
    statusCode: status, code: error.code, error: reason, message: capEcho(error.message), jobId: job.id,
    ...(error.code === 'TIMEOUT' ? { limit: 'GRADLENS_JOB_TIMEOUT_MS' } : {}),
  });
}

const analysisRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/analyses', {
    schema: {
      summary: 'Analyse gradient flow',
      operationId: 'createAnalysis',
      description:
        'With network: builds the network, draws its weights from the seed, runs data.batches real minibatches forward and backward with tfjs autodiff and returns per-layer gradient statistics, ordered from the input side to the output layer. Limits (depth, width, batch, estimated FLOPs) are checked before any compute (422 naming the variable): the estimated FLOPs, what-if runs included, against GRADLENS_MAX_ANALYSIS_FLOPS when the request waits, against GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS with Prefer: respond-async. The analysis runs on a compute worker and is stored as a job: its id is retrievable at GET /v1/jobs/{id}. By default the request waits for the result (200); with the header Prefer: respond-async it answers 202 with Location and the queued job. With model ({"id"} of POST /v1/models) in place of network: the uploaded model runs as it is, on one batch of data in its own input layout, and every parameter is reported under its ONNX initializer name (ModelAnalysisResult).',
      tags: ['analyses'],
      headers: PreferHeaderSchema,
      body: { ...AnalysisRequestSchema, examples: [TEXTBOOK_CHAIN_EXAMPLE] },
      response: {
        200: withHeaders({ ...AnalysisJobSchema, description: 'The analysis succeeded: the stored job with its result.' }, HEADERS.contentLocation),
        202: withHeaders({ ...PendingAnalysisJobSchema, description: 'Prefer: respond-async: the queued job.' }, HEADERS.location, HEADERS.preferenceApplied),
        400: { ...ErrorSchema, description: 'The spec is not valid (FST_ERR_VALIDATION, INVALID_SPEC): the message names the field (model.id for a model that is not stored; model with network is refused).' },
        409: withHeaders({ ...ErrorSchema, description: 'CANCELED: the analysis was canceled while the request waited (Location: the job).' }, HEADERS.location),
        422: { ...ErrorSchema, description: 'LIMIT_EXCEEDED: the spec is over a limit (depth, width, batch, FLOPs), named with its variable.' },
        503: QueueFullSchema,
        504: withHeaders({ ...ErrorSchema, description: 'TIMEOUT: the analysis ran longer than GRADLENS_JOB_TIMEOUT_MS (named in limit); the job is stored as failed.' }, HEADERS.location),
        507: withHeaders({ ...ErrorSchema, description: 'RESULT_NOT_STORED: the analysis ran but its result does not fit in the job database.' }, HEADERS.location),
      },
    },
  }, async (request, reply) => {
    const { expect, ...spec } = request.body;
    const async = prefersAsync(request);
    // Validated, normalised and costed once (jobs/kinds.ts), against the synchronous budget too when it waits.
    const job = await app.jobs.submit('analysis', spec, expect, { synchronous: !async });
    if (async) return sendAccepted(reply, job, true);
    const done = await app.jobs.wait(job.id);
    if (done.status !== 'succeeded') return sendUnsuccessful(reply, done);
    // The stored text as it is: the result was encoded once, on the worker (a JSON content type: sent unserialised).
    return sendJsonText(reply.header('content-location', jobPath(done.id)), jobViewText(done));
  });
};

export default analysisRoutes;
