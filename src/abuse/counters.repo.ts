import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import type { CounterState, CounterStore } from './store.js';

/**
 * The abuse counters in PostgreSQL (or the embedded database): one row per key digest. A failure is
 * one upsert whatever the number of keys, and counts restart once a row has expired, so no
 * background job is needed for correctness (the purge only reclaims space).
 */
export class PostgresCounterStore implements CounterStore {
  constructor(private readonly db: Db) {}

  async read(keys: readonly string[]): Promise<Map<string, CounterState>> {
    const { rows } = await sql<{ key: string; failures: number; age_ms: number }>`
      select key, failures, extract(epoch from (now() - updated_at)) * 1000 as age_ms
      from abuse_counters where key = any(${[...keys]}::text[]) and expires_at > now()`.execute(this.db);
    return new Map(rows.map((row) => [row.key, { failures: row.failures, ageMs: Number(row.age_ms) }]));
  }

  async fail(keys: readonly { key: string; forgetAfterMs: number }[]): Promise<Map<string, number>> {
    const { rows } = await sql<{ key: string; failures: number }>`
      insert into abuse_counters as c (key, failures, updated_at, expires_at)
      select key, 1, now(), now() + forget * interval '1 millisecond'
      from unnest(${keys.map((k) => k.key)}::text[], ${keys.map((k) => k.forgetAfterMs)}::float8[]) as x(key, forget)
      on conflict (key) do update set
        failures = case when c.expires_at <= now() then 1 else c.failures + 1 end,
        updated_at = now(),
        expires_at = excluded.expires_at
      returning key, failures`.execute(this.db);
    return new Map(rows.map((row) => [row.key, row.failures]));
  }

  async succeed(clear: readonly string[], marks: readonly string[], ttlMs: number): Promise<void> {
    if (clear.length > 0) await sql`delete from abuse_counters where key = any(${[...clear]}::text[])`.execute(this.db);
    if (marks.length > 0) {
      await sql`
        insert into abuse_counters (key, failures, updated_at, expires_at)
        select key, 0, now(), now() + ${ttlMs} * interval '1 millisecond' from unnest(${[...marks]}::text[]) as x(key)
        on conflict (key) do update set failures = 0, updated_at = now(), expires_at = excluded.expires_at`.execute(this.db);
    }
  }

  async purge(): Promise<void> {
    await sql`delete from abuse_counters where key in (select key from abuse_counters where expires_at < now() limit 10000)`.execute(
      this.db,
    );
  }

  async close(): Promise<void> {}
}
