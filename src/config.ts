// Configuration from environment variables, validated once at start with messages that name the variable.
import { BACKEND_CHOICES, type BackendChoice, type BackendOptions, DEFAULT_LIMITS, type SpecLimits, FLOP_BUDGETS, GPU_POLICIES } from './engine/index.js';
import { availableParallelism, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';

export type Limits = SpecLimits;

export interface Config {
  port: number;
  host: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  backend: BackendChoice;
  /** How the backend loads (the native addon's place and design): passed to the engine, never read by it. */
  backendOptions: BackendOptions;
  limits: Limits;
  bodyLimitBytes: number;
  /** Largest model file POST /v1/models accepts (GRADLENS_MAX_MODEL_BYTES): its own limit, large enough for ResNet-18's 45 MB. */
  modelMaxBytes: number;
  /** How long a SIGTERM waits for running work to be re-queued and streams closed before exiting. */
  shutdownGraceMs: number;
  jobs: JobsConfig;
  security: SecurityConfig;
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
  /**
   * A lone analysis of at least this many forward + backward FLOPs is split across idle workers
   * (its batch in row shards, recombined exactly); 0, the default, never splits: on a 2-core machine
   * the split did not pay (README, performance section), with more idle cores it can.
   */
  shardMinFlops: number;
  /** Which finished jobs the store keeps (src/jobs/retention.ts). */
  retention: RetentionConfig;
  /** GRADLENS_STORE: a postgres:// URL puts the jobs in PostgreSQL (shared by many processes); unset: SQLite at `db`. */
  store?: string;
  /** GRADLENS_STORE_SCHEMA: the PostgreSQL schema of the tables (default public; tests use their own). */
  storeSchema: string;
  /** How the work is distributed across processes (src/jobs/distributed). */
  distributed: DistributedConfig;
}

/** Scale-out settings: all of them mean nothing unless GRADLENS_QUEUE names a Redis server. */
export interface DistributedConfig {
  /** GRADLENS_QUEUE: redis://… switches the in-process queue for BullMQ on that Redis; unset: in-process. */
  queue?: string;
  /** GRADLENS_QUEUE_PREFIX: the prefix of every Redis key and channel (several deployments can share a Redis). */
  prefix: string;
  /** GRADLENS_LOCAL_WORKERS: BullMQ workers inside an API process; 0: the API only enqueues. Default: jobs.workers. */
  localWorkers: number;
  /** GRADLENS_WORKER_CONCURRENCY: jobs one `gradlens worker` process runs at once (default: its cores). */
  workerConcurrency: number;
  /** GRADLENS_JOB_BACKOFF_MS: the first retry delay of a job whose worker died (doubling after). */
  backoffMs: number;
  /**
   * GRADLENS_WORKER_LOCK_MS: how long a worker's claim on a job lasts without renewal; a worker killed with -9 has
   * its job taken over after about this long (BullMQ's stalled-job check runs at the same interval).
   */
  lockMs: number;
  /**
   * GRADLENS_REENQUEUE_MS: how often an API process puts the store's queued jobs into Redis again, so that jobs a Redis
   * restart without persistence lost are run all the same (the store, not Redis, is the record of accepted work).
   */
  reenqueueMs: number;
  /**
   * GRADLENS_WORKER_PORT: where a `gradlens worker` serves /health, /ready and /metrics (and nothing else), for an
   * orchestrator's probes and Prometheus; unset: the worker opens no port. It listens on HOST.
   */
  workerPort?: number;
}

/** Finished jobs are deleted past any of these (0 turns one off); queued and running jobs never are. */
export interface RetentionConfig {
  maxAgeMs: number;
  maxJobs: number;
  /** Bytes of stored job data (specs and results as JSON). */
  maxBytes: number;
  /** Bytes of uploaded model files kept (least recently used deleted beyond it; absent or 0: no limit); models also follow maxAgeMs. */
  maxModelBytes?: number;
  /** How often the limits are applied (and at start). */
  intervalMs: number;
}

function storeUrl(env: Env): string | undefined {
  const raw = env.GRADLENS_STORE;
  if (raw === undefined || raw === '' || raw === 'sqlite') return undefined;
  if (!/^postgres(ql)?:\/\//.test(raw)) throw new ConfigError(`GRADLENS_STORE must be a postgres:// URL (or unset for SQLite at GRADLENS_DB), got "${raw.replace(/:[^:@/]*@/, ':***@')}"`);
  return raw;
}

function distributed(env: Env, workers: number): DistributedConfig {
  const queue = env.GRADLENS_QUEUE || undefined;
  if (queue !== undefined && !/^rediss?:\/\//.test(queue)) throw new ConfigError(`GRADLENS_QUEUE must be a redis:// URL (or unset for the in-process queue), got "${queue.replace(/:[^:@/]*@/, ':***@')}"`);
  const prefix = env.GRADLENS_QUEUE_PREFIX || 'gradlens';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) throw new ConfigError(`GRADLENS_QUEUE_PREFIX must be 1 to 64 letters, digits, '_', '.' or '-', got "${prefix}"`);
  return {
    ...(queue ? { queue } : {}),
    prefix,
    localWorkers: int(env, 'GRADLENS_LOCAL_WORKERS', workers, 0, 256),
    workerConcurrency: int(env, 'GRADLENS_WORKER_CONCURRENCY', availableParallelism(), 1, 256),
    backoffMs: int(env, 'GRADLENS_JOB_BACKOFF_MS', 1000, 0, 600_000),
    lockMs: int(env, 'GRADLENS_WORKER_LOCK_MS', 30_000, 1000, 600_000),
    reenqueueMs: int(env, 'GRADLENS_REENQUEUE_MS', 15_000, 100, 3_600_000),
    ...(env.GRADLENS_WORKER_PORT ? { workerPort: int(env, 'GRADLENS_WORKER_PORT', 0, 0, 65535) } : {}),
  };
}

function schemaName(env: Env): string {
  const raw = env.GRADLENS_STORE_SCHEMA || 'public';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(raw)) throw new ConfigError(`GRADLENS_STORE_SCHEMA must be a plain SQL identifier (letters, digits, '_'), got "${raw}"`);
  return raw;
}

function retention(env: Env): RetentionConfig {
  return {
    maxAgeMs: int(env, 'GRADLENS_RETENTION_MAX_AGE_S', 30 * 86_400, 0, 100 * 365 * 86_400) * 1000,
    maxJobs: int(env, 'GRADLENS_RETENTION_MAX_JOBS', 10_000, 0),
    maxBytes: int(env, 'GRADLENS_RETENTION_MAX_BYTES', 1024 ** 3, 0),
    maxModelBytes: int(env, 'GRADLENS_RETENTION_MAX_MODEL_BYTES', 4 * 1024 ** 3, 0),
    intervalMs: int(env, 'GRADLENS_RETENTION_INTERVAL_MS', 60_000, 100, 86_400_000),
  };
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

/** Who may call, how often, and when to shed load (src/plugins/auth.ts, src/plugins/protection.ts). */
export interface SecurityConfig {
  /** Accepted API keys; empty: no authentication. */
  apiKeys: string[];
  /** Paths (route patterns) that never need a key; `*` matches within a segment, `**` anything. */
  openPaths: string[];
  /** GET requests may carry the key as ?access_token= (EventSource cannot set headers). */
  queryToken: boolean;
  /** Origins allowed by CORS; empty: no CORS headers; `*`: any origin. */
  corsOrigins: string[];
  /** Fastify trustProxy: false, true, a hop count, or addresses/CIDRs. Rate limits key on the client IP. */
  trustProxy: boolean | number | string[];
  rateLimitWindowMs: number;
  /** Requests per window per key (or IP); 0 disables rate limiting. */
  rateLimitMax: number;
  /** Compute-starting requests (POST under /v1, GET /v1/theory) per window per key, on top of rateLimitMax. */
  rateLimitCreateMax: number;
  /** Invalid API keys one client address may send per window before its requests get 429; 0 disables it. */
  authFailureMax: number;
  /** Load shedding thresholds; 0 disables one. The event-loop checks only apply with workers > 0. */
  maxEventLoopDelayMs: number;
  maxEventLoopUtilization: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  pressureSampleMs: number;
  pressureRetryAfterSeconds: number;
}

function num(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a number between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined) return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

// Keys travel in a header and a query string: visible ASCII without separators, and long enough not to guess.
const KEY_PATTERN = /^[\x21-\x7e]{16,256}$/;

function apiKeys(env: Env): string[] {
  const keys = list(env, 'GRADLENS_API_KEYS', []).map((key) => ({ key, from: 'GRADLENS_API_KEYS' }));
  const file = env.GRADLENS_API_KEYS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`GRADLENS_API_KEYS_FILE: cannot read ${file} (${(err as Error).message})`);
    }
    for (const line of text.split(/\r?\n/)) {
      const key = line.trim();
      if (key && !key.startsWith('#')) keys.push({ key, from: 'GRADLENS_API_KEYS_FILE' });
    }
  }
  for (const { key, from } of keys) {
    if (!KEY_PATTERN.test(key) || key.includes(',')) {
      throw new ConfigError(`${from}: every key must be 16 to 256 visible ASCII characters without commas (one key has ${key.length} characters)`);
    }
  }
  return [...new Set(keys.map((k) => k.key))];
}

function trustProxy(env: Env): boolean | number | string[] {
  const raw = (env.GRADLENS_TRUST_PROXY ?? '').trim();
  if (raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The memory this process may use: the cgroup limit in a container, else the machine's. */
function memoryLimit(): number {
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const total = totalmem();
  return constrained && constrained > 0 && constrained < total ? constrained : total;
}

export const DEFAULT_OPEN_PATHS = ['/health', '/ready', '/metrics', '/openapi.json', '/docs', '/docs/**', '/', '/*.html', '/*.js', '/*.css', '/*.txt', '/favicon.ico'];

function security(env: Env): SecurityConfig {
  return {
    apiKeys: apiKeys(env),
    openPaths: list(env, 'GRADLENS_OPEN_PATHS', DEFAULT_OPEN_PATHS),
    queryToken: oneOf(env, 'GRADLENS_QUERY_TOKEN', ['true', 'false'] as const, 'true') === 'true',
    corsOrigins: list(env, 'GRADLENS_CORS_ORIGINS', []),
    trustProxy: trustProxy(env),
    rateLimitWindowMs: int(env, 'GRADLENS_RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
    rateLimitMax: int(env, 'GRADLENS_RATE_LIMIT_MAX', 600, 0),
    rateLimitCreateMax: int(env, 'GRADLENS_RATE_LIMIT_CREATE_MAX', 60, 0),
    authFailureMax: int(env, 'GRADLENS_AUTH_FAILURE_MAX', 20, 0),
    maxEventLoopDelayMs: int(env, 'GRADLENS_MAX_EVENT_LOOP_DELAY_MS', 200, 0),
    maxEventLoopUtilization: num(env, 'GRADLENS_MAX_EVENT_LOOP_UTILIZATION', 0, 0, 1),
    maxHeapUsedBytes: int(env, 'GRADLENS_MAX_HEAP_BYTES', Math.floor(0.9 * getHeapStatistics().heap_size_limit), 0),
    maxRssBytes: int(env, 'GRADLENS_MAX_RSS_BYTES', Math.floor(0.9 * memoryLimit()), 0),
    pressureSampleMs: int(env, 'GRADLENS_PRESSURE_SAMPLE_MS', 1000, 10, 60_000),
    pressureRetryAfterSeconds: int(env, 'GRADLENS_PRESSURE_RETRY_AFTER_S', 10, 1, 3600),
  };
}

export type ConfigOverrides = Partial<Omit<Config, 'limits' | 'jobs' | 'security'>> & { limits?: Partial<Limits>; jobs?: Partial<JobsConfig>; security?: Partial<SecurityConfig> };

/**
 * The environment's say on how backends load, for the engine's initBackend/activateBackend: the server
 * (through loadConfig) and the scripts, benches and tests that start a backend themselves.
 */
export function backendOptions(env: Env = process.env): BackendOptions {
  return {
    disableNative: env.GRADLENS_DISABLE_NATIVE === '1',
    ...(env.GRADLENS_NATIVE_ADDON ? { nativeAddonPath: env.GRADLENS_NATIVE_ADDON } : {}),
    nativeDesign: env.GRADLENS_NATIVE_DESIGN === 'wasm' ? 'wasm' : 'cpu',
    // Validated here (a bad value is refused by name at start), read by the webgpu backend's loader.
    gpu: oneOf(env, 'GRADLENS_GPU', GPU_POLICIES, 'auto'),
    ...(env.GRADLENS_WEBGPU_ADAPTER ? { webgpuAdapter: env.GRADLENS_WEBGPU_ADAPTER } : {}),
  };
}

/** Reads and validates the configuration; `overrides` lets tests set fields directly. */
export function loadConfig(env: Env = process.env, overrides: ConfigOverrides = {}): Config {
  const workers = int(env, 'GRADLENS_WORKERS', availableParallelism(), 0, 256);
  const store = storeUrl(env);
  const config: Config = {
    port: int(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    backend: oneOf(env, 'GRADLENS_BACKEND', BACKEND_CHOICES, 'auto'),
    backendOptions: backendOptions(env),
    bodyLimitBytes: int(env, 'GRADLENS_BODY_LIMIT', 4 * 1024 * 1024, 1024),
    modelMaxBytes: int(env, 'GRADLENS_MAX_MODEL_BYTES', 64 * 1024 * 1024, 1024),
    shutdownGraceMs: int(env, 'GRADLENS_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    limits: {
      maxDepth: int(env, 'GRADLENS_MAX_DEPTH', 200, 1),
      maxWidth: int(env, 'GRADLENS_MAX_WIDTH', 4096, 1),
      maxBatchSize: int(env, 'GRADLENS_MAX_BATCH_SIZE', 4096, 1),
      maxBatches: int(env, 'GRADLENS_MAX_BATCHES', 64, 1),
      maxInlineRows: int(env, 'GRADLENS_MAX_INLINE_ROWS', 10000, 1),
      // One FLOP budget per kind of work (engine/spec/cost.ts): tight for a request that waits, minutes for jobs.
      maxAnalysisFlops: int(env, FLOP_BUDGETS.analysis.variable, DEFAULT_LIMITS.maxAnalysisFlops, 1),
      maxAsyncAnalysisFlops: int(env, FLOP_BUDGETS.asyncAnalysis.variable, DEFAULT_LIMITS.maxAsyncAnalysisFlops, 1),
      maxTrainingFlops: int(env, FLOP_BUDGETS.training.variable, DEFAULT_LIMITS.maxTrainingFlops, 1),
      maxSweepFlops: int(env, FLOP_BUDGETS.sweep.variable, DEFAULT_LIMITS.maxSweepFlops, 1),
      maxParameters: int(env, 'GRADLENS_MAX_PARAMETERS', 20_000_000, 1),
    },
    jobs: {
      workers,
      queueLimit: int(env, 'GRADLENS_QUEUE_LIMIT', 100, 1, 1_000_000),
      db: env.GRADLENS_DB || './data/gradlens.db',
      maxSweepCells: int(env, 'GRADLENS_MAX_SWEEP_CELLS', 64, 1, 10_000),
      timeoutMs: int(env, 'GRADLENS_JOB_TIMEOUT_MS', 600_000, 0),
      maxAttempts: int(env, 'GRADLENS_JOB_MAX_ATTEMPTS', 3, 1, 100),
      shardMinFlops: int(env, 'GRADLENS_SHARD_MIN_FLOPS', 0, 0),
      retention: retention(env),
      ...(store ? { store } : {}),
      storeSchema: schemaName(env),
      distributed: distributed(env, workers),
    },
    security: security(env),
  };
  return {
    ...config,
    ...overrides,
    limits: { ...config.limits, ...overrides.limits },
    jobs: { ...config.jobs, ...overrides.jobs },
    security: { ...config.security, ...overrides.security },
  };
}
