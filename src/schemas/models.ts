// JSON schemas (TypeBox) of uploaded models: what POST /v1/models answers and GET /v1/models/{id} shows, and
// how an analysis names one (ModelRef) with its loss and mode.
import { Type, type Static } from 'typebox';
import { enumOf, MODEL_FORMATS, MODEL_LOSSES, MODEL_MODES, MODEL_OUTPUT_KINDS } from './vocabulary.js';

const ValueInfoSchema = Type.Object({
  name: Type.String(),
  shape: Type.Union([Type.Array(Type.Union([Type.Integer(), Type.Null()])), Type.Null()], { description: 'Dimensions; null for a symbolic one (a dynamic batch), or for no shape at all.' }),
});

export const ModelSchema = Type.Object(
  {
    id: Type.String(),
    format: enumOf([...MODEL_FORMATS], 'The file format.'),
    bytes: Type.Integer({ description: 'Size of the stored file.' }),
    createdAt: Type.String({ format: 'date-time' }),
    opset: Type.Integer({ description: 'The default-domain ONNX operator set the model imports; 0 for a tfjs LayersModel.' }),
    producer: Type.String({ description: 'producer_name and version from the file (e.g. pytorch 1.13.0); for a tfjs LayersModel, model.json\'s generatedBy (and convertedBy).' }),
    inputs: Type.Array(ValueInfoSchema, { description: 'What the model is fed, in its own layout (NCHW for a PyTorch export).' }),
    outputs: Type.Array(ValueInfoSchema),
    outputKind: enumOf([...MODEL_OUTPUT_KINDS], 'logits, or (log-)probabilities when the graph ends in Softmax (LogSoftmax).'),
    parameters: Type.Array(Type.Object({ name: Type.String({ description: 'The initializer name (PyTorch: the state_dict name); for a tfjs LayersModel the weight\'s name (conv2d/kernel).' }), shape: Type.Array(Type.Integer()) })),
    parameterCount: Type.Integer(),
    layers: Type.Array(Type.Object({
      name: Type.String({ description: 'The node name (PyTorch: module path and op).' }),
      op: Type.String(),
      parameters: Type.Array(Type.String()),
    }), { description: 'Parameterised nodes in graph order.' }),
    batchNormFolded: Type.Boolean({ description: 'No BatchNormalization node and Conv weights named onnx::Conv_*: an eval-mode export folded BatchNorm into the convolutions.' }),
    unsupported: Type.Array(Type.Object({ operator: Type.String(), node: Type.String() }), { description: 'Always empty: a model with an operator gradlens does not execute is refused with 422.' }),
  },
  { title: 'Model', description: 'An uploaded model, as imported.' },
);
export type Model = Static<typeof ModelSchema>;

export const ModelListSchema = Type.Object({ models: Type.Array(ModelSchema) }, { title: 'ModelList' });

export const ModelParamsSchema = Type.Object({ id: Type.String({ maxLength: 64, description: 'Model identifier.' }) });

export const ModelListQuerySchema = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Models listed (newest first; default 20, at most 100).' })) },
  { additionalProperties: false },
);

// How analyses refer to an uploaded model, and the loss and mode they run it with (schemas/model-analysis.ts).
export const ModelRefSchema = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64, description: 'The id POST /v1/models answered.' }) },
  { additionalProperties: false, title: 'ModelRef', description: 'An uploaded model (POST /v1/models), analysed in place of network.' },
);

export const ModelLossSchema = enumOf(MODEL_LOSSES,
  'With model: the loss on the model\'s output, a batch mean. categorical_crossentropy (default) on logits is torch.nn.functional.cross_entropy; a graph that ends in Softmax (LogSoftmax) is read as (log-)probabilities; targets are class indices or distributions. mse is F.mse_loss, targets shaped as the output.');

export const ModelModeSchema = enumOf(MODEL_MODES,
  'With model: train (default) runs BatchNormalization on the batch\'s own statistics, the state gradients are taken in during training; eval on the running statistics stored in the model. Dropout is always off.');

