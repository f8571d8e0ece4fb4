/**
 * The databases under test: a fresh PostgreSQL database (created and dropped by the bench) or a
 * fresh embedded (PGlite) data directory. Both are prepared the same way, in this process, with the
 * server's own code (migrate, provision), then seeded with readings by SQL, then handed to the
 * server process (which re-applies the provisioning file: idempotent).
 */
import { sql } from 'kysely';
import pg from 'pg';
import { applyProvisioningFile } from '../../src/provisioning/provision.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { maintainReadingPartitions, monthStart, partitionName } from '../../src/readings/partitions.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations, provisioningSections } from '../../src/modules.js';
import { BENCH, FILLER_SENSORS_PER_DEVICE } from './fixtures.js';

export async function createPgDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropPgDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

export interface Tenant {
  organizationId: string;
  /** The measured sensor (BENCH-0001 / temp), or undefined while devices cannot be provisioned. */
  sensorId: string | undefined;
  /** The gateway's sensors (ingest), key → id. */
  gatewaySensors: Record<string, string>;
}

export interface SeedSummary {
  status: 'seeded' | 'skipped';
  reason?: string;
  readings: number;
  sensors: number;
  /** Rows of the measured sensor: one a minute over `days` days ending at `endMs`. */
  targetRows: number;
  days: number;
  startMs: number;
  endMs: number;
  seconds: number;
  tableBytes?: number;
}

export interface Prepared {
  tenant: Tenant;
  seed: SeedSummary;
  provisioning: unknown;
}

type Log = (message: string) => void;

/** Migrates, provisions and seeds; closes the database before the server opens it. */
export async function prepareDatabase(options: {
  databaseUrl?: string;
  dataDir?: string;
  provisionFile: string;
  readings: number;
  sensors: number;
  log: Log;
}): Promise<Prepared> {
  const handle = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  try {
    const db = handle.db;
    await migrateToLatest(db, allMigrations());
    const provisioning = await applyProvisioningFile(db, options.provisionFile, provisioningSections());
    options.log(`provisioned: ${JSON.stringify(provisioning)}`);
    const tenant = await findTenant(db);
    // One pinned connection: the seed uses a temporary table and session settings.
    const seed = await db.connection().execute((conn) =>
      seedReadings(conn, tenant, {
        readings: options.readings,
        sensors: options.sensors,
        embedded: handle.kind === 'embedded',
        log: options.log,
      }),
    );
    // The months around now the seed did not create (the server would on start anyway).
    if (await tableExists(db, 'readings')) await maintainReadingPartitions(db);
    return { tenant, seed, provisioning };
  } finally {
    await handle.close();
  }
}

async function findTenant(db: Db): Promise<Tenant> {
  const org = await sql<{ id: string }>`select id from organizations where slug = ${BENCH.org}`.execute(db);
  const organizationId = org.rows[0]?.id;
  if (!organizationId) throw new Error('the bench organization was not provisioned');
  const tenant: Tenant = { organizationId, sensorId: undefined, gatewaySensors: {} };
  if (!(await tableExists(db, 'sensors'))) return tenant;
  const rows = await sql<{ id: string; key: string; serial: string }>`
    select s.id, s.key, d.serial from sensors s join devices d on d.id = s.device_id
    where d.organization_id = ${organizationId} and d.serial in (${BENCH.device.serial}, ${BENCH.gateway.serial})`.execute(db);
  for (const row of rows.rows) {
    if (row.serial === BENCH.device.serial && row.key === BENCH.device.sensor) tenant.sensorId = row.id;
    if (row.serial === BENCH.gateway.serial) tenant.gatewaySensors[row.key] = row.id;
  }
  return tenant;
}

async function tableExists(db: Db, table: string): Promise<boolean> {
  const result = await sql<{ ok: boolean }>`select to_regclass(${table}) is not null as ok`.execute(db);
  return result.rows[0]?.ok === true;
}

interface Column {
  name: string;
  type: string;
  nullable: boolean;
  hasDefault: boolean;
}

/** How each column of the readings table is filled by the generator (`$sensor`, `$ts`, `$value`). */
function columnExpression(column: Column, organizationId: string): string | undefined {
  const name = column.name;
  if (name === 'organization_id') return `'${organizationId}'::uuid`;
  if (name === 'sensor_id') return 'g.sensor_id';
  if (['ts', 'time', 'timestamp', 'recorded_at', 'measured_at', 'reading_at', 'observed_at'].includes(name)) return 'g.ts';
  if (['value', 'raw_value', 'reported_value', 'raw'].includes(name)) return 'g.value';
  if (column.hasDefault || column.nullable) return undefined;
  if (column.type.startsWith('timestamp')) return 'now()';
  throw new Error(
    `bench/lib/database.ts does not know how to fill readings.${name} (${column.type} not null, no default): teach columnExpression()`,
  );
}

const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * SENSORS filler sensors (on devices of ten) and the measured sensor, and READINGS readings in the
 * readings table, generated server-side (`INSERT … SELECT generate_series`) in time order, the
 * order ingest would have written them: the measured sensor has a reading every minute for up to a
 * year ending at today's midnight UTC, the filler sensors share the rest evenly over the same span.
 */
async function seedReadings(
  db: Db,
  tenant: Tenant,
  options: { readings: number; sensors: number; embedded: boolean; log: Log },
): Promise<SeedSummary> {
  const endMs = Math.floor(Date.now() / DAY) * DAY;
  const skipped = (reason: string): SeedSummary => ({
    status: 'skipped',
    reason,
    readings: 0,
    sensors: 0,
    targetRows: 0,
    days: 0,
    startMs: endMs,
    endMs,
    seconds: 0,
  });
  if (!tenant.sensorId) return skipped('devices/sensors are not provisioned yet');
  if (!(await tableExists(db, 'readings'))) return skipped('no readings table yet');
  const started = performance.now();
  const columns = (
    await sql<{
      column_name: string;
      data_type: string;
      is_nullable: string;
      column_default: string | null;
      is_generated: string;
      is_identity: string;
    }>`
      select column_name, data_type, is_nullable, column_default, is_generated, is_identity from information_schema.columns
      where table_schema = current_schema() and table_name = 'readings' order by ordinal_position`.execute(db)
  ).rows
    .filter((c) => c.is_generated !== 'ALWAYS')
    .map(
      (c): Column => ({
        name: c.column_name,
        type: c.data_type,
        nullable: c.is_nullable === 'YES',
        hasDefault: c.column_default !== null || c.is_identity === 'YES',
      }),
    );
  const filled = columns.flatMap((c) => {
    const expression = columnExpression(c, tenant.organizationId);
    return expression === undefined ? [] : [{ name: c.name, expression }];
  });
  const columnList = filled.map((c) => `"${c.name}"`).join(', ');
  const selectList = filled.map((c) => c.expression).join(', ');

  // Filler sensors, ten per device.
  const fillerDevices = Math.ceil(options.sensors / FILLER_SENSORS_PER_DEVICE);
  await sql
    .raw(
      `insert into devices (organization_id, serial, name)
       select '${tenant.organizationId}', '${BENCH.fillerSerialPrefix}' || lpad(g::text, 5, '0'), 'Filler ' || g
       from generate_series(1, ${fillerDevices}) g
       on conflict do nothing`,
    )
    .execute(db);
  await sql
    .raw(
      `insert into sensors (organization_id, device_id, key, kind, unit)
       select d.organization_id, d.id, 't' || k, 'temperature', '°C'
       from devices d cross join generate_series(1, ${FILLER_SENSORS_PER_DEVICE}) k
       where d.organization_id = '${tenant.organizationId}' and d.serial like '${BENCH.fillerSerialPrefix}%'
       on conflict do nothing`,
    )
    .execute(db);
  await sql
    .raw(
      `create temporary table bench_fillers as
       select s.id as sensor_id, (row_number() over (order by s.id) - 1)::int as idx
       from sensors s join devices d on d.id = s.device_id
       where d.organization_id = '${tenant.organizationId}' and d.serial like '${BENCH.fillerSerialPrefix}%'
       limit ${options.sensors}`,
    )
    .execute(db);

  const days = Math.max(1, Math.min(365, Math.floor(options.readings / 2 / 1440)));
  const startMs = endMs - days * DAY;
  const targetRows = Math.min(options.readings, days * 1440);
  const perFiller = Math.floor((options.readings - targetRows) / options.sensors);
  const fillerStepMs = perFiller > 0 ? Math.floor((days * DAY) / perFiller) : 0;
  const total = targetRows + perFiller * options.sensors;
  // Hours end at endMs exactly: the newest filler rows must not spill past it.
  const lastFillerMs = (perFiller - 1) * fillerStepMs + (options.sensors - 1) * 1000;
  if (perFiller > 0 && lastFillerMs >= days * DAY)
    throw new Error('too many filler sensors for the span: raise BENCH_READINGS or lower BENCH_SENSORS');
  options.log(
    `seeding ${total.toLocaleString('en-US')} readings: measured sensor every minute for ${days} days, ${options.sensors} filler sensors × ${perFiller} (every ${(fillerStepMs / MINUTE).toFixed(1)} min)`,
  );

  if (!options.embedded)
    await sql.raw(`set work_mem = '256MB'; set maintenance_work_mem = '512MB'; set synchronous_commit = off`).execute(db);

  // One month at a time, the way the server lays readings out (monthly partitions named by the
  // readings module): the month's rows are written in time order into a table of their own (so
  // the heap looks like ingest wrote it, the measured sensor's rows interleaved with everyone
  // else's), which is then attached as the month's partition; attaching builds its primary key
  // in one sorted pass, far faster than 10 million scattered B-tree insertions.
  const rollup = await tableExists(db, 'readings_hourly');
  const epoch = (ms: number) => `to_timestamp(${ms / 1000})`;
  const months: Date[] = [];
  for (let m = monthStart(new Date(startMs)); m.getTime() < endMs; m = monthStart(m, 1)) months.push(m);
  for (const [n, month] of months.entries()) {
    const name = partitionName(month);
    const monthEnd = monthStart(month, 1).getTime();
    const from = Math.max(startMs, month.getTime());
    const to = Math.min(endMs, monthEnd);
    const minuteFrom = (from - startMs) / MINUTE;
    const minuteTo = Math.min(targetRows, (to - startMs) / MINUTE); // exclusive
    const parts = [
      `select '${tenant.sensorId}'::uuid as sensor_id, ${epoch(startMs)} + m * interval '1 minute' as ts,
              round((20 + 5 * sin(m / 720.0) + random())::numeric, 2)::float8 as value
       from generate_series(${minuteFrom}, ${minuteTo - 1}) m`,
    ];
    if (perFiller > 0) {
      const iFrom = Math.max(0, Math.floor((from - startMs) / fillerStepMs) - 1);
      const iTo = Math.min(perFiller, Math.ceil((to - startMs) / fillerStepMs) + 1); // exclusive
      if (iFrom < iTo) {
        parts.push(
          `select f.sensor_id, ${epoch(startMs)} + (i::float8 * ${fillerStepMs / 1000} + f.idx) * interval '1 second' as ts,
                  round((15 + 10 * random())::numeric, 2)::float8 as value
           from generate_series(${iFrom}, ${iTo - 1}) i cross join bench_fillers f`,
        );
      }
    }
    if (await tableExists(db, name)) throw new Error(`partition ${name} already exists: the bench seeds a fresh database only`);
    await sql.raw(`create table ${name} (like readings including defaults including constraints)`).execute(db);
    await sql
      .raw(
        `insert into ${name} (${columnList}) select ${selectList}
         from (${parts.join(' union all ')}) g where g.ts >= ${epoch(from)} and g.ts < ${epoch(to)} order by g.ts`,
      )
      .execute(db);
    await sql
      .raw(
        `alter table readings attach partition ${name} for values from ('${month.toISOString()}') to ('${new Date(monthEnd).toISOString()}')`,
      )
      .execute(db);
    if (rollup) {
      // What the ingest statement keeps: count/sum/min/max per sensor and UTC hour.
      await sql
        .raw(
          `insert into readings_hourly (sensor_id, bucket, organization_id, n, sum, min, max)
           select sensor_id, date_bin(interval '1 hour', ts, timestamptz 'epoch'), '${tenant.organizationId}'::uuid, count(*), sum(value), min(value), max(value)
           from ${name} group by 1, 2 order by 1, 2`,
        )
        .execute(db);
    }
    options.log(`  ${name} (${n + 1}/${months.length}) ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  await sql`drop table if exists bench_fillers`.execute(db);
  await refreshLatest(db, tenant);
  options.log('vacuum analyze (the steady state autovacuum would reach; keeps it out of the measurements)');
  await sql`vacuum (analyze) readings`.execute(db);
  if (rollup) await sql`vacuum (analyze) readings_hourly`.execute(db);
  if (!options.embedded) await sql`checkpoint`.execute(db);
  const size = await sql<{ bytes: number }>`select (coalesce(sum(pg_total_relation_size(c.oid)), 0))::float8 as bytes
    from pg_class c where c.relname = 'readings' or c.oid in (select inhrelid from pg_inherits where inhparent = 'readings'::regclass)`.execute(
    db,
  );
  const count = await sql<{ n: number }>`select count(*)::float8 as n from readings`.execute(db);
  return {
    status: 'seeded',
    readings: count.rows[0]?.n ?? total,
    sensors: options.sensors + 1,
    targetRows,
    days,
    startMs,
    endMs,
    seconds: (performance.now() - started) / 1000,
    tableBytes: size.rows[0]?.bytes,
  };
}

/** The newest reading of each seeded sensor, as the ingest statement keeps it (sensor_latest). */
async function refreshLatest(db: Db, tenant: Tenant): Promise<void> {
  if (!(await tableExists(db, 'sensor_latest'))) return;
  await sql`
    insert into sensor_latest (sensor_id, organization_id, ts, value, raw_value, received_at, seen_at)
    select s.id, s.organization_id, r.ts, r.value, r.raw_value, r.received_at, r.received_at
    from sensors s cross join lateral (
      select ts, value, raw_value, received_at from readings where sensor_id = s.id order by ts desc limit 1) r
    where s.organization_id = ${tenant.organizationId}
    on conflict (sensor_id) do update set ts = excluded.ts, value = excluded.value, raw_value = excluded.raw_value,
      received_at = excluded.received_at, seen_at = excluded.seen_at`.execute(db);
}

/**
 * The COPY the raw reference runs: the same columns the seed fills, as a text-format row template
 * with %SENSOR%, %TS% and %VALUE% placeholders (tab-separated, column order of the statement).
 */
export async function copyStatement(databaseUrl: string, organizationId: string): Promise<{ copySql: string; row: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const result = await client.query<{
      column_name: string;
      data_type: string;
      is_nullable: string;
      column_default: string | null;
      is_generated: string;
      is_identity: string;
    }>(
      `select column_name, data_type, is_nullable, column_default, is_generated, is_identity from information_schema.columns
       where table_schema = current_schema() and table_name = 'readings' order by ordinal_position`,
    );
    if (result.rows.length === 0) throw new Error('no readings table');
    const names: string[] = [];
    const values: string[] = [];
    for (const c of result.rows) {
      if (c.is_generated === 'ALWAYS') continue;
      const expression = columnExpression(
        {
          name: c.column_name,
          type: c.data_type,
          nullable: c.is_nullable === 'YES',
          hasDefault: c.column_default !== null || c.is_identity === 'YES',
        },
        organizationId,
      );
      if (expression === undefined) continue;
      names.push(`"${c.column_name}"`);
      values.push(
        expression === 'g.sensor_id'
          ? '%SENSOR%'
          : expression === 'g.ts'
            ? '%TS%'
            : expression === 'g.value'
              ? '%VALUE%'
              : expression.startsWith("'")
                ? organizationId
                : '%TS%',
      );
    }
    return { copySql: `copy readings (${names.join(', ')}) from stdin`, row: values.join('\t') };
  } finally {
    await client.end();
  }
}
