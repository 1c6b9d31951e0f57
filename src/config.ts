// Configuration from environment variables, validated once at start with messages that name the variable.
import { BACKEND_CHOICES, type BackendChoice } from './engine/backend.js';
import type { SpecLimits } from './engine/spec.js';
import { availableParallelism } from 'node:os';

export type Limits = SpecLimits;

export interface Config {
  port: number;
  host: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  backend: BackendChoice;
  limits: Limits;
  bodyLimitBytes: number;
  jobs: JobsConfig;
}

export interface JobsConfig {
  /** Compute workers; 0 runs the engine on the main thread (unit tests, debugging). */
  workers: number;
  /** Jobs that may wait in the queue; beyond it new work gets 503 with Retry-After. */
  queueLimit: number;
  /** SQLite file of the job store, or ':memory:'. */
  db: string;
  /** Most cells one sweep may expand to. */
  maxSweepCells: number;
  /** A running job is failed with code TIMEOUT after this long; 0 disables it. */
  timeoutMs: number;
  /** Starts a job may have; a job interrupted by crashes this often is failed instead of re-queued. */
  maxAttempts: number;
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

export type ConfigOverrides = Partial<Omit<Config, 'limits' | 'jobs'>> & { limits?: Partial<Limits>; jobs?: Partial<JobsConfig> };

/** Reads and validates the configuration; `overrides` lets tests set fields directly. */
export function loadConfig(env: Env = process.env, overrides: ConfigOverrides = {}): Config {
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
    jobs: {
      workers: int(env, 'GRADLENS_WORKERS', availableParallelism(), 0, 256),
      queueLimit: int(env, 'GRADLENS_QUEUE_LIMIT', 100, 1, 1_000_000),
      db: env.GRADLENS_DB || './data/gradlens.db',
      maxSweepCells: int(env, 'GRADLENS_MAX_SWEEP_CELLS', 64, 1, 10_000),
      timeoutMs: int(env, 'GRADLENS_JOB_TIMEOUT_MS', 3_600_000, 0),
      maxAttempts: int(env, 'GRADLENS_JOB_MAX_ATTEMPTS', 3, 1, 100),
    },
  };
  return {
    ...config,
    ...overrides,
    limits: { ...config.limits, ...overrides.limits },
    jobs: { ...config.jobs, ...overrides.jobs },
  };
}
