// JSON schemas (TypeBox) of a sweep: a base analysis spec, a grid over spec paths, and the resulting table.
import { Type, type Static } from 'typebox';
import { AnalysisSpecSchema } from './spec.js';
import { ModelAnalysisSpecSchema } from './model-analysis.js';
import { ExpectSchema, ChecksSchema, CheckSchema } from './checks.js';
import { Num } from './result.js';
import { VerdictSchema } from './vocabulary.js';

export const SweepSpecSchema = Type.Object(
  {
    base: Type.Union([AnalysisSpecSchema, ModelAnalysisSpecSchema], {
      description: 'The analysis every cell starts from: of a network spec, or of an uploaded model (model: {"id"}, ModelAnalysisSpec). With model the grid varies seed, data, loss, mode and thresholds (e.g. "loss", "data.batchSize", "data.source"); an init path is refused (400): the model\'s parameters are its own, gradlens does not re-initialise imported parameters.',
    }),
    grid: Type.Record(
      Type.String(),
      Type.Array(Type.Unknown(), { minItems: 1, description: 'The values this path takes, in order.' }),
      {
        minProperties: 1,
        description:
          'Spec paths (dot-separated, under seed, network, data, loss or thresholds, e.g. "network.activation", "network.init.weights", "network.init.weights.name", "network.depth", "network.residual.every", "seed") mapped to the values to try. Cells are the cartesian product in row-major order: the first path varies slowest, the last fastest (like nested loops in the grid\'s key order). Each value is set into a copy of base, creating missing objects on the way (a name-only string such as "init.weights": "he_normal" is read as { name: "he_normal" }); paths may not overlap. Every cell is validated and costed before any compute; an error names the grid path and value index, e.g. grid["network.activation"][2].',
      },
    ),
    expect: Type.Optional(ExpectSchema),
  },
  { additionalProperties: false, title: 'SweepSpec', description: 'A sweep: one analysis per cell of the grid.' },
);

export type SweepSpecInput = Static<typeof SweepSpecSchema>;

const NullableNum = (description: string) => Type.Union([Num(description), Type.Null()], { description });

export const SweepRowSchema = Type.Object(
  {
    index: Type.Integer({ description: 'Cell index in row-major order.' }),
    values: Type.Record(Type.String(), Type.Unknown(), { description: 'The grid value of each path in this cell.' }),
    verdict: Type.Union([VerdictSchema, Type.Null()], { description: 'summary.verdict of the cell\'s analysis, or null when the analysis gives none.' }),
    firstToLastRatio: Num('summary.firstToLastRatio.'),
    backpropFirstToLastRatio: Num('summary.backpropFirstToLastRatio.'),
    weightGradLogSlope: NullableNum('summary.weightGradLogSlope.slope, or null without a fit.'),
    backpropLogSlope: NullableNum('summary.backpropLogSlope.slope, or null without a fit.'),
    loss: Num('Loss at initialisation.'),
    nonFinite: Type.Integer({ description: 'Non-finite values in the cell\'s analysis result.' }),
    maxDeadFraction: NullableNum('Largest deadFraction of any layer.'),
    maxSaturatedFraction: NullableNum('Largest saturatedFraction of any layer.'),
    passed: Type.Optional(Type.Boolean({ description: 'Whether the cell passes every expectation (present when expect was given).' })),
  },
  { additionalProperties: false, title: 'SweepRow', description: 'One cell of the sweep table.' },
);

export const SweepResultSchema = Type.Object(
  {
    paths: Type.Array(Type.String(), { description: 'The grid paths, in the grid\'s order (the CSV\'s value columns).' }),
    cellCount: Type.Integer({ description: 'Number of cells.' }),
    rows: Type.Array(SweepRowSchema, { description: 'One row per cell, in cell order. GET /v1/jobs/{id}/result.csv has the same table as CSV.' }),
    checks: Type.Optional(ChecksSchema),
    passed: Type.Optional(Type.Boolean({ description: 'Whether every cell passes every check (present when expect was given).' })),
    cells: Type.Optional(
      Type.Array(
        Type.Object({
          index: Type.Integer({ description: 'Cell index.' }),
          passed: Type.Boolean({ description: 'Whether this cell passes every check.' }),
          checks: Type.Array(CheckSchema, { description: 'This cell\'s checks, one per field of expect.' }),
        }, { additionalProperties: false, title: 'SweepCellChecks', description: 'One cell\'s checks.' }),
        { description: 'Each cell\'s own checks (present when expect was given); the overall checks above pass when every cell passes.' },
      ),
    ),
  },
  { additionalProperties: false, title: 'SweepResult', description: 'The sweep table.' },
);

export type SweepResultBody = Static<typeof SweepResultSchema>;
