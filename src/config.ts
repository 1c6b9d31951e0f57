// Configuration from environment variables, validated once at start with messages that name the variable.
import { BACKEND_CHOICES, type BackendChoice } from './engine/backend.js';
import type { SpecLimits } from './engine/spec.js';

export type Limits = SpecLimits;

export interface Config {
  port: number;
  host: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  backend: BackendChoice;
  limits: Limits;
  bodyLimitBytes: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

/** Reads and validates the configuration; `overrides` lets tests set fields directly. */
export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const config: Config = {
    port: int(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    backend: oneOf(env, 'GRADLENS_BACKEND', BACKEND_CHOICES, 'auto'),
    bodyLimitBytes: int(env, 'GRADLENS_BODY_LIMIT', 4 * 1024 * 1024, 1024),
    limits: {
      maxDepth: int(env, 'GRADLENS_MAX_DEPTH', 200, 1),
      maxWidth: int(env, 'GRADLENS_MAX_WIDTH', 4096, 1),
      maxBatchSize: int(env, 'GRADLENS_MAX_BATCH_SIZE', 4096, 1),
      maxBatches: int(env, 'GRADLENS_MAX_BATCHES', 64, 1),
      maxInlineRows: int(env, 'GRADLENS_MAX_INLINE_ROWS', 10000, 1),
      maxAnalysisFlops: int(env, 'GRADLENS_MAX_ANALYSIS_FLOPS', 20e9, 1),
      maxParameters: int(env, 'GRADLENS_MAX_PARAMETERS', 20_000_000, 1),
    },
  };
  return { ...config, ...overrides, limits: { ...config.limits, ...overrides.limits } };
}
