// POST /v1/trainings: a training run, always asynchronous (202 + Location of the job).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { TrainingRequestSchema } from '../src/schemas/model-training.js';
import { ErrorSchema } from '../src/schemas/result.js';
import { ModelTrainingJobStates, TrainingJobStates, QueueFullSchema } from '../src/schemas/jobs.js';
import { HEADERS, withHeaders } from '../src/plugins/openapi.js';
import { sendAccepted } from '../src/jobs/http.js';

const trainingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/trainings', {
    schema: {
      summary: 'Start a training run',
      description:
        'Validates and costs the spec (400, or 422 when its estimated FLOPs exceed GRADLENS_MAX_TRAINING_FLOPS, before anything is queued), stores a training job and answers 202 with Location: /v1/jobs/{id}. Poll the job or follow GET /v1/jobs/{id}/events for records as they are taken; the result says whether the network learns, stalls or diverges. With model ({"id"} of POST /v1/models) in place of network: the uploaded model\'s own parameters are trained on one batch in its input layout, and each record names every parameter by its ONNX initializer name (ModelTrainingResult).',
      operationId: 'createTraining',
      tags: ['trainings'],
      body: TrainingRequestSchema,
      response: {
        202: withHeaders(
          Type.Union([TrainingJobStates.pending, ModelTrainingJobStates.pending], { title: 'PendingTrainingJobOfAnyKind', description: 'The queued training job; poll Location or follow its events.' }),
          HEADERS.location,
        ),
        400: { ...ErrorSchema, description: 'The spec is not valid (FST_ERR_VALIDATION, INVALID_SPEC): the message names the field (model.id for a model that is not stored; model with network is refused).' },
        422: { ...ErrorSchema, description: 'LIMIT_EXCEEDED: the spec is over a limit, named with its variable.' },
        503: QueueFullSchema,
      },
    },
  }, async (request, reply) => {
    const { expect, ...spec } = request.body;
    const job = await app.jobs.submit('training', spec, expect);
    return sendAccepted(reply, job);
  });
};

export default trainingRoutes;
