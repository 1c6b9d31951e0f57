// Opens the job store the configuration names: PostgreSQL for GRADLENS_STORE=postgres://…, else SQLite at GRADLENS_DB.
import type { JobsConfig } from '../config.js';
import { PostgresJobStore } from './pg-store.js';
import { SqliteJobStore } from './store.js';
import type { JobStore } from './store-types.js';

/** Which store a process uses, for /health, /ready and /metrics (no password, no path). */
export function storeKind(jobs: Pick<JobsConfig, 'store'>): 'sqlite' | 'postgres' {
  return jobs.store ? 'postgres' : 'sqlite';
}

export async function openStore(jobs: Pick<JobsConfig, 'store' | 'storeSchema' | 'db'>): Promise<JobStore> {
  if (jobs.store) return PostgresJobStore.open({ url: jobs.store, schema: jobs.storeSchema });
  return new SqliteJobStore(jobs.db);
}
