// Store harnesses for the store test suites (the job store's and the model store's): the same tests on SQLite
// (always) and on PostgreSQL (when GRADLENS_TEST_POSTGRES names a server, as .ci/run does), each harness on data of
// its own (a temporary file, a schema gradlens_test_<pid>_<random> dropped afterwards), with raw SQL for checks the
// store itself cannot make.
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SqliteJobStore, type JobStore } from '../../src/jobs/store.js';
import { PostgresJobStore } from '../../src/jobs/pg-store.js';
import { SqliteModelStore, type ModelStore } from '../../src/jobs/model-store.js';
import { PgModelStore } from '../../src/jobs/pg-model-store.js';
import { tempDir } from './jobs.js';

/** postgres://… of the test server, or undefined: then only SQLite runs (the embedded suite needs no PostgreSQL). */
export const TEST_POSTGRES = process.env.GRADLENS_TEST_POSTGRES || undefined;
/** redis://… of the test server, or undefined: the distributed suites run only where it is set (CI sets it). */
export const TEST_REDIS = process.env.GRADLENS_TEST_REDIS || undefined;

export interface StoreHarness {
  name: 'sqlite' | 'postgres';
  /** PostgreSQL: the schema holding this harness's data. */
  schema?: string;
  /** A store on this harness's data; every call opens another one on the same data (a restart). */
  open(): Promise<JobStore>;
  /** Ends a store as a crash would: no state change written, connections simply gone. */
  crash(store: JobStore): Promise<void>;
  /** Raw SQL on the same data, `?` placeholders; the rows. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** SQL that gives the UTF-8 byte length of a text column in this database (the size oracle). */
  byteLength(column: string): string;
  /** The migrations this database records (version, name). */
  migrations: { version: number; name: string }[];
  dispose(): Promise<void>;
}

/** A fresh schema name no other test file or process uses. */
export const testSchema = (): string => `gradlens_test_${process.pid}_${randomBytes(4).toString('hex')}`;

function sqliteHarness(): StoreHarness {
  const tmp = tempDir();
  const path = tmp.db();
  const stores: JobStore[] = [];
  return {
    name: 'sqlite',
    async open() {
      const store = new SqliteJobStore(path);
      stores.push(store);
      return store;
    },
    async crash(store) {
      (store as SqliteJobStore).db.close();
    },
    async sql(text, params = []) {
      const db = new Database(path);
      try {
        const stmt = db.prepare(text);
        return stmt.reader ? (stmt.all(...params) as Record<string, unknown>[]) : (stmt.run(...params), []);
      } finally {
        db.close();
      }
    },
    byteLength: (column) => `length(CAST(${column} AS BLOB))`,
    migrations: [{ version: 1, name: 'jobs' }, { version: 2, name: 'retention' }],
    async dispose() {
      for (const s of stores) await s.close().catch(() => undefined);
      tmp.remove();
    },
  };
}

/** Drops a test schema (and what is in it). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

function postgresHarness(url: string): StoreHarness {
  const schema = testSchema();
  const stores: PostgresJobStore[] = [];
  return {
    name: 'postgres',
    schema,
    async open() {
      const store = await PostgresJobStore.open({ url, schema, poolSize: 3 });
      stores.push(store);
      return store;
    },
    async crash(store) {
      await (store as PostgresJobStore).pool.end();
    },
    async sql(text, params = []) {
      const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        let n = 0;
        return (await client.query(text.replace(/\?/g, () => `$${++n}`), params)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    },
    byteLength: (column) => `octet_length(${column})`,
    migrations: [{ version: 1, name: 'jobs' }, { version: 2, name: 'models' }],
    async dispose() {
      for (const s of stores) await s.close().catch(() => undefined);
      await dropSchema(url, schema);
    },
  };
}

/** One factory per store that can run here: SQLite, and PostgreSQL where GRADLENS_TEST_POSTGRES is set. */
export const STORE_HARNESSES: [string, () => StoreHarness][] = [
  ['sqlite', sqliteHarness],
  ...(TEST_POSTGRES ? [['postgres', () => postgresHarness(TEST_POSTGRES)] as [string, () => StoreHarness]] : []),
];

export interface ModelStoreHarness {
  name: 'sqlite' | 'postgres';
  /** A model store on this harness's data; every call opens another one on the same data (a restart, another process). */
  open(): Promise<ModelStore>;
  /** The job store on the same data (the retention task prunes both). */
  jobs(): Promise<JobStore>;
  /** Raw SQL on the same data, `?` placeholders; the rows. */
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  dispose(): Promise<void>;
}

/** The model stores as the app opens them: SQLite in the job database file, PostgreSQL in the jobs' schema. */
function sqliteModelHarness(): ModelStoreHarness {
  const tmp = tempDir();
  const file = tmp.db();
  const opened: (ModelStore | JobStore)[] = [];
  return {
    name: 'sqlite',
    open: async () => { const s = new SqliteModelStore(file); opened.push(s); return s; },
    jobs: async () => { const s = new SqliteJobStore(file); opened.push(s); return s; },
    async sql(text, params = []) {
      const db = new Database(file);
      try {
        const stmt = db.prepare(text);
        return stmt.reader ? (stmt.all(...params) as Record<string, unknown>[]) : (stmt.run(...params), []);
      } finally {
        db.close();
      }
    },
    async dispose() {
      for (const s of opened) await s.close().catch(() => undefined);
      tmp.remove();
    },
  };
}

function postgresModelHarness(url: string): ModelStoreHarness {
  const jobs = postgresHarness(url);
  const opened: ModelStore[] = [];
  return {
    name: 'postgres',
    open: async () => { const s = await PgModelStore.open({ url, schema: jobs.schema!, poolSize: 3 }); opened.push(s); return s; },
    jobs: () => jobs.open(),
    sql: (text, params) => jobs.sql(text, params),
    async dispose() {
      for (const s of opened) await s.close().catch(() => undefined);
      await jobs.dispose();
    },
  };
}

/** One factory per model store that can run here: SQLite, and PostgreSQL where GRADLENS_TEST_POSTGRES is set. */
export const MODEL_STORE_HARNESSES: [string, () => ModelStoreHarness][] = [
  ['sqlite', sqliteModelHarness],
  ...(TEST_POSTGRES ? [['postgres', () => postgresModelHarness(TEST_POSTGRES)] as [string, () => ModelStoreHarness]] : []),
];
