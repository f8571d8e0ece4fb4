import { type Kysely, sql } from 'kysely';

/** Alarm thresholds, their evaluation state, alarms, their history and comments (alarms/alarms.schema.ts). */
export async function up(db: Kysely<any>): Promise<void> {
  const run = (query: ReturnType<typeof sql>) => query.execute(db);
  await run(sql`
    create table alarm_thresholds (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      sensor_id uuid not null,
      name text,
      min double precision,
      max double precision,
      delay_seconds integer not null default 0,
      severity text not null default 'warning',
      offline_after_seconds integer,
      enabled boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint alarm_thresholds_org_id_key unique (organization_id, id),
      constraint alarm_thresholds_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade,
      constraint alarm_thresholds_watches_something check (min is not null or max is not null or offline_after_seconds is not null),
      constraint alarm_thresholds_min_not_above_max check (min is null or max is null or min <= max)
    )`);
  await run(sql`create index alarm_thresholds_organization on alarm_thresholds (organization_id, created_at, id)`);
  await run(sql`create index alarm_thresholds_sensor on alarm_thresholds (sensor_id)`);
  await run(sql`
    create table alarms (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      threshold_id uuid references alarm_thresholds (id) on delete set null,
      sensor_id uuid not null,
      kind text not null,
      severity text not null,
      status text not null default 'active',
      condition text not null,
      value double precision,
      limit_value double precision,
      started_at timestamptz not null,
      triggered_at timestamptz not null,
      acknowledged_at timestamptz,
      acknowledged_by uuid,
      resolved_at timestamptz,
      resolved_by uuid,
      resolution text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint alarms_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade
    )`);
  // At most one open alarm of each kind per threshold, whichever process raises it.
  await run(sql`create unique index alarms_one_open on alarms (threshold_id, kind) where status <> 'resolved'`);
  await run(sql`create index alarms_organization on alarms (organization_id, triggered_at, id)`);
  await run(sql`create index alarms_sensor on alarms (sensor_id, triggered_at)`);
  await run(sql`
    create table alarm_threshold_state (
      threshold_id uuid primary key references alarm_thresholds (id) on delete cascade,
      organization_id uuid not null,
      breach_since timestamptz,
      breach_value double precision,
      open_range_alarm_id uuid references alarms (id) on delete set null,
      open_offline_alarm_id uuid references alarms (id) on delete set null
    )`);
  await run(sql`
    create table alarm_activity (
      id uuid primary key default gen_random_uuid(),
      alarm_id uuid not null references alarms (id) on delete cascade,
      organization_id uuid not null,
      action text not null,
      actor_user_id uuid,
      actor_kind text not null,
      note text,
      at timestamptz not null default now()
    )`);
  await run(sql`create index alarm_activity_alarm on alarm_activity (alarm_id, at, id)`);
  await run(sql`
    create table alarm_comments (
      id uuid primary key default gen_random_uuid(),
      alarm_id uuid not null references alarms (id) on delete cascade,
      organization_id uuid not null,
      author_user_id uuid,
      body text not null,
      created_at timestamptz not null default now()
    )`);
  await run(sql`create index alarm_comments_alarm on alarm_comments (alarm_id, created_at, id)`);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['alarm_comments', 'alarm_activity', 'alarm_threshold_state', 'alarms', 'alarm_thresholds']) {
    await sql`drop table ${sql.table(table)}`.execute(db);
  }
}
