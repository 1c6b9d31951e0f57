// Polling for tests: wait until something observable holds, with a deadline that names what was last seen.

/** Calls fn every everyMs until ok(value) holds; fails after timeoutMs with the last value in the message. */
export async function until<T>(fn: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 60_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
