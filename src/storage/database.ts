import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
  /**
   * Every transaction of the pool's connections is read-only (`default_transaction_read_only`): for
   * a read replica's pool, so that a write sent there by mistake fails even when the URL names a
   * writable server (a misconfiguration, or a standby since promoted).
   */
  readOnly?: boolean;
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
      ...(options.readOnly && { options: '-c default_transaction_read_only=on' }),
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
    if (!(await exists(path.join(dir, 'PG_VERSION')))) await initEmbeddedDatabase(dir);
    pglite = await PGlite.create({ dataDir: dir, startParams: [...EMBEDDED_START_PARAMS] });
  } else {
    pglite = await PGlite.create({ startParams: [...EMBEDDED_START_PARAMS] });
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

/**
 * PGlite's own start parameters plus a smaller buffer pool. PostgreSQL's default 128 MB of
 * shared_buffers lives in the WASM heap, which never shrinks: it held ~130 MiB of the server's
 * idle RSS. The data files are ordinary files, so pages that fall out of the pool are still served
 * from the operating system's cache. See docs/design/embedded-database.md.
 */
export const EMBEDDED_START_PARAMS: readonly string[] = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a new embedded database in `dir` in a short-lived child process. PGlite runs initdb in
 * the calling process, in a second PostgreSQL instance and a copy of its heap: ~900 MiB at peak,
 * most of which the process keeps (WASM memory is never returned). A child gives all of it back
 * when it exits, and the server then opens the existing directory like on any later start.
 */
async function initEmbeddedDatabase(dir: string): Promise<void> {
  const script = `
    const { PGlite } = await import('@electric-sql/pglite');
    const [dataDir, startParams] = [process.argv[1], JSON.parse(process.argv[2])];
    const pglite = await PGlite.create({ dataDir, startParams });
    await pglite.close();
  `;
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', script, path.resolve(dir), JSON.stringify(EMBEDDED_START_PARAMS)],
      // Run from this module's directory, so the child resolves the same PGlite package as this process.
      { cwd: path.dirname(fileURLToPath(import.meta.url)), maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`creating the embedded database in ${dir} failed: ${stderr.trim() || error.message}`));
        else resolve();
      },
    );
  });
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

/**
 * Runs `work` in `db` when it is a transaction already, else in a new one: a repository function
 * whose statements must commit together can also join its caller's transaction (an audit entry).
 */
export function inTransaction<T>(db: Db, work: (tx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

/** Cheap round trip used by /readyz. */
export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
