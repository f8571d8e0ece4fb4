import { type Kysely, sql } from 'kysely';

/**
 * Inventory: locations, devices (with their hashed device token), sensors, scaling profiles,
 * calibrations and the sensors of a group.
 *
 * Tenancy is structural: every table carries organization_id, every table is unique on
 * (organization_id, id), and every reference between tenant rows is a composite foreign key on
 * (organization_id, <ref>_id), so a row can never point at another organization's row, whatever
 * the application code does. Optional references use `ON DELETE SET NULL (<ref>_id)`
 * (PostgreSQL 15+) so only the reference is cleared, never organization_id.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const run = (query: ReturnType<typeof sql>) => query.execute(db);

  // Deactivation is per organization (a person may belong to several): the users API sets this,
  // and a deactivated membership grants nothing in that organization.
  await run(sql`alter table memberships add column deactivated_at timestamptz`);

  await run(sql`
    create table locations (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      slug text not null,
      name text not null,
      description text,
      timezone text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint locations_org_slug_key unique (organization_id, slug),
      constraint locations_org_id_key unique (organization_id, id)
    )`);

  await run(sql`
    create table scaling_profiles (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      name text not null,
      description text,
      kind text not null constraint scaling_profiles_kind_check check (kind in ('linear', 'piecewise_linear')),
      scale double precision,
      "offset" double precision,
      -- piecewise_linear: [{"raw": x, "value": y}, ...] sorted by raw, at least two points.
      points jsonb,
      unit text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint scaling_profiles_shape_check check (
        (kind = 'linear' and scale is not null and "offset" is not null)
        or (kind = 'piecewise_linear' and points is not null and jsonb_typeof(points) = 'array')
      ),
      constraint scaling_profiles_org_name_key unique (organization_id, name),
      constraint scaling_profiles_org_id_key unique (organization_id, id)
    )`);

  await run(sql`
    create table devices (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      serial text not null,
      name text not null,
      description text,
      model text,
      firmware_version text,
      location_id uuid,
      -- SHA-256 (base64url) of the sc_dev_ token; the token itself is shown once and never stored.
      token_hash text constraint devices_token_hash_key unique,
      -- First characters of the token, to tell tokens apart in listings without revealing them.
      token_prefix text,
      token_rotated_at timestamptz,
      last_seen_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint devices_org_serial_key unique (organization_id, serial),
      constraint devices_org_id_key unique (organization_id, id),
      constraint devices_location_fk foreign key (organization_id, location_id)
        references locations (organization_id, id) on delete set null (location_id)
    )`);
  await run(sql`create index devices_location_idx on devices (organization_id, location_id)`);

  await run(sql`
    create table sensors (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      device_id uuid not null,
      key text not null,
      kind text not null,
      unit text not null default '',
      name text,
      scaling_profile_id uuid,
      -- Seconds without a reading before the sensor counts as offline (alarms use it).
      offline_after_seconds integer constraint sensors_offline_after_check check (offline_after_seconds is null or offline_after_seconds > 0),
      -- No last-reading columns: the newest reading lives in sensor_latest (0005_readings), a narrow
      -- table the ingest statement keeps, so ingest never updates (and locks) this wide row.
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      -- Unique keys always lead with organization_id: a key can never collide with (and so reveal)
      -- another organization's row.
      constraint sensors_device_key_key unique (organization_id, device_id, key),
      constraint sensors_org_id_key unique (organization_id, id),
      constraint sensors_device_fk foreign key (organization_id, device_id)
        references devices (organization_id, id) on delete cascade,
      constraint sensors_scaling_profile_fk foreign key (organization_id, scaling_profile_id)
        references scaling_profiles (organization_id, id) on delete set null (scaling_profile_id)
    )`);
  await run(sql`create index sensors_org_device_idx on sensors (organization_id, device_id)`);
  await run(sql`create index sensors_scaling_profile_idx on sensors (organization_id, scaling_profile_id)`);

  await run(sql`
    create table calibrations (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      sensor_id uuid not null,
      calibrated_at timestamptz not null,
      due_at timestamptz,
      "offset" double precision not null default 0,
      certificate text,
      certificate_url text,
      performed_by text,
      notes text,
      active boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      constraint calibrations_org_id_key unique (organization_id, id),
      constraint calibrations_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade
    )`);
  // At most one active calibration per sensor: its offset is the one ingest applies.
  await run(sql`create unique index calibrations_active_sensor_key on calibrations (organization_id, sensor_id) where active`);
  await run(sql`create index calibrations_org_sensor_idx on calibrations (organization_id, sensor_id, calibrated_at)`);
  await run(sql`create index calibrations_due_idx on calibrations (due_at) where active`);

  await run(sql`
    create table group_sensors (
      organization_id uuid not null,
      group_id uuid not null,
      sensor_id uuid not null,
      constraint group_sensors_pkey primary key (organization_id, group_id, sensor_id),
      constraint group_sensors_group_fk foreign key (organization_id, group_id)
        references groups (organization_id, id) on delete cascade,
      constraint group_sensors_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade
    )`);
  await run(sql`create index group_sensors_sensor_idx on group_sensors (organization_id, sensor_id)`);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['group_sensors', 'calibrations', 'sensors', 'devices', 'scaling_profiles', 'locations']) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema.alterTable('memberships').dropColumn('deactivated_at').execute();
}
