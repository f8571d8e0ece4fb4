import type { ColumnType } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** Failure counters and known-good marks of the abuse guard (abuse/counters.repo.ts), by key digest. */
export interface AbuseCountersTable {
  /** SHA-256 of the counter's key: no address, email or client id is stored. */
  key: string;
  /** Failures since the key was last quiet for its policy's forget time (0 for a known-good mark). */
  failures: number;
  /** The last failure (or when a mark was set); a block runs from here. */
  updated_at: Timestamp;
  /** When the row may be forgotten: the count restarts after it. */
  expires_at: Timestamp;
}

export interface AbuseTables {
  abuse_counters: AbuseCountersTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends AbuseTables {}
}
