import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { type DatabaseHandle, type Db, openDatabase } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/modules.js';

/**
 * The database backends every database suite runs on: always the embedded PGlite, and
 * a real PostgreSQL when TEST_DATABASE_URL is set. Each suite gets a database of its own (a fresh
 * PGlite, or a throwaway `sc_test_…` database created on that server and dropped afterwards), so
 * test files stay isolated and can run in parallel.
 *
 *   describe.each(backends)('users on $name', (backend) => {
 *     const database = useDatabase(backend);
 *     it('…', async () => { await database.db.selectFrom('users')… });
 *   });
 */

export type BackendName = 'pglite' | 'postgres';

export const TEST_DATABASE_URL: string | undefined = process.env.TEST_DATABASE_URL || undefined;

export interface TestDatabase {
  backend: BackendName;
  handle: DatabaseHandle;
  db: Db;
  /** The connection URL of the throwaway database (postgres only). */
  databaseUrl: string | undefined;
  /** Closes the connection and drops the throwaway database. */
  close(): Promise<void>;
}

export interface Backend {
  name: BackendName;
  /** A fresh, migrated database. */
  open(): Promise<TestDatabase>;
}

/** A short-lived superuser connection to the machine's PostgreSQL (creating and dropping databases and roles). */
export async function withAdmin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export interface ThrowawayDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** CREATE DATABASE sc_test_<random> on the TEST_DATABASE_URL server (empty, not migrated). */
export async function createThrowawayDatabase(): Promise<ThrowawayDatabase> {
  const name = `sc_test_${randomBytes(8).toString('hex')}`;
  await withAdmin((client) => client.query(`create database ${name}`));
  const url = new URL(TEST_DATABASE_URL!);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop: () =>
      (dropped ??= (async () => {
        const logins = await sqlAccessLogins(url.toString());
        await withAdmin(async (client) => {
          await client.query(`drop database if exists ${name} with (force)`);
          // Roles are cluster-wide: the SQL-access logins of this database go with it.
          for (const login of logins) await client.query(`drop role if exists "${login.replaceAll('"', '""')}"`);
        });
      })()),
  };
}

/** The SQL-access logins a database made (none if it was never migrated that far). */
async function sqlAccessLogins(databaseUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ role_name: string }>('select role_name from sql_access_logins');
    return rows.map((row) => row.role_name);
  } catch {
    return [];
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A new data directory holding an empty, initialised embedded database (migrated when asked): a
 * copy of the one global-setup.ts made (much faster than PGlite's own initdb), or just an empty
 * directory when running without it. Removed by `remove()`.
 */
export async function freshDataDir(options: { migrated?: boolean } = {}): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sensorcloud-test-'));
  const template = inject(options.migrated ? 'pgliteMigratedTemplate' : 'pgliteTemplate');
  if (template) await fs.cp(template, dir, { recursive: true });
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

async function openPglite(): Promise<TestDatabase> {
  const data = await freshDataDir({ migrated: true });
  try {
    const handle = await openDatabase({ dataDir: data.dir });
    await migrateToLatest(handle.db, allMigrations());
    return {
      backend: 'pglite',
      handle,
      db: handle.db,
      databaseUrl: undefined,
      close: async () => {
        await handle.close();
        await data.remove();
      },
    };
  } catch (error) {
    await data.remove();
    throw error;
  }
}

async function openPostgres(): Promise<TestDatabase> {
  const throwaway = await createThrowawayDatabase();
  try {
    const handle = await openDatabase({ databaseUrl: throwaway.url, poolSize: 4 });
    await migrateToLatest(handle.db, allMigrations());
    return {
      backend: 'postgres',
      handle,
      db: handle.db,
      databaseUrl: throwaway.url,
      close: async () => {
        await handle.close();
        await throwaway.drop();
      },
    };
  } catch (error) {
    await throwaway.drop();
    throw error;
  }
}

export const backends: Backend[] = [
  { name: 'pglite', open: openPglite },
  ...(TEST_DATABASE_URL ? [{ name: 'postgres' as const, open: openPostgres }] : []),
];

/** Opens a fresh database for the enclosing describe block and closes (drops) it afterwards. */
export function useDatabase(backend: Backend): { readonly db: Db; readonly current: TestDatabase } {
  let current: TestDatabase | undefined;
  beforeAll(async () => {
    current = await backend.open();
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  const get = (): TestDatabase => {
    if (!current) throw new Error(`the ${backend.name} test database is not open (use it inside a test or hook)`);
    return current;
  };
  return {
    get db() {
      return get().db;
    },
    get current() {
      return get();
    },
  };
}

const MIGRATION_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);

/** Names of every application table (the migrator's bookkeeping excluded). */
export async function tableNames(db: Db): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'
    order by table_name`.execute(db);
  return rows.map((r) => r.table_name).filter((name) => !MIGRATION_TABLES.has(name));
}

/**
 * Empties every application table, so tests in one suite do not see each other's rows. DELETE in
 * foreign-key order rather than TRUNCATE: on PostgreSQL, truncating a few dozen tables costs half a
 * second (new relation files), deleting a handful of rows does not.
 */
export async function truncateAll(db: Db): Promise<void> {
  const names = await tableNames(db);
  const { rows: edges } = await sql<{ child: string; parent: string }>`
    select c.relname as child, p.relname as parent
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid
    join pg_class p on p.oid = k.confrelid
    join pg_namespace n on n.oid = c.relnamespace
    where k.contype = 'f' and n.nspname = 'public' and c.relname <> p.relname`.execute(db);
  // Children before parents: repeatedly take a table no remaining table references.
  const remaining = new Set(names);
  const order: string[] = [];
  while (remaining.size > 0) {
    const next = [...remaining].filter((t) => !edges.some((e) => e.parent === t && e.child !== t && remaining.has(e.child)));
    const batch = next.length > 0 ? next : [...remaining]; // a cycle: fall back to any order
    for (const t of batch) {
      order.push(t);
      remaining.delete(t);
    }
    if (next.length === 0) break;
  }
  await db.transaction().execute(async (tx) => {
    for (const name of order) await sql`delete from ${sql.table(name)}`.execute(tx);
  });
}

function normalize(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  return value;
}

export type DatabaseDump = Record<string, string[]>;

/**
 * Every row of every application table, each as canonical JSON, sorted: two dumps are equal
 * exactly when the database content is (row order and generated ids included).
 */
export async function dumpDatabase(db: Db): Promise<DatabaseDump> {
  const dump: DatabaseDump = {};
  for (const name of await tableNames(db)) {
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
    dump[name] = rows
      .map((row) => JSON.stringify(normalize(Object.fromEntries(Object.entries(row).sort(([a], [b]) => a.localeCompare(b))))))
      .sort();
  }
  return dump;
}

export async function countRows(db: Db, table: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}
