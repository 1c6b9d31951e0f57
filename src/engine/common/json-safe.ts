// Makes results JSON-safe: NaN and ±Infinity become explicit strings, and their paths are listed.
import { MAX_NON_FINITE_PATHS } from '../../schemas/result.js';

/** How a non-finite number appears in a response: JSON has no NaN or Infinity. */
export type NonFiniteToken = 'NaN' | 'Infinity' | '-Infinity';

export function nonFiniteToken(x: number): NonFiniteToken {
  if (Number.isNaN(x)) return 'NaN';
  return x > 0 ? 'Infinity' : '-Infinity';
}

/**
 * Returns a deep copy in which every non-finite number is replaced by "NaN", "Infinity" or
 * "-Infinity", and the JSON paths (e.g. `layers[3].weightGradNorm`) of those values.
 */
export function encodeNonFinite<T>(value: T, prefix = ''): { value: unknown; paths: string[] } {
  const paths: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'number') {
      if (Number.isFinite(v)) return v;
      paths.push(path);
      return nonFiniteToken(v);
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) {
        if (item !== undefined) out[k] = walk(item, path ? `${path}.${k}` : k);
      }
      return out;
    }
    return v;
  };
  return { value: walk(value, prefix), paths };
}

export interface NonFiniteSummary {
  count: number;
  paths: string[];
  /** Whether paths lists fewer than count (the first MAX_NON_FINITE_PATHS only). */
  truncated: boolean;
}

export function nonFiniteSummary(paths: string[]): NonFiniteSummary {
  return { count: paths.length, paths: paths.slice(0, MAX_NON_FINITE_PATHS), truncated: paths.length > MAX_NON_FINITE_PATHS };
}
