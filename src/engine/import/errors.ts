// The importer's errors: a model that uses an operator (or attribute) gradlens cannot execute, and a file
// that is not a readable model. The HTTP layer answers the first with 422 naming operator and node, the
// second with 400/422 naming what is wrong; neither is a crash.
import { capEcho } from '../common/errors.js';

/** A node whose operator, or one of its attributes, the importer does not execute. */
export class UnsupportedOperatorError extends Error {
  readonly code = 'UNSUPPORTED_OPERATOR';
  constructor(
    /** The ONNX operator (op_type, with its domain when not the default one), or the Keras layer class. */
    readonly operator: string,
    /** The node's name (or its first output when unnamed), or the Keras layer's name. */
    readonly node: string,
    detail?: string,
  ) {
    super(capEcho(`operator ${operator} (node ${JSON.stringify(node)}) is not supported${detail ? `: ${detail}` : ''}`));
    this.name = 'UnsupportedOperatorError';
  }
}

/** Bytes that do not decode as a model, or a model that does not hold together (truncated, corrupt, inconsistent). */
export class ModelFormatError extends Error {
  readonly code = 'INVALID_MODEL';
  constructor(
    /** What part of the model is wrong: 'file', 'graph.node[3]', 'initializer conv1.weight', … */
    readonly field: string,
    message: string,
  ) {
    super(capEcho(message));
    this.name = 'ModelFormatError';
  }
}
