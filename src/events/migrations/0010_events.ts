import { type Kysely, sql } from 'kysely';

/** The event outbox (events/events.schema.ts); kept for EVENT_RETENTION_DAYS. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table events (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      type text not null,
      data jsonb not null,
      occurred_at timestamptz not null,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index events_organization_created on events (organization_id, created_at, id)`.execute(db);
  await sql`create index events_created_at on events (created_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table events`.execute(db);
}
