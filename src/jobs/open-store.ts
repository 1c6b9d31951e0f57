// Opens the stores the configuration names: PostgreSQL for GRADLENS_STORE=postgres://…, else SQLite at GRADLENS_DB —
// the job store, and the model store beside it (the same database, so that every process that runs jobs reads the
// models they name).
import type { JobsConfig } from '../config.js';
import { PostgresJobStore } from './pg-store.js';
import { SqliteJobStore } from './store.js';
import type { JobStore } from './store-types.js';
import { SqliteModelStore, type ModelStore } from './model-store.js';
import { PgModelStore } from './pg-model-store.js';

/** Which store a process uses, for /health, /ready and /metrics (no password, no path). */
export function storeKind(jobs: Pick<JobsConfig, 'store'>): 'sqlite' | 'postgres' {
  return jobs.store ? 'postgres' : 'sqlite';
}

export async function openStore(jobs: Pick<JobsConfig, 'store' | 'storeSchema' | 'db'>): Promise<JobStore> {
  if (jobs.store) return PostgresJobStore.open({ url: jobs.store, schema: jobs.storeSchema });
  return new SqliteJobStore(jobs.db);
}

/**
 * The model store of this configuration. On PostgreSQL it shares the connections of `jobs` when that is the
 * PostgreSQL job store of the same schema (its migrations made the table; closing it ends them), else opens its own.
 */
export async function openModelStore(config: Pick<JobsConfig, 'store' | 'storeSchema' | 'db'>, jobs?: JobStore): Promise<ModelStore> {
  if (!config.store) return new SqliteModelStore(config.db);
  if (jobs instanceof PostgresJobStore && jobs.schema === config.storeSchema) return new PgModelStore(jobs.pool);
  return PgModelStore.open({ url: config.store, schema: config.storeSchema });
}
