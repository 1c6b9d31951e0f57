// Engine error types: a spec that cannot be honoured, carrying the field it concerns.
/** An invalid or unsupported network/data spec; the HTTP layer turns it into a 400. */
export class SpecError extends Error {
  readonly code = 'INVALID_SPEC';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

/** A spec that is valid but asks for more compute or memory than the configured limits. */
export class LimitError extends Error {
  readonly code = 'LIMIT_EXCEEDED';
  constructor(
    readonly limit: string,
    readonly value: number,
    readonly max: number,
    message: string,
  ) {
    super(message);
    this.name = 'LimitError';
  }
}

/** Work stopped because its job was cancelled; not a failure of the spec or of the engine. */
export class CancelledError extends Error {
  readonly code = 'CANCELED';
  constructor(message = 'the job was cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}
