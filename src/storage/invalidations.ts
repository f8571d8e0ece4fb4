import { sql } from 'kysely';
import pg from 'pg';
import { type Db, embeddedListen } from './database.js';

/**
 * Cache invalidations across nodes, through PostgreSQL LISTEN/NOTIFY. Caches hold only what is
 * also in the database, each for at most a second (the fallback if a message is lost); a
 * revocation, rotation or deletion is announced here so that every node drops what it holds at
 * once. `announce` is a pg_notify on the connection (or transaction) that made the change:
 * PostgreSQL delivers it when that change commits, never before, so no node can re-read the old
 * row after it heard of the new one. Any process may announce (the CLI does); each server node
 * listens on a connection of its own. On the embedded database there is one node, which hears its
 * own announcements through PGlite's LISTEN, also at commit.
 *
 * Besides invalidations, the same channel wakes the workers that wait for new rows (`events`: the
 * outbox has new events to deliver), so they need not poll.
 */

export const INVALIDATION_CHANNEL = 'sensorcloud_invalidations';

export type Invalidation =
  /**
   * Bearer credentials: one (by its hash), a family or a device/key (revocation group), every
   * credential acting for a user, or every token of an OAuth client (its primary key).
   */
  | { kind: 'credentials'; credentialHash?: string; revocationGroup?: string; userId?: string; clientPk?: string }
  /** OAuth client rows (a secret rotated, a client changed). */
  | { kind: 'clients' }
  /** New events in the outbox (events/outbox.ts): delivery workers look for work now. */
  | { kind: 'events' }
  /** The listener reconnected and may have missed messages: drop everything. */
  | { kind: 'all' };

export async function announce(db: Db, invalidation: Exclude<Invalidation, { kind: 'all' }>): Promise<void> {
  await sql`select pg_notify(${INVALIDATION_CHANNEL}, ${JSON.stringify(invalidation)})`.execute(db);
}

type Handler = (invalidation: Invalidation) => void;

export interface InvalidationLog {
  warn(details: object, message: string): void;
}

/** Delivers invalidations announced by any process to this node's caches. */
export class InvalidationListener {
  private readonly handlers: Handler[] = [];
  private client: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private failures = 0;
  private unlistenEmbedded: (() => Promise<void>) | undefined;

  /** `databaseUrl` undefined: the embedded database `db`, listened to in process. */
  constructor(
    private readonly databaseUrl: string | undefined,
    private readonly log: InvalidationLog,
    private readonly db?: Db,
  ) {}

  on(handler: Handler): void {
    this.handlers.push(handler);
  }

  /** Starts listening; resolves once LISTEN is in place (or, with the database away, keeps retrying in the background). */
  async start(): Promise<void> {
    if (this.databaseUrl) await this.connect();
    else if (this.db) this.unlistenEmbedded = await embeddedListen(this.db, INVALIDATION_CHANNEL, (payload) => this.received(payload));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
    await this.unlistenEmbedded?.().catch(() => {});
  }

  private received(payload: string): void {
    let invalidation: Invalidation;
    try {
      invalidation = JSON.parse(payload) as Invalidation;
    } catch {
      return; // Not ours or damaged: the caches' own lifetime covers it.
    }
    this.dispatch(invalidation);
  }

  private dispatch(invalidation: Invalidation): void {
    for (const handler of this.handlers) {
      try {
        handler(invalidation);
      } catch (error) {
        this.log.warn({ err: error, invalidation }, 'an invalidation handler failed');
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, keepAlive: true, connectionTimeoutMillis: 5_000 });
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = undefined;
      void client.end().catch(() => {});
      if (this.stopped) return;
      this.log.warn(
        { err: error?.message },
        'cache invalidation listener lost its connection; caches fall back to their 1 s lifetime until it is back',
      );
      this.scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.channel === INVALIDATION_CHANNEL && message.payload) this.received(message.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${INVALIDATION_CHANNEL}`);
    } catch (error) {
      onLost(error as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    // Messages may have been missed while there was no connection.
    if (this.failures > 0) this.dispatch({ kind: 'all' });
    this.failures = 0;
  }

  private scheduleReconnect(): void {
    this.failures += 1;
    const delay = Math.min(250 * 2 ** Math.min(this.failures - 1, 5), 5_000);
    this.retry = setTimeout(() => void this.connect(), delay);
    this.retry.unref();
  }
}
