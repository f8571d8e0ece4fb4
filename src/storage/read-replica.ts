import { isDatabaseUnavailable } from './availability.js';
import { type Db, ping } from './database.js';

export interface ReadReplicaLog {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
}

/** How often a replica left out is tried again, in the background. */
const PROBE_INTERVAL_MS = 5_000;
/** A replica that keeps failing and coming back warns at most this often. */
const WARNING_INTERVAL_MS = 60_000;

// What only a standby raises: it cancelled the statement because replaying the WAL needed what the
// statement held (rows vacuumed away, a lock such as a dropped partition's): serialization_failure,
// or deadlock_detected for a buffer pin. A read-only statement gets neither for any other reason.
const RECOVERY_CONFLICT_SQLSTATES = new Set(['40001', '40P01']);

/**
 * Heavy reads that tolerate the replica's lag (ranges and bins of readings): on the streaming
 * replica of DATABASE_REPLICA_URL when there is one, else on the primary. A read the replica
 * cannot serve (unreachable, or cancelled by a conflict with its WAL replay) runs again on the
 * primary, so callers get the primary's own answers, never an error of the replica's. An
 * unreachable replica is left out and probed in the background until it answers, so requests do
 * not wait on it meanwhile (a host that drops packets costs the connection timeout only to the
 * reads in flight when it went away).
 */
export class ReadReplica {
  private away = false;
  private lastWarning = Number.NEGATIVE_INFINITY;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly primary: Db,
    private readonly replica: Db | undefined,
    private readonly log: ReadReplicaLog,
  ) {}

  async read<T>(query: (db: Db) => Promise<T>): Promise<T> {
    if (this.replica === undefined || this.away) return query(this.primary);
    try {
      return await query(this.replica);
    } catch (error) {
      if (isDatabaseUnavailable(error)) this.leaveOut(this.replica, error);
      else if (!RECOVERY_CONFLICT_SQLSTATES.has((error as { code?: string }).code ?? '')) throw error;
      return query(this.primary);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.probe);
  }

  private leaveOut(replica: Db, error: unknown): void {
    if (this.away) return;
    this.away = true;
    const now = Date.now();
    if (now - this.lastWarning >= WARNING_INTERVAL_MS) {
      this.lastWarning = now;
      this.log.warn(
        { err: (error as Error).message, code: (error as { code?: string }).code },
        'read replica unavailable: the reads that may lag go to the primary until it answers again',
      );
    }
    this.probeUntilBack(replica);
  }

  private probeUntilBack(replica: Db): void {
    if (this.closed) return;
    this.probe = setTimeout(async () => {
      try {
        await ping(replica);
      } catch {
        this.probeUntilBack(replica);
        return;
      }
      if (this.closed) return;
      this.away = false;
      this.log.info({}, 'read replica answers again');
    }, PROBE_INTERVAL_MS);
    this.probe.unref();
  }
}
