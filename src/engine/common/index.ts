// Room `common`: what every other room leans on — engine error types, JSON-safety for non-finite numbers,
// the seeded RNG and small statistics helpers. Imports nothing else from the engine.
export { SpecError, LimitError, CancelledError, MAX_ECHOED_MESSAGE, MAX_ECHOED_FIELD, capEcho, quote } from './errors.js';
export { nonFiniteToken, encodeNonFinite, nonFiniteSummary, type NonFiniteToken, type NonFiniteSummary } from './json-safe.js';
export { Rng, deriveSeed } from './random.js';
export { fitLogSlope, spreadOf, mean, type LogSlopeFit, type Spread } from './stats.js';
