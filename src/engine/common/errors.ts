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
    /** The environment variable that sets the limit, when there is one. */
    readonly variable?: string,
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

/** Error messages and fields often quote what the client sent: capped, so a 3 MB value is never sent back. */
export const MAX_ECHOED_MESSAGE = 1000;
export const MAX_ECHOED_FIELD = 200;

export function capEcho(text: string, max = MAX_ECHOED_MESSAGE): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters in all)`;
}

/** A value quoted in a message: JSON, at most `max` characters of it. */
export function quote(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value); // too deep to serialise
  }
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
