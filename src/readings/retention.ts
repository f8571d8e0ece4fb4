import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { isLockTimeout } from '../storage/sql.js';
import { isBeyondHorizon } from './partitions.js';

/**
 * Readings retention: each organization keeps its readings (and their hourly aggregates) for its
 * `readings_retention_days`, or the server's `READINGS_RETENTION_DAYS`, or forever when neither is
 * set. Monthly partitions are shared by every organization, so:
 *
 * - a month older than every organization's period (the horizon) is dropped whole, its partition
 *   detached under a lock waited for one second at most (a long query makes the run skip it, not
 *   queue every request behind it); the partition upkeep no longer recreates such months;
 * - within the months kept, each organization's older readings are deleted sensor by sensor along
 *   the primary key, a bounded batch per statement, so no run holds a long transaction.
 *
 * The latest reading of each sensor (`sensor_latest`) is kept: it says when the sensor last spoke.
 */

const DAY_MS = 86_400_000;

export interface RetentionSettings {
  /** Days kept for organizations without a period of their own; 0: forever. */
  defaultDays: number;
  now?: Date;
  /** Readings deleted per statement. */
  batch?: number;
  lockTimeoutMs?: number;
  stopping?: () => boolean;
}

export interface RetentionResult {
  droppedPartitions: string[];
  /** Partitions to drop whose lock could not be had within the timeout: the next run tries again. */
  busyPartitions: string[];
  deletedReadings: number;
  deletedHourly: number;
}

interface OrganizationPeriod {
  id: string;
  days: number | null;
}

async function organizationPeriods(db: Db, defaultDays: number): Promise<OrganizationPeriod[]> {
  const { rows } = await sql<OrganizationPeriod>`
    select id, coalesce(readings_retention_days, ${defaultDays > 0 ? defaultDays : null}::int) as days from organizations`.execute(db);
  return rows;
}

/**
 * The instant before which no organization keeps readings, or undefined when one keeps them
 * forever (or there is none yet).
 */
export async function readingsHorizon(db: Db, defaultDays: number, now = new Date()): Promise<Date | undefined> {
  return horizonOf(await organizationPeriods(db, defaultDays), now);
}

function horizonOf(periods: OrganizationPeriod[], now: Date): Date | undefined {
  if (periods.length === 0 || periods.some((p) => p.days === null)) return undefined;
  const longest = Math.max(...periods.map((p) => p.days ?? 0));
  return new Date(now.getTime() - longest * DAY_MS);
}

/** The monthly partitions that end at or before `horizon`, oldest first. */
async function partitionsBefore(db: Db, horizon: Date): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'readings'::regclass and c.relname ~ '^readings_p[0-9]{4}_[0-9]{2}$'
    order by c.relname`.execute(db);
  return rows
    .map((r) => r.name)
    .filter((name) => {
      const [year, month] = name.slice('readings_p'.length).split('_').map(Number) as [number, number];
      return isBeyondHorizon(new Date(Date.UTC(year, month - 1, 1)), horizon);
    });
}

/** Detaches and drops one partition; false when its lock was not had within the timeout. */
async function dropPartition(db: Db, name: string, lockTimeoutMs: number): Promise<boolean> {
  try {
    await db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = ${sql.lit(`${lockTimeoutMs}ms`)}`.execute(trx);
      await sql`alter table readings detach partition ${sql.table(name)}`.execute(trx);
      await sql`drop table ${sql.table(name)}`.execute(trx);
    });
    return true;
  } catch (error) {
    if (isLockTimeout(error)) return false;
    throw error;
  }
}

/** Deletes one sensor's readings and hourly aggregates older than `before`, `batch` rows a statement. */
async function purgeSensor(db: Db, sensorId: string, before: Date, batch: number, stopping: () => boolean) {
  let readings = 0;
  while (!stopping()) {
    const result = await sql`
      delete from readings where sensor_id = ${sensorId} and ts in (
        select ts from readings where sensor_id = ${sensorId} and ts < ${before} order by ts limit ${batch})`.execute(db);
    const n = Number(result.numAffectedRows ?? 0);
    readings += n;
    if (n < batch) break;
  }
  // An hour is dropped once all of it is older than the period; its row count is bounded by hours.
  const hourly = await sql`
    delete from readings_hourly where sensor_id = ${sensorId}
    and bucket <= ${new Date(before.getTime() - 3_600_000)}`.execute(db);
  return { readings, hourly: Number(hourly.numAffectedRows ?? 0) };
}

export async function enforceReadingsRetention(db: Db, settings: RetentionSettings): Promise<RetentionResult> {
  const now = settings.now ?? new Date();
  const batch = settings.batch ?? 10_000;
  const stopping = settings.stopping ?? (() => false);
  const result: RetentionResult = { droppedPartitions: [], busyPartitions: [], deletedReadings: 0, deletedHourly: 0 };
  const periods = await organizationPeriods(db, settings.defaultDays);

  // Whole months first: the row-by-row deletes below then only touch the months still kept.
  const horizon = horizonOf(periods, now);
  if (horizon) {
    for (const name of await partitionsBefore(db, horizon)) {
      if (stopping()) return result;
      if (await dropPartition(db, name, settings.lockTimeoutMs ?? 1000)) result.droppedPartitions.push(name);
      else result.busyPartitions.push(name);
    }
  }

  for (const organization of periods) {
    if (organization.days === null) continue;
    const before = new Date(now.getTime() - organization.days * DAY_MS);
    const sensors = await db.selectFrom('sensors').select('id').where('organization_id', '=', organization.id).execute();
    for (const sensor of sensors) {
      if (stopping()) return result;
      const purged = await purgeSensor(db, sensor.id, before, batch, stopping);
      result.deletedReadings += purged.readings;
      result.deletedHourly += purged.hourly;
    }
  }
  return result;
}
