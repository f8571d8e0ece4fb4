import { type Updateable, sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';
import type { Alarm, AlarmActivity, AlarmComment, AlarmKind, AlarmStatus, AlarmsTable, Severity } from './alarms.schema.js';

/** Alarms, their history and comments; the evaluation state of thresholds. Every query is scoped by organization. */

export interface ThresholdState {
  thresholdId: string;
  breachSince: number | null;
  breachValue: number | null;
  openRangeAlarmId: string | null;
  openOfflineAlarmId: string | null;
}

/**
 * The states of these thresholds; with `lock`, locked until the transaction ends (in id order, so
 * two transactions never wait on each other crosswise): evaluations that change a threshold's
 * state run one after the other.
 */
export async function readThresholdStates(tx: Db, thresholdIds: readonly string[], lock: boolean): Promise<Map<string, ThresholdState>> {
  if (thresholdIds.length === 0) return new Map();
  const query = tx.selectFrom('alarm_threshold_state').selectAll().where('threshold_id', 'in', thresholdIds).orderBy('threshold_id');
  const rows = await (lock ? query.forUpdate() : query).execute();
  return new Map(
    rows.map((r) => [
      r.threshold_id,
      {
        thresholdId: r.threshold_id,
        breachSince: r.breach_since?.getTime() ?? null,
        breachValue: r.breach_value,
        openRangeAlarmId: r.open_range_alarm_id,
        openOfflineAlarmId: r.open_offline_alarm_id,
      },
    ]),
  );
}

export async function saveThresholdState(tx: Db, state: ThresholdState): Promise<void> {
  await tx
    .updateTable('alarm_threshold_state')
    .set({
      breach_since: state.breachSince === null ? null : new Date(state.breachSince),
      breach_value: state.breachValue,
      open_range_alarm_id: state.openRangeAlarmId,
      open_offline_alarm_id: state.openOfflineAlarmId,
    })
    .where('threshold_id', '=', state.thresholdId)
    .execute();
}

export interface NewAlarm {
  organizationId: string;
  thresholdId: string;
  sensorId: string;
  kind: AlarmKind;
  severity: Severity;
  condition: string;
  value: number | null;
  limit: number | null;
  startedAt: number;
  triggeredAt: number;
}

/** Undefined when the threshold already has an open alarm of that kind (the unique index decides). */
export async function insertAlarm(tx: Db, alarm: NewAlarm): Promise<Alarm | undefined> {
  const { rows } = await sql<Alarm>`
    insert into alarms (organization_id, threshold_id, sensor_id, kind, severity, condition, value, limit_value, started_at, triggered_at)
    values (${alarm.organizationId}, ${alarm.thresholdId}, ${alarm.sensorId}, ${alarm.kind}, ${alarm.severity}, ${alarm.condition},
      ${alarm.value}, ${alarm.limit}, ${new Date(alarm.startedAt)}, ${new Date(alarm.triggeredAt)})
    on conflict (threshold_id, kind) where status <> 'resolved' do nothing
    returning *`.execute(tx);
  return rows[0];
}

export interface Actor {
  userId: string | null;
  kind: 'system' | 'user' | 'client';
}

/** Moves an alarm on (active → acknowledged, or to resolved); undefined when it does not exist or is not in a status it can move from. */
export async function changeAlarmStatus(
  tx: Db,
  organizationId: string,
  id: string,
  to: 'acknowledged' | 'resolved',
  actor: Actor,
  at: Date,
  resolution?: 'auto' | 'user',
): Promise<Alarm | undefined> {
  if (!isUuid(id)) return undefined;
  const from: AlarmStatus[] = to === 'acknowledged' ? ['active'] : ['active', 'acknowledged'];
  const changes: Updateable<AlarmsTable> =
    to === 'acknowledged'
      ? { status: 'acknowledged', acknowledged_at: at, acknowledged_by: actor.userId }
      : { status: 'resolved', resolved_at: at, resolved_by: actor.userId, resolution: resolution ?? 'user' };
  return tx
    .updateTable('alarms')
    .set({ ...changes, updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('status', 'in', from)
    .returningAll()
    .executeTakeFirst();
}

export async function findAlarm(db: Db, organizationId: string, id: string): Promise<Alarm | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('alarms').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** The alarms of these sensors, newest first (`include`): one statement. */
export async function alarmsOfSensors(db: Db, organizationId: string, sensorIds: readonly string[], limit?: number): Promise<Alarm[]> {
  return alarmsWhere(db, organizationId, 'sensor_id', sensorIds, limit);
}

/** The alarms these thresholds raised, newest first (`include`): one statement. */
export async function alarmsOfThresholds(
  db: Db,
  organizationId: string,
  thresholdIds: readonly string[],
  limit?: number,
): Promise<Alarm[]> {
  return alarmsWhere(db, organizationId, 'threshold_id', thresholdIds, limit);
}

async function alarmsWhere(
  db: Db,
  organizationId: string,
  column: 'sensor_id' | 'threshold_id',
  ids: readonly string[],
  limit: number | undefined,
): Promise<Alarm[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db.selectFrom('alarms').selectAll().where('organization_id', '=', organizationId).where(column, 'in', valid);
  return rowsPerOwner(db, query, {
    owner: column,
    order: [
      ['triggered_at', 'desc'],
      ['id', 'asc'],
    ],
    limit,
  });
}

export async function addActivity(
  tx: Db,
  entry: { alarmId: string; organizationId: string; action: string; actor: Actor; note?: string | null; at?: Date },
): Promise<void> {
  await tx
    .insertInto('alarm_activity')
    .values({
      alarm_id: entry.alarmId,
      organization_id: entry.organizationId,
      action: entry.action,
      actor_user_id: entry.actor.userId,
      actor_kind: entry.actor.kind,
      note: entry.note ?? null,
      ...(entry.at && { at: entry.at }),
    })
    .execute();
}

/**
 * An email about the alarm went to `email` (the notifications capability, after sending): the
 * `notified` or `escalated` entry of its history, by the system.
 */
export async function recordNotification(
  tx: Db,
  entry: { alarmId: string; organizationId: string; action: 'notified' | 'escalated'; email: string },
): Promise<void> {
  await addActivity(tx, {
    alarmId: entry.alarmId,
    organizationId: entry.organizationId,
    action: entry.action,
    actor: { userId: null, kind: 'system' },
    note: entry.email,
  });
}

export const ALARM_SORTS: Record<string, SortField> = {
  triggered_at: { column: 'alarms.triggered_at', cast: 'timestamptz' },
  severity: { column: 'alarms.severity', cast: 'text' },
  updated_at: { column: 'alarms.updated_at', cast: 'timestamptz' },
};

export interface AlarmFilter {
  status?: readonly AlarmStatus[] | undefined;
  /** `open`: active or acknowledged. */
  open?: boolean | undefined;
  sensorId?: string | undefined;
  thresholdId?: string | undefined;
  severity?: Severity | undefined;
  kind?: AlarmKind | undefined;
  /** Triggered at or after / before. */
  from?: Date | undefined;
  to?: Date | undefined;
}

export async function listAlarms(db: Db, organizationId: string, filter: AlarmFilter, sort: Sort, page: PageRequest): Promise<Page<Alarm>> {
  let query = db.selectFrom('alarms').selectAll().where('organization_id', '=', organizationId);
  if (filter.status?.length) query = query.where('status', 'in', filter.status);
  if (filter.open !== undefined) query = filter.open ? query.where('status', '<>', 'resolved') : query.where('status', '=', 'resolved');
  if (filter.sensorId !== undefined)
    query = isUuid(filter.sensorId) ? query.where('sensor_id', '=', filter.sensorId) : query.where(sql<boolean>`false`);
  if (filter.thresholdId !== undefined)
    query = isUuid(filter.thresholdId) ? query.where('threshold_id', '=', filter.thresholdId) : query.where(sql<boolean>`false`);
  if (filter.severity !== undefined) query = query.where('severity', '=', filter.severity);
  if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
  if (filter.from !== undefined) query = query.where('triggered_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('triggered_at', '<', filter.to);
  const rows = await paginate(query, sort, 'alarms.id', page).execute();
  return keysetPage(rows, sort, page);
}

export const ACTIVITY_SORTS: Record<string, SortField> = { at: { column: 'alarm_activity.at', cast: 'timestamptz' } };
export const COMMENT_SORTS: Record<string, SortField> = { created_at: { column: 'alarm_comments.created_at', cast: 'timestamptz' } };

export async function listActivity(
  db: Db,
  organizationId: string,
  alarmId: string,
  sort: Sort,
  page: PageRequest,
): Promise<Page<AlarmActivity>> {
  const query = db.selectFrom('alarm_activity').selectAll().where('organization_id', '=', organizationId).where('alarm_id', '=', alarmId);
  return keysetPage(await paginate(query, sort, 'alarm_activity.id', page).execute(), sort, page);
}

export async function listComments(
  db: Db,
  organizationId: string,
  alarmId: string,
  sort: Sort,
  page: PageRequest,
): Promise<Page<AlarmComment>> {
  const query = db.selectFrom('alarm_comments').selectAll().where('organization_id', '=', organizationId).where('alarm_id', '=', alarmId);
  return keysetPage(await paginate(query, sort, 'alarm_comments.id', page).execute(), sort, page);
}

export async function findComment(db: Db, organizationId: string, alarmId: string, id: string): Promise<AlarmComment | undefined> {
  if (!isUuid(alarmId) || !isUuid(id)) return undefined;
  return db
    .selectFrom('alarm_comments')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('alarm_id', '=', alarmId)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** The comments on these alarms, oldest first (`include`): one statement. */
export async function commentsOfAlarms(
  db: Db,
  organizationId: string,
  alarmIds: readonly string[],
  limit?: number,
): Promise<AlarmComment[]> {
  const valid = alarmIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db.selectFrom('alarm_comments').selectAll().where('organization_id', '=', organizationId).where('alarm_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'alarm_id',
    order: [
      ['created_at', 'asc'],
      ['id', 'asc'],
    ],
    limit,
  });
}

export async function insertComment(
  tx: Db,
  organizationId: string,
  alarmId: string,
  authorUserId: string | null,
  body: string,
): Promise<AlarmComment> {
  return tx
    .insertInto('alarm_comments')
    .values({ organization_id: organizationId, alarm_id: alarmId, author_user_id: authorUserId, body })
    .returningAll()
    .executeTakeFirstOrThrow();
}
