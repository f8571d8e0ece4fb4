import fs from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { usePreparedStatements } from './prepared.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface DatabaseHandle {
  db: Db;
  /** `embedded` (PGlite) or `postgres`; features such as SQL access need the latter. */
  kind: 'embedded' | 'postgres';
  close(): Promise<void>;
}

// int8 (COUNT(*), bigint columns) arrives as a string from node-postgres; every value we keep in
// int8 fits in a double, and PGlite already returns numbers, so both backends agree.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface OpenDatabaseOptions {
  databaseUrl?: string | undefined;
  /** Directory of the embedded database; `undefined` keeps it in memory (tests). */
  dataDir?: string | undefined;
  poolSize?: number;
  /** Told when a pooled connection fails (a restart, a terminated backend); the pool replaces it. */
  onConnectionError?: (error: Error) => void;
}

/** How long a request waits for a connection before it is answered 503 (the database is away). */
const CONNECT_TIMEOUT_MS = 5_000;

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    });
    const connectionFailed = (error: Error) => options.onConnectionError?.(error);
    // A connection that fails must never crash the process. pg-pool listens for errors only on
    // idle clients; a checked-out client that loses its connection (pg_terminate_backend, a
    // restart) emits 'error' with no listener, which Node turns into an uncaught exception. The
    // query in flight fails on its own (answered 503), and the pool drops the client on release
    // because it is no longer queryable.
    pool.on('error', connectionFailed);
    pool.on('connect', (client) => {
      client.on('error', connectionFailed);
      usePreparedStatements(client);
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let pglite: PGlite;
  if (options.dataDir) {
    const dir = path.join(options.dataDir, 'pglite');
    await fs.mkdir(dir, { recursive: true });
    pglite = await PGlite.create(dir);
  } else {
    pglite = await PGlite.create();
  }
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  embedded.set(db, pglite);
  const close = async () => {
    await db.destroy();
    // Kysely only closes a driver it has used: a handle closed before its first query would leave
    // PGlite open (holding the data directory and keeping the process alive).
    if (!pglite.closed) await pglite.close();
  };
  return { db, kind: 'embedded', close };
}

/** The PGlite instance behind each embedded Db, for what Kysely does not cover (LISTEN). */
const embedded = new WeakMap<Db, PGlite>();

/**
 * LISTEN on the embedded database: `handler` hears every `pg_notify(channel, …)` once the
 * transaction that sent it commits, as on PostgreSQL. Answers how to stop listening, or undefined
 * when `db` is not embedded (PostgreSQL notifications need a connection of their own:
 * storage/invalidations.ts).
 */
export async function embeddedListen(
  db: Db,
  channel: string,
  handler: (payload: string) => void,
): Promise<(() => Promise<void>) | undefined> {
  const pglite = embedded.get(db);
  if (!pglite) return undefined;
  const unlisten = await pglite.listen(channel, handler);
  return () => unlisten();
}

/** Cheap round trip used by /readyz. */
export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
