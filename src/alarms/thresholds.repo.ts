import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';
import type { AlarmThreshold, Severity } from './alarms.schema.js';

/** Alarm thresholds of an organization. Every query is scoped by organization_id. */

export const THRESHOLD_SORTS: Record<string, SortField> = {
  created_at: { column: 'alarm_thresholds.created_at', cast: 'timestamptz' },
  updated_at: { column: 'alarm_thresholds.updated_at', cast: 'timestamptz' },
};

export interface ThresholdFilter {
  sensorId?: string | undefined;
  enabled?: boolean | undefined;
  severity?: Severity | undefined;
}

export async function listThresholds(
  db: Db,
  organizationId: string,
  filter: ThresholdFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<AlarmThreshold>> {
  let query = db.selectFrom('alarm_thresholds').selectAll().where('organization_id', '=', organizationId);
  if (filter.sensorId !== undefined)
    query = isUuid(filter.sensorId) ? query.where('sensor_id', '=', filter.sensorId) : query.where(sql<boolean>`false`);
  if (filter.enabled !== undefined) query = query.where('enabled', '=', filter.enabled);
  if (filter.severity !== undefined) query = query.where('severity', '=', filter.severity);
  return keysetPage(await paginate(query, sort, 'alarm_thresholds.id', page).execute(), sort, page);
}

export async function findThreshold(db: Db, organizationId: string, id: string): Promise<AlarmThreshold | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .selectFrom('alarm_thresholds')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** Alarm thresholds by id (for `include`): one statement, ids that are not the organization's left out. */
export async function findThresholdsByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<AlarmThreshold[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return db.selectFrom('alarm_thresholds').selectAll().where('organization_id', '=', organizationId).where('id', 'in', valid).execute();
}

/** The thresholds watching these sensors, oldest first (for `include`): one statement. */
export async function thresholdsOfSensors(
  db: Db,
  organizationId: string,
  sensorIds: readonly string[],
  limit?: number,
): Promise<AlarmThreshold[]> {
  const valid = sensorIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db.selectFrom('alarm_thresholds').selectAll().where('organization_id', '=', organizationId).where('sensor_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'sensor_id',
    order: [
      ['created_at', 'asc'],
      ['id', 'asc'],
    ],
    limit,
  });
}

export interface ThresholdFields {
  sensor_id: string;
  name: string | null;
  min: number | null;
  max: number | null;
  delay_seconds: number;
  severity: Severity;
  offline_after_seconds: number | null;
  enabled: boolean;
}

/** The threshold and its evaluation state, together. */
export async function insertThreshold(db: Db, organizationId: string, fields: ThresholdFields): Promise<AlarmThreshold> {
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .insertInto('alarm_thresholds')
      .values({ organization_id: organizationId, ...fields })
      .returningAll()
      .executeTakeFirstOrThrow();
    await tx.insertInto('alarm_threshold_state').values({ threshold_id: row.id, organization_id: organizationId }).execute();
    return row;
  });
}

/**
 * A changed range starts evaluation afresh (an excursion under the old limits is forgotten);
 * open alarms stay until resolved.
 */
export async function updateThreshold(
  db: Db,
  organizationId: string,
  id: string,
  fields: ThresholdFields,
): Promise<AlarmThreshold | undefined> {
  if (!isUuid(id)) return undefined;
  return db.transaction().execute(async (tx) => {
    const row = await tx
      .updateTable('alarm_thresholds')
      .set({ ...fields, updated_at: new Date() })
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (row)
      await tx
        .updateTable('alarm_threshold_state')
        .set({ breach_since: null, breach_value: null })
        .where('threshold_id', '=', id)
        .execute();
    return row;
  });
}

/** The state row is locked first, in the order evaluation takes its locks, so the two cannot deadlock. */
export async function deleteThreshold(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  return db.transaction().execute(async (tx) => {
    await tx.selectFrom('alarm_threshold_state').select('threshold_id').where('threshold_id', '=', id).forUpdate().execute();
    const result = await tx
      .deleteFrom('alarm_thresholds')
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  });
}

/** What evaluation needs of a threshold. */
export interface ActiveThreshold {
  id: string;
  organizationId: string;
  sensorId: string;
  min: number | null;
  max: number | null;
  delaySeconds: number;
  severity: Severity;
  offlineAfterSeconds: number | null;
}

const active = (r: AlarmThreshold): ActiveThreshold => ({
  id: r.id,
  organizationId: r.organization_id,
  sensorId: r.sensor_id,
  min: r.min,
  max: r.max,
  delaySeconds: r.delay_seconds,
  severity: r.severity,
  offlineAfterSeconds: r.offline_after_seconds,
});

export async function enabledThresholds(db: Db, organizationId: string): Promise<ActiveThreshold[]> {
  const rows = await db
    .selectFrom('alarm_thresholds')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('enabled', '=', true)
    .execute();
  return rows.map(active);
}

/** Enabled range thresholds whose excursion has lasted its delay with no open alarm (no reading came to trigger it). */
export async function thresholdsWithDueBreaches(db: Db, limit: number): Promise<ActiveThreshold[]> {
  const { rows } = await sql<AlarmThreshold>`
    select t.* from alarm_threshold_state s join alarm_thresholds t on t.id = s.threshold_id
    where t.enabled and s.open_range_alarm_id is null and s.breach_since is not null
      and s.breach_since <= now() - t.delay_seconds * interval '1 second'
    limit ${limit}`.execute(db);
  return rows.map(active);
}

/**
 * Enabled offline watches whose sensor has been silent for its period, with no open offline
 * alarm; and since when it is silent: its last reading, but never before the watch began or its
 * last offline alarm was resolved (a person resolving it while the sensor is still silent is not
 * contradicted at the next check; a full period must pass again). `thresholdId`: that one only.
 */
export async function silentSensors(db: Db, limit: number, thresholdId?: string): Promise<(ActiveThreshold & { lastHeard: number })[]> {
  const { rows } = await sql<AlarmThreshold & { last_heard: Date }>`
    select * from (
      select t.*, greatest(l.seen_at, t.created_at,
        (select max(a.resolved_at) from alarms a where a.threshold_id = t.id and a.kind = 'offline')) as last_heard
      from alarm_thresholds t
      join alarm_threshold_state s on s.threshold_id = t.id
      left join sensor_latest l on l.sensor_id = t.sensor_id
      where t.enabled and t.offline_after_seconds is not null and s.open_offline_alarm_id is null
        ${thresholdId === undefined ? sql`` : sql`and t.id = ${thresholdId}`}
    ) as watched
    where last_heard < now() - offline_after_seconds * interval '1 second'
    limit ${limit}`.execute(db);
  return rows.map((r) => ({ ...active(r), lastHeard: r.last_heard.getTime() }));
}
