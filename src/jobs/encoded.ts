// A job's output encoded as JSON once, where it was computed (the worker): the store keeps this string and the
// reply embeds it as it is, so a result is never re-serialised or re-parsed on the HTTP thread.

/** The output as its JSON text: a plain object with one field, so it survives the worker's structured clone. */
export interface EncodedOutput {
  readonly json: string;
}

export function encodeOutput(output: unknown): EncodedOutput {
  return { json: JSON.stringify(output) };
}

export function isEncodedOutput(value: unknown): value is EncodedOutput {
  if (value === null || typeof value !== 'object') return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === 'json' && typeof (value as { json: unknown }).json === 'string';
}

/** The JSON text of an output, encoding it only when it is not encoded yet. */
export function outputText(output: unknown): string {
  return isEncodedOutput(output) ? output.json : JSON.stringify(output);
}

/**
 * The encoded output with one more top-level field (e.g. environment), by splicing the text: the output is a
 * JSON object, so its text ends with `}`. The field must not be in the output already.
 */
export function withField(output: EncodedOutput, key: string, value: unknown): EncodedOutput {
  const { json } = output;
  const field = `${JSON.stringify(key)}:${JSON.stringify(value)}`;
  return { json: json === '{}' ? `{${field}}` : `${json.slice(0, -1)},${field}}` };
}
