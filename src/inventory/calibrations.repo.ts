import { sql } from 'kysely';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { Calibration } from './inventory.schema.js';
import { definedOnly, isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';

/** Calibration records of an organization's sensors. Every query is scoped by organization_id. */

export const CALIBRATION_SORTS: Record<string, SortField> = {
  calibrated_at: { column: 'calibrations.calibrated_at', cast: 'timestamptz' },
  created_at: { column: 'calibrations.created_at', cast: 'timestamptz' },
  updated_at: { column: 'calibrations.updated_at', cast: 'timestamptz' },
};

export interface CalibrationFilter {
  sensorId?: string | undefined;
  deviceId?: string | undefined;
  active?: boolean | undefined;
  /** Calibrations due before this instant (due_at < dueBefore). */
  dueBefore?: Date | undefined;
  dueAfter?: Date | undefined;
}

export async function listCalibrations(
  db: Db,
  organizationId: string,
  filter: CalibrationFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Calibration>> {
  if ((filter.sensorId !== undefined && !isUuid(filter.sensorId)) || (filter.deviceId !== undefined && !isUuid(filter.deviceId))) {
    return { items: [], nextCursor: undefined, limit: page.limit };
  }
  let query = db.selectFrom('calibrations').selectAll('calibrations').where('calibrations.organization_id', '=', organizationId);
  if (filter.sensorId !== undefined) query = query.where('calibrations.sensor_id', '=', filter.sensorId);
  if (filter.active !== undefined) query = query.where('calibrations.active', '=', filter.active);
  if (filter.dueBefore !== undefined) query = query.where('calibrations.due_at', '<', filter.dueBefore);
  if (filter.dueAfter !== undefined) query = query.where('calibrations.due_at', '>=', filter.dueAfter);
  if (filter.deviceId !== undefined) {
    const deviceId = filter.deviceId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('sensors')
          .select('sensors.id')
          .whereRef('sensors.id', '=', 'calibrations.sensor_id')
          .where('sensors.organization_id', '=', organizationId)
          .where('sensors.device_id', '=', deviceId),
      ),
    );
  }
  const rows = await paginate(query, sort, 'calibrations.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findCalibration(db: Db, organizationId: string, id: string): Promise<Calibration | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('calibrations').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** The calibrations of these sensors, newest first (for `include`): one statement. */
export async function calibrationsOfSensors(
  db: Db,
  organizationId: string,
  sensorIds: readonly string[],
  limit?: number,
): Promise<Calibration[]> {
  const valid = sensorIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db.selectFrom('calibrations').selectAll().where('organization_id', '=', organizationId).where('sensor_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'sensor_id',
    order: [
      ['calibrated_at', 'desc'],
      ['id', 'asc'],
    ],
    limit,
  });
}

/** The calibrations of these devices' sensors, newest first, each with its device (`include`): one statement. */
export async function calibrationsOfDevices(
  db: Db,
  organizationId: string,
  deviceIds: readonly string[],
  limit?: number,
): Promise<(Calibration & { device_id: string })[]> {
  const valid = deviceIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db
    .selectFrom('calibrations')
    .innerJoin('sensors', (join) =>
      join.onRef('sensors.id', '=', 'calibrations.sensor_id').onRef('sensors.organization_id', '=', 'calibrations.organization_id'),
    )
    .selectAll('calibrations')
    .select('sensors.device_id')
    .where('calibrations.organization_id', '=', organizationId)
    .where('sensors.device_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'sensors.device_id',
    order: [
      ['calibrations.calibrated_at', 'desc'],
      ['calibrations.id', 'asc'],
    ],
    limit,
  });
}

export interface CalibrationFields {
  sensor_id: string;
  calibrated_at: Date;
  due_at?: Date | null | undefined;
  offset?: number | undefined;
  certificate?: string | null | undefined;
  certificate_url?: string | null | undefined;
  performed_by?: string | null | undefined;
  notes?: string | null | undefined;
  active?: boolean | undefined;
}

async function deactivateOthers(db: Db, organizationId: string, sensorId: string, keep?: string): Promise<void> {
  let query = db
    .updateTable('calibrations')
    .set({ active: false, updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('sensor_id', '=', sensorId)
    .where('active', '=', true);
  if (keep) query = query.where('id', '!=', keep);
  await query.execute();
}

/** Records a calibration; an active one supersedes the sensor's previous active calibration. */
export async function insertCalibration(db: Db, organizationId: string, fields: CalibrationFields): Promise<Calibration> {
  return db.transaction().execute(async (tx) => {
    const active = fields.active ?? true;
    if (active) await deactivateOthers(tx, organizationId, fields.sensor_id);
    return tx
      .insertInto('calibrations')
      .values({
        organization_id: organizationId,
        sensor_id: fields.sensor_id,
        calibrated_at: fields.calibrated_at,
        due_at: fields.due_at ?? null,
        offset: fields.offset ?? 0,
        certificate: fields.certificate ?? null,
        certificate_url: fields.certificate_url ?? null,
        performed_by: fields.performed_by ?? null,
        notes: fields.notes ?? null,
        active,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

export async function updateCalibration(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<Omit<CalibrationFields, 'sensor_id'>>,
): Promise<Calibration | undefined> {
  if (!isUuid(id)) return undefined;
  return db.transaction().execute(async (tx) => {
    const current = await findCalibration(tx, organizationId, id);
    if (!current) return undefined;
    if (changes.active === true) await deactivateOthers(tx, organizationId, current.sensor_id, id);
    const set = definedOnly(changes);
    if (Object.keys(set).length === 0) return current;
    return (
      tx
        .updateTable('calibrations')
        // A new due date raises its own calibration.due event when it comes.
        .set({ ...set, ...(dueDateChanges(current.due_at, changes.due_at) && { due_event_at: null }), updated_at: new Date() })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst()
    );
  });
}

/** Whether a PATCH moves the due date (resending the same date raises no second event). */
function dueDateChanges(current: Date | null, next: Date | string | null | undefined): boolean {
  if (next === undefined) return false;
  const time = (value: Date | string | null) => (value === null ? null : new Date(value).getTime());
  return time(current) !== time(next);
}

/**
 * Active calibrations that have come due and whose event is not raised yet, marked raised, up to
 * `limit`: inside the caller's transaction, which emits their events (SKIP LOCKED: two processes
 * never take the same one).
 */
export async function takeDueCalibrations(tx: Db, limit: number): Promise<Calibration[]> {
  const { rows } = await sql<Calibration>`
    update calibrations set due_event_at = now()
    where id in (
      select id from calibrations
      where active and due_event_at is null and due_at <= now()
      order by due_at limit ${limit}
      for update skip locked)
    returning *`.execute(tx);
  return rows;
}

export async function deleteCalibration(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db.deleteFrom('calibrations').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
