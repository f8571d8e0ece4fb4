import { type Kysely, sql } from 'kysely';

/** The audit log (audit/audit.schema.ts). */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table audit_events (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      at timestamptz not null default now(),
      actor_kind text not null,
      actor_id uuid,
      source_address text,
      action text not null,
      target_type text not null,
      target_id uuid not null,
      details jsonb not null default '{}'
    )`.execute(db);
  await sql`create index audit_events_organization on audit_events (organization_id, at, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table audit_events`.execute(db);
}
