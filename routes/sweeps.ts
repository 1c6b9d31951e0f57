// POST /v1/sweeps: a grid of analyses, always asynchronous (202 + Location of the job).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SweepSpecSchema } from '../src/schemas/sweep.js';
import { ErrorSchema } from '../src/schemas/result.js';
import { SweepJobStates, QueueFullSchema } from '../src/schemas/jobs.js';
import { HEADERS, withHeaders } from '../src/plugins/openapi.js';
import { sendAccepted } from '../src/jobs/http.js';

const sweepRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/sweeps', {
    schema: {
      summary: 'Start a sweep',
      description:
        `Expands the grid into cells (at most GRADLENS_MAX_SWEEP_CELLS), validates and costs every cell (400/422 before anything is queued: each cell within GRADLENS_MAX_ASYNC_ANALYSIS_FLOPS, all cells together within GRADLENS_MAX_SWEEP_FLOPS), stores a sweep job and answers 202 with Location: /v1/jobs/{id}. The cells run as analyses spread over the compute workers (with base.model: analyses of the uploaded model, one row per cell as for networks); progress is cells done / cells. The result is a table with one row per cell, also at GET /v1/jobs/{id}/result.csv.`,
      operationId: 'createSweep',
      tags: ['sweeps'],
      body: SweepSpecSchema,
      response: {
        202: withHeaders({ ...SweepJobStates.pending, description: 'The queued sweep job; poll Location or follow its events.' }, HEADERS.location),
        400: { ...ErrorSchema, description: 'The spec is not valid (FST_ERR_VALIDATION, INVALID_SPEC): the message names the field or the grid path (base.model.id for a model that is not stored; an init path with base.model).' },
        422: { ...ErrorSchema, description: 'LIMIT_EXCEEDED: the spec is over a limit, named with its variable.' },
        503: QueueFullSchema,
      },
    },
  }, async (request, reply) => {
    const { expect, ...spec } = request.body;
    const job = await app.jobs.submit('sweep', spec, expect);
    return sendAccepted(reply, job);
  });
};

export default sweepRoutes;
