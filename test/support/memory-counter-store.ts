import type { CounterState, CounterStore } from '../../src/abuse/store.js';

/** The CounterStore contract in memory, on a clock the test moves: for unit tests of the guard. */
export class MemoryCounterStore implements CounterStore {
  readonly rows = new Map<string, { failures: number; at: number; expires: number }>();
  reads = 0;
  writes = 0;

  constructor(private readonly now: () => number) {}

  async read(keys: readonly string[]): Promise<Map<string, CounterState>> {
    this.reads += 1;
    const states = new Map<string, CounterState>();
    for (const key of keys) {
      const row = this.rows.get(key);
      if (row && row.expires > this.now()) states.set(key, { failures: row.failures, ageMs: this.now() - row.at });
    }
    return states;
  }

  async fail(keys: readonly { key: string; forgetAfterMs: number }[]): Promise<Map<string, number>> {
    this.writes += 1;
    const now = this.now();
    const counts = new Map<string, number>();
    for (const { key, forgetAfterMs } of keys) {
      const row = this.rows.get(key);
      const failures = row && row.expires > now ? row.failures + 1 : 1;
      this.rows.set(key, { failures, at: now, expires: now + forgetAfterMs });
      counts.set(key, failures);
    }
    return counts;
  }

  async succeed(clear: readonly string[], marks: readonly string[], ttlMs: number): Promise<void> {
    this.writes += 1;
    for (const key of clear) this.rows.delete(key);
    for (const key of marks) this.rows.set(key, { failures: 0, at: this.now(), expires: this.now() + ttlMs });
  }

  async purge(): Promise<void> {
    for (const [key, row] of this.rows) if (row.expires <= this.now()) this.rows.delete(key);
  }

  async close(): Promise<void> {}
}
