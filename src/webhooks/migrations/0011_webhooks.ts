import { type Kysely, sql } from 'kysely';

/** Webhook subscriptions, the delivery of each event to each, and the log of attempts (webhooks/webhooks.schema.ts). */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table webhooks (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      url text not null,
      description text,
      event_types text[] not null,
      enabled boolean not null default true,
      disabled_reason text,
      secret_sealed text not null,
      previous_secret_sealed text,
      previous_secret_expires_at timestamptz,
      failed_events integer not null default 0,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index webhooks_organization on webhooks (organization_id, created_at, id)`.execute(db);
  await sql`
    create table webhook_tasks (
      id uuid primary key default gen_random_uuid(),
      webhook_id uuid not null references webhooks (id) on delete cascade,
      event_id uuid not null references events (id) on delete cascade,
      attempts integer not null default 0,
      schedule_step integer not null default 0,
      state text not null default 'pending',
      next_attempt_at timestamptz not null default now(),
      lease_id uuid,
      lease_expires_at timestamptz,
      unique (webhook_id, event_id)
    )`.execute(db);
  await sql`create index webhook_tasks_due on webhook_tasks (next_attempt_at) where state = 'pending'`.execute(db);
  await sql`create index webhook_tasks_event on webhook_tasks (event_id)`.execute(db);
  await sql`
    create table webhook_deliveries (
      id uuid primary key default gen_random_uuid(),
      task_id uuid not null references webhook_tasks (id) on delete cascade,
      webhook_id uuid not null references webhooks (id) on delete cascade,
      event_id uuid not null references events (id) on delete cascade,
      attempt integer not null,
      status_code integer,
      error text,
      duration_ms integer not null,
      created_at timestamptz not null default now(),
      next_attempt_at timestamptz
    )`.execute(db);
  await sql`create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, created_at, id)`.execute(db);
  await sql`create index webhook_deliveries_task on webhook_deliveries (task_id)`.execute(db);
  await sql`create index webhook_deliveries_event on webhook_deliveries (event_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table webhook_deliveries`.execute(db);
  await sql`drop table webhook_tasks`.execute(db);
  await sql`drop table webhooks`.execute(db);
}
