import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import type { Config } from '../config/config.js';
import { REDACTED_PATHS, requestSerializer } from '../http/logging.js';
import { allMigrations, provisioningSections } from '../modules.js';
import { applyProvisioningFile } from '../provisioning/provision.js';
import { provisioningContext } from '../provisioning/section.js';
import { setupLinkIfEmpty } from '../setup/setup.service.js';
import { type DatabaseHandle, openDatabase } from '../storage/database.js';
import { migrateToLatest } from '../storage/migrate.js';
import { buildApp } from './app.js';
import type { App } from './context.js';

export interface RunningServer {
  app: App;
  database: DatabaseHandle;
  /** The read replica's pool (DATABASE_REPLICA_URL), when there is one. */
  replica: DatabaseHandle | undefined;
  /** The address actually bound (PORT=0 picks a free port). */
  url: string;
  /**
   * Stops accepting connections, lets in-flight requests finish (for at most the shutdown grace
   * period, after which remaining connections are cut), then closes the database (and the replica's pool).
   */
  close(): Promise<void>;
}

/** How long a log line may wait in the buffer before it is written. */
const LOG_FLUSH_MS = 1000;
/** Lines handed to the destination at once. */
const LOG_BATCH_LINES = 32;

/**
 * The server's pino logger: standard output unless a destination is given (tests). Lines are
 * gathered LOG_BATCH_LINES at a time, then by sonic-boom up to 4 KiB, and written with one
 * synchronous write per 4 KiB; what is pending is written at least every second and at exit, so
 * a crash can lose at most the last second of lines. A write per request line cost 3-7% of a
 * small request's server time in the profiles, and sonic-boom's bookkeeping per line ~2 µs more
 * than one call per batch (bench/micro/request-log.ts). Synchronous, because an asynchronous write
 * still in flight when the process exits lands after the lines flushed at exit (or not at all):
 * the exit test in test/http/logging.test.ts caught exactly that. A 4 KiB write to a file or a
 * pipe costs the same either way; a stalled reader of standard output stalls the server instead
 * of growing its memory without bound.
 */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): FastifyBaseLogger {
  const options = { level: config.logLevel, redact: REDACTED_PATHS, serializers: { req: requestSerializer } };
  if (destination) return pino(options, destination);
  const lines = new LineBatch(pino.destination({ dest: 1, sync: true, minLength: 4096 }));
  setInterval(() => lines.flush(), LOG_FLUSH_MS).unref();
  return pino(options, lines);
}

type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * A pino destination that hands lines to sonic-boom LOG_BATCH_LINES at a time, and writes out
 * what is pending when the process exits (pino registers no exit flush for a synchronous
 * stream).
 */
class LineBatch implements pino.DestinationStream {
  private pending: string[] = [];

  constructor(private readonly stream: SonicBoom) {
    // 'exit' follows a natural end too; writes are synchronous, so this is the only flush needed.
    process.once('exit', () => this.flushSync());
  }

  write(line: string): void {
    if (this.pending.push(line) >= LOG_BATCH_LINES) this.handOver();
  }

  flush(): void {
    this.handOver();
    try {
      this.stream.flush();
    } catch {
      // Destroyed while the process exits: the exit handler writes what is pending.
    }
  }

  private flushSync(): void {
    this.handOver();
    try {
      this.stream.flushSync();
    } catch {
      // Standard output is gone: there is nowhere left to write.
    }
  }

  private handOver(): void {
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.stream.write(chunk);
  }
}

/**
 * PORT=0 binds a free port. A public URL derived from it (PUBLIC_URL unset) still says `:0`; it
 * must name the port actually bound, or the setup link and the OAuth issuer point nowhere. The
 * config object is shared with every route (ctx.config), so they all see the bound URL.
 */
function adoptBoundPort(config: Config, port: number): void {
  const publicUrl = new URL(config.publicUrl);
  if (config.port !== 0 || publicUrl.port !== '0') return;
  publicUrl.port = String(port);
  config.publicUrl = publicUrl.toString().replace(/\/$/, '');
}

export interface StartOptions {
  /** How long close() waits for in-flight requests before cutting their connections (default 10 s). */
  shutdownGraceMs?: number;
}

/** Connections of a node to the read replica: it serves only the heavy reads. */
const REPLICA_POOL_SIZE = 5;

/** Open storage, migrate, provision, listen: the `serve` command, also used by tests. */
export async function startServer(
  config: Config,
  logger: FastifyBaseLogger = createLogger(config),
  options: StartOptions = {},
): Promise<RunningServer> {
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    onConnectionError: (error) =>
      logger.warn({ code: (error as { code?: string }).code, message: error.message }, 'database connection lost; the pool replaces it'),
  });
  // Not told of its lost connections: the reads it fails are what matters, and ReadReplica warns
  // of those (at most once a minute), not once per pooled connection.
  const replica = config.databaseReplicaUrl
    ? await openDatabase({ databaseUrl: config.databaseReplicaUrl, poolSize: REPLICA_POOL_SIZE, readOnly: true })
    : undefined;
  const closeDatabases = async () => {
    await replica?.close();
    await database.close();
  };
  let built: App | undefined;
  try {
    const applied = await migrateToLatest(database.db, allMigrations());
    if (applied.length > 0) logger.info({ migrations: applied.map((m) => m.migrationName) }, 'database migrated');
    if (config.provisionFile) {
      const summary = await applyProvisioningFile(database.db, config.provisionFile, provisioningSections(), provisioningContext(config));
      logger.info({ file: config.provisionFile, ...summary }, 'provisioning applied');
    }
    built = await buildApp({ config, db: database.db, databaseKind: database.kind, replicaDb: replica?.db }, { logger });
    const app = built;
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    const url =
      typeof address === 'object' && address
        ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
        : config.publicUrl;
    if (typeof address === 'object' && address) adoptBoundPort(config, address.port);
    const setupLink = await setupLinkIfEmpty(database.db, config.publicUrl);
    if (setupLink) {
      // Printed, not logged: it is a one-time credential meant for the operator's eyes only.
      process.stdout.write(`\nsensorcloud has no organization yet. Open this one-time link to create the first one:\n  ${setupLink}\n\n`);
    }
    let closing: Promise<void> | undefined;
    return {
      app,
      database,
      replica,
      url,
      close: () =>
        (closing ??= (async () => {
          // A client that never reads its response (or trickles a body) must not hold SIGTERM off forever.
          const deadline = setTimeout(() => app.server.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
          deadline.unref();
          try {
            await app.close();
          } finally {
            clearTimeout(deadline);
          }
          await closeDatabases();
        })()),
    };
  } catch (error) {
    // E.g. the port is taken: stop whatever the app started (hooks, timers) along with the database.
    await built?.close().catch(() => {});
    await closeDatabases();
    throw error;
  }
}
