import { type Kysely, sql } from 'kysely';

/** Failure counters and known-good marks of the abuse guard (abuse/counters.repo.ts), shared by every node. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table abuse_counters (
      key text primary key,
      failures integer not null,
      updated_at timestamptz not null,
      expires_at timestamptz not null
    )`.execute(db);
  await sql`create index abuse_counters_expires_at on abuse_counters (expires_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table abuse_counters`.execute(db);
}
