/**
 * Where the abuse guard keeps its counters, shared by every node: PostgreSQL (the server's own
 * database, embedded or not: counters.repo.ts) or Redis when REDIS_URL is set (redis-store.ts).
 * Keys arrive already hashed. Every operation is one round trip.
 */
export interface CounterState {
  /** Failures counted (0 for a known-good mark). */
  failures: number;
  /** Milliseconds since the last failure (or since the mark was set), by the store's clock. */
  ageMs: number;
}

export interface CounterStore {
  /** The live counters among `keys` (missing or expired keys are absent). */
  read(keys: readonly string[]): Promise<Map<string, CounterState>>;
  /** Counts one failure of each key; a key quiet for its `forgetAfterMs` starts again at 1. Returns the new counts. */
  fail(keys: readonly { key: string; forgetAfterMs: number }[]): Promise<Map<string, number>>;
  /** Forgets `clear` and sets known-good marks that live `ttlMs`. */
  succeed(clear: readonly string[], marks: readonly string[], ttlMs: number): Promise<void>;
  /** Drops expired rows (no-op where the store expires keys itself). */
  purge(): Promise<void>;
  close(): Promise<void>;
}
