import { type Kysely, sql } from 'kysely';

/** Notification rules and their recipients, per-user preferences, and the email of each notification (notifications/notifications.schema.ts). */
export async function up(db: Kysely<any>): Promise<void> {
  const run = (query: ReturnType<typeof sql>) => query.execute(db);
  await run(sql`
    create table notification_rules (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      name text,
      threshold_id uuid,
      group_id uuid,
      min_severity text not null default 'info',
      repeat_every_seconds integer,
      escalate_after_seconds integer,
      enabled boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint notification_rules_org_id_key unique (organization_id, id),
      constraint notification_rules_threshold_fk foreign key (organization_id, threshold_id)
        references alarm_thresholds (organization_id, id) on delete cascade,
      constraint notification_rules_group_fk foreign key (organization_id, group_id)
        references groups (organization_id, id) on delete cascade,
      constraint notification_rules_one_target check ((threshold_id is null) <> (group_id is null))
    )`);
  await run(sql`create index notification_rules_organization on notification_rules (organization_id, created_at, id)`);
  await run(sql`create index notification_rules_threshold on notification_rules (threshold_id) where threshold_id is not null`);
  // Recipients: users and groups, on the first list or (escalation) the second.
  await run(sql`
    create table notification_rule_users (
      organization_id uuid not null,
      rule_id uuid not null,
      user_id uuid not null,
      escalation boolean not null,
      primary key (rule_id, escalation, user_id),
      constraint notification_rule_users_rule_fk foreign key (organization_id, rule_id)
        references notification_rules (organization_id, id) on delete cascade,
      constraint notification_rule_users_member_fk foreign key (organization_id, user_id)
        references memberships (organization_id, user_id) on delete cascade
    )`);
  await run(sql`
    create table notification_rule_groups (
      organization_id uuid not null,
      rule_id uuid not null,
      group_id uuid not null,
      escalation boolean not null,
      primary key (rule_id, escalation, group_id),
      constraint notification_rule_groups_rule_fk foreign key (organization_id, rule_id)
        references notification_rules (organization_id, id) on delete cascade,
      constraint notification_rule_groups_group_fk foreign key (organization_id, group_id)
        references groups (organization_id, id) on delete cascade
    )`);
  // A person's choices, whichever organization notifies them.
  await run(sql`
    create table notification_preferences (
      user_id uuid primary key references users (id) on delete cascade,
      email_enabled boolean not null default true,
      quiet_start text,
      quiet_end text,
      quiet_timezone text,
      updated_at timestamptz not null default now()
    )`);
  // One email: to one person, for an event (one per recipient and event) or for a repeat or an
  // escalation (one per alarm, rule, recipient and step: what the periodic check enqueued).
  await run(sql`
    create table notification_tasks (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      event_id uuid references events (id) on delete cascade,
      alarm_id uuid not null references alarms (id) on delete cascade,
      rule_id uuid references notification_rules (id) on delete set null,
      user_id uuid not null references users (id) on delete cascade,
      reason text not null,
      step integer not null default 0,
      severity text not null,
      state text not null default 'pending',
      attempts integer not null default 0,
      permanent_failures integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      lease_id uuid,
      lease_expires_at timestamptz,
      last_error text,
      sent_at timestamptz,
      created_at timestamptz not null default now()
    )`);
  await run(sql`create unique index notification_tasks_per_event on notification_tasks (event_id, user_id) where event_id is not null`);
  await run(
    sql`create unique index notification_tasks_per_step on notification_tasks (alarm_id, rule_id, user_id, reason, step) where event_id is null`,
  );
  await run(sql`create index notification_tasks_due on notification_tasks (next_attempt_at) where state = 'pending'`);
  await run(sql`create index notification_tasks_alarm on notification_tasks (alarm_id)`);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'notification_tasks',
    'notification_preferences',
    'notification_rule_groups',
    'notification_rule_users',
    'notification_rules',
  ]) {
    await sql`drop table ${sql.table(table)}`.execute(db);
  }
}
