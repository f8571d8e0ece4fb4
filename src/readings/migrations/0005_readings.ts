import { type Kysely, sql } from 'kysely';

/**
 * Readings storage, built for volume (see ARCHITECTURE.md, "Readings and ingest").
 *
 * - `readings` is PARTITION BY RANGE (ts): monthly partitions `readings_pYYYY_MM` are created
 *   ahead by the maintenance job (src/readings/partitions.ts), and the DEFAULT partition takes
 *   anything no monthly partition covers, so no reading is ever refused for its timestamp.
 *   The only index is the primary key (sensor_id, ts): it serves every query (one sensor, a time
 *   range, in order), enforces idempotent ingest, and keeps inserts cheap. No foreign key on this
 *   table (an RI trigger and a probe into sensors per inserted reading); a trigger on sensors deletes a sensor's
 *   readings with it instead.
 * - `readings_hourly`: count/sum/min/max per sensor and UTC hour, kept by the ingest statement;
 *   its primary key covers every column, so hourly downsampling is an index-only range scan.
 * - `sensor_latest`: the newest reading of each sensor, kept by the ingest statement.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const run = (query: ReturnType<typeof sql>) => query.execute(db);

  await run(sql`
    create table readings (
      organization_id uuid not null,
      sensor_id uuid not null,
      ts timestamptz not null,
      value double precision not null,
      raw_value double precision not null,
      received_at timestamptz not null default now(),
      constraint readings_pkey primary key (sensor_id, ts)
    ) partition by range (ts)`);
  await run(sql`create table readings_default partition of readings default`);

  await run(sql`
    create table readings_hourly (
      sensor_id uuid not null,
      bucket timestamptz not null,
      organization_id uuid not null,
      n bigint not null,
      sum double precision not null,
      min double precision not null,
      max double precision not null,
      -- Covering: a range of one sensor's hours is an index-only scan, in order, whatever
      -- the interleaving of sensors in the heap.
      constraint readings_hourly_pkey primary key (sensor_id, bucket) include (organization_id, n, sum, min, max),
      constraint readings_hourly_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade
    ) with (fillfactor = 70)`);

  // Narrow and mostly updated in place: the free space lets those updates be HOT (no index write).
  await run(sql`
    create table sensor_latest (
      sensor_id uuid primary key,
      organization_id uuid not null,
      ts timestamptz not null,
      value double precision not null,
      raw_value double precision not null,
      received_at timestamptz not null,
      seen_at timestamptz not null,
      constraint sensor_latest_sensor_fk foreign key (organization_id, sensor_id)
        references sensors (organization_id, id) on delete cascade
    ) with (fillfactor = 50)`);

  // Deleting sensors (directly, or by cascade from their device or organization) deletes their
  // readings: one statement per DELETE, through the primary key of each partition.
  await run(sql`
    create function readings_delete_for_sensors() returns trigger language plpgsql as $$
    begin
      delete from readings r using gone_sensors g where r.sensor_id = g.id;
      return null;
    end
    $$`);
  await run(sql`
    create trigger sensors_delete_readings after delete on sensors
    referencing old table as gone_sensors
    for each statement execute function readings_delete_for_sensors()`);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists sensors_delete_readings on sensors`.execute(db);
  await sql`drop function if exists readings_delete_for_sensors()`.execute(db);
  for (const table of ['sensor_latest', 'readings_hourly', 'readings']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
