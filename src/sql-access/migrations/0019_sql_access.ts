import { type Kysely, sql } from 'kysely';

/**
 * SQL access (SPEC §6, §8): `sql_access_logins` maps each organization's PostgreSQL login to the
 * organization and its allowed address ranges, and schema `reporting` holds the only relations a
 * login may read. Each view is `security_barrier` and keeps the rows of `login_organization`: the
 * organization whose login is the session user (fixed at connection; SET ROLE cannot change it),
 * and only while the client address is inside one of its ranges. Anyone else (the owner included)
 * sees no rows. The views run with their owner's rights, so logins need no grant on base tables.
 *
 * The reporting group role and the grants on these views are made when the first login is
 * (sql-access/reporting-roles.ts: CREATEROLE is needed then, not to migrate). A later migration
 * that changes a view uses CREATE OR REPLACE VIEW (which keeps the grants) or calls
 * `grantReporting`. Created on the embedded database too, where nothing can log in: one migration
 * set for both backends.
 */

/** The organization of the session's login, or null: an InitPlan, evaluated once per query. */
const LOGIN_ORGANIZATION = `(
  select l.organization_id from public.sql_access_logins l
  where l.role_name = session_user::text and inet_client_addr() <<= any (l.allowed_cidrs)
)`;

/** Each view: its columns (never a secret or a hash) from a base table of the organization. */
const VIEWS: Record<string, string> = {
  locations: `select t.id, t.organization_id, t.slug, t.name, t.description, t.timezone, t.created_at, t.updated_at
    from public.locations t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  devices: `select t.id, t.organization_id, t.serial, t.name, t.description, t.model, t.firmware_version, t.location_id,
      t.last_seen_at, t.created_at, t.updated_at
    from public.devices t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  sensors: `select t.id, t.organization_id, t.device_id, t.key, t.kind, t.unit, t.name, t.scaling_profile_id,
      t.offline_after_seconds, t.created_at, t.updated_at
    from public.sensors t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  // Through the organization's sensors, like the API (readings.repo.ts): each sensor's range is a
  // scan of the primary key (sensor_id, ts) INCLUDE (value, raw_value) of each month's partition.
  readings: `select t.organization_id, t.sensor_id, t.ts, t.value, t.raw_value, t.received_at
    from public.readings t
    where t.sensor_id in (select s.id from public.sensors s where s.organization_id = ${LOGIN_ORGANIZATION})`,
  scaling_profiles: `select t.id, t.organization_id, t.name, t.description, t.kind, t.scale, t."offset", t.points, t.unit,
      t.created_at, t.updated_at
    from public.scaling_profiles t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  calibrations: `select t.id, t.organization_id, t.sensor_id, t.calibrated_at, t.due_at, t."offset", t.certificate,
      t.certificate_url, t.performed_by, t.notes, t.active, t.created_at, t.updated_at
    from public.calibrations t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  alarm_thresholds: `select t.id, t.organization_id, t.sensor_id, t.name, t.min, t.max, t.delay_seconds, t.severity,
      t.offline_after_seconds, t.enabled, t.created_at, t.updated_at
    from public.alarm_thresholds t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  alarms: `select t.id, t.organization_id, t.threshold_id, t.sensor_id, t.kind, t.severity, t.status, t.condition, t.value,
      t.limit_value, t.started_at, t.triggered_at, t.acknowledged_at, t.acknowledged_by, t.resolved_at, t.resolved_by,
      t.resolution, t.created_at, t.updated_at
    from public.alarms t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  alarm_comments: `select t.id, t.organization_id, t.alarm_id, t.author_user_id, t.body, t.created_at
    from public.alarm_comments t where t.organization_id = ${LOGIN_ORGANIZATION}`,
  groups: `select t.id, t.organization_id, t.name, t.description, t.created_at,
      coalesce((select array_agg(g.sensor_id order by g.sensor_id) from public.group_sensors g
        where g.organization_id = t.organization_id and g.group_id = t.id), '{}') as sensor_ids
    from public.groups t where t.organization_id = ${LOGIN_ORGANIZATION}`,
};

export const REPORTING_VIEWS = Object.keys(VIEWS);

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table sql_access_logins (
      organization_id uuid primary key references organizations (id) on delete cascade,
      role_name text not null unique,
      allowed_cidrs cidr[] not null,
      created_by uuid references users (id) on delete set null,
      created_at timestamptz not null default now(),
      password_rotated_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create schema reporting`.execute(db);
  for (const [name, body] of Object.entries(VIEWS)) {
    await sql`create view ${sql.table(`reporting.${name}`)} with (security_barrier) as ${sql.raw(body)}`.execute(db);
  }
  // Temporary tables and functions would be the one thing a login could create (its own
  // functions, disk it fills, objects that keep DROP ROLE from dropping it): only the owner may.
  // Refused silently (a warning) when the migrating role does not own the database.
  await sql`
    do $$ begin
      execute format('revoke temporary on database %I from public', current_database());
    end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    do $$ begin
      execute format('grant temporary on database %I to public', current_database());
    end $$`.execute(db);
  await sql`drop schema reporting cascade`.execute(db);
  await sql`drop table sql_access_logins`.execute(db);
}
