import type { CompiledQuery } from 'kysely';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { ScalingPoint, Sensor } from './inventory.schema.js';
import { preparedStatement } from '../storage/prepared.js';
import { definedOnly, escapeLike, isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';

/** Sensors of an organization. Every query is scoped by organization_id. */

export const SENSOR_SORTS: Record<string, SortField> = {
  key: { column: 'sensors.key', cast: 'text' },
  kind: { column: 'sensors.kind', cast: 'text' },
  created_at: { column: 'sensors.created_at', cast: 'timestamptz' },
  updated_at: { column: 'sensors.updated_at', cast: 'timestamptz' },
};

export interface SensorFilter {
  deviceId?: string | undefined;
  locationId?: string | undefined;
  groupId?: string | undefined;
  scalingProfileId?: string | undefined;
  kind?: string | undefined;
  key?: string | undefined;
  /** Case-insensitive substring of key or name. */
  q?: string | undefined;
}

const empty = <T>(page: PageRequest): Page<T> => ({ items: [], nextCursor: undefined, limit: page.limit });

/**
 * A sensor as the API shows it: its row and its newest reading (null until it has one). The
 * reading is kept in `sensor_latest` by the ingest statement, never on the sensors row.
 */
export type SensorView = Sensor & { last_reading_at: Date | null; last_value: number | null; last_raw_value: number | null };

/** A sensor that cannot have readings yet (just created). */
export const withoutReadings = (sensor: Sensor): SensorView => ({
  ...sensor,
  last_reading_at: null,
  last_value: null,
  last_raw_value: null,
});

/** `from sensors ⟕ sensor_latest` (one primary-key probe per sensor), selecting a SensorView. */
function selectSensorViews(db: Db) {
  return db
    .selectFrom('sensors')
    .leftJoin('sensor_latest', (join) =>
      join.onRef('sensor_latest.sensor_id', '=', 'sensors.id').onRef('sensor_latest.organization_id', '=', 'sensors.organization_id'),
    )
    .selectAll('sensors')
    .select(['sensor_latest.ts as last_reading_at', 'sensor_latest.value as last_value', 'sensor_latest.raw_value as last_raw_value']);
}

export async function listSensors(
  db: Db,
  organizationId: string,
  filter: SensorFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<SensorView>> {
  let query = selectSensorViews(db).where('sensors.organization_id', '=', organizationId);
  for (const id of [filter.deviceId, filter.locationId, filter.groupId, filter.scalingProfileId]) {
    if (id !== undefined && !isUuid(id)) return empty(page);
  }
  if (filter.deviceId !== undefined) query = query.where('sensors.device_id', '=', filter.deviceId);
  if (filter.scalingProfileId !== undefined) query = query.where('sensors.scaling_profile_id', '=', filter.scalingProfileId);
  if (filter.kind !== undefined) query = query.where('sensors.kind', '=', filter.kind);
  if (filter.key !== undefined) query = query.where('sensors.key', '=', filter.key);
  if (filter.locationId !== undefined) {
    const locationId = filter.locationId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('devices')
          .select('devices.id')
          .whereRef('devices.id', '=', 'sensors.device_id')
          .where('devices.organization_id', '=', organizationId)
          .where('devices.location_id', '=', locationId),
      ),
    );
  }
  if (filter.groupId !== undefined) {
    const groupId = filter.groupId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('group_sensors')
          .select('group_sensors.sensor_id')
          .whereRef('group_sensors.sensor_id', '=', 'sensors.id')
          .where('group_sensors.organization_id', '=', organizationId)
          .where('group_sensors.group_id', '=', groupId),
      ),
    );
  }
  if (filter.q !== undefined) {
    const pattern = `%${escapeLike(filter.q)}%`;
    query = query.where((eb) => eb.or([eb('sensors.key', 'ilike', pattern), eb('sensors.name', 'ilike', pattern)]));
  }
  const rows = await paginate(query, sort, 'sensors.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findSensor(db: Db, organizationId: string, id: string): Promise<SensorView | undefined> {
  if (!isUuid(id)) return undefined;
  return selectSensorViews(db).where('sensors.organization_id', '=', organizationId).where('sensors.id', '=', id).executeTakeFirst();
}

/** Sensors by id (`include`, GraphQL's batched `Alarm.sensor`): one statement, ids that are not the organization's left out. */
export async function findSensorsByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<SensorView[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return selectSensorViews(db).where('sensors.organization_id', '=', organizationId).where('sensors.id', 'in', valid).execute();
}

/** The sensors of these devices, by key (`include`, GraphQL's batched `Device.sensors`): one statement. */
export async function sensorsOfDevices(
  db: Db,
  organizationId: string,
  deviceIds: readonly string[],
  limit?: number,
): Promise<SensorView[]> {
  return sensorsWhere(db, organizationId, 'sensors.device_id', deviceIds, limit);
}

/** The sensors scaled by these profiles, by key (`include`): one statement. */
export async function sensorsOfScalingProfiles(
  db: Db,
  organizationId: string,
  profileIds: readonly string[],
  limit?: number,
): Promise<SensorView[]> {
  return sensorsWhere(db, organizationId, 'sensors.scaling_profile_id', profileIds, limit);
}

async function sensorsWhere(
  db: Db,
  organizationId: string,
  column: 'sensors.device_id' | 'sensors.scaling_profile_id',
  ids: readonly string[],
  limit: number | undefined,
): Promise<SensorView[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  const query = selectSensorViews(db).where('sensors.organization_id', '=', organizationId).where(column, 'in', valid);
  return rowsPerOwner(db, query, { owner: column, order: SENSORS_BY_KEY, limit });
}

const SENSORS_BY_KEY = [
  ['sensors.key', 'asc'],
  ['sensors.id', 'asc'],
] as const;

/** The sensors of these groups, by key, each with its group (`include`): one statement. */
export async function sensorsOfGroups(
  db: Db,
  organizationId: string,
  groupIds: readonly string[],
  limit?: number,
): Promise<(SensorView & { group_id: string })[]> {
  const valid = groupIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = selectSensorViews(db)
    .innerJoin('group_sensors', (join) =>
      join.onRef('group_sensors.sensor_id', '=', 'sensors.id').onRef('group_sensors.organization_id', '=', 'sensors.organization_id'),
    )
    .select('group_sensors.group_id')
    .where('sensors.organization_id', '=', organizationId)
    .where('group_sensors.group_id', 'in', valid);
  return rowsPerOwner(db, query, { owner: 'group_sensors.group_id', order: SENSORS_BY_KEY, limit });
}

export async function findSensorByKey(db: Db, organizationId: string, deviceId: string, key: string): Promise<Sensor | undefined> {
  if (!isUuid(deviceId)) return undefined;
  return db
    .selectFrom('sensors')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('device_id', '=', deviceId)
    .where('key', '=', key)
    .executeTakeFirst();
}

export interface SensorFields {
  device_id: string;
  key: string;
  kind: string;
  unit?: string | undefined;
  name?: string | null | undefined;
  scaling_profile_id?: string | null | undefined;
  offline_after_seconds?: number | null | undefined;
}

export async function insertSensor(db: Db, organizationId: string, fields: SensorFields): Promise<Sensor> {
  return db
    .insertInto('sensors')
    .values({
      organization_id: organizationId,
      device_id: fields.device_id,
      key: fields.key,
      kind: fields.kind,
      unit: fields.unit ?? '',
      name: fields.name ?? null,
      scaling_profile_id: fields.scaling_profile_id ?? null,
      offline_after_seconds: fields.offline_after_seconds ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Updates the sensor and answers it with its newest reading, in one statement. */
export async function updateSensor(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<Omit<SensorFields, 'device_id'>>,
): Promise<SensorView | undefined> {
  if (!isUuid(id)) return undefined;
  const set = definedOnly(changes);
  if (Object.keys(set).length === 0) return findSensor(db, organizationId, id);
  return db
    .with('updated', (qb) =>
      qb
        .updateTable('sensors')
        .set({ ...set, updated_at: new Date() })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .returningAll(),
    )
    .selectFrom('updated')
    .leftJoin('sensor_latest', (join) =>
      join.onRef('sensor_latest.sensor_id', '=', 'updated.id').onRef('sensor_latest.organization_id', '=', 'updated.organization_id'),
    )
    .selectAll('updated')
    .select(['sensor_latest.ts as last_reading_at', 'sensor_latest.value as last_value', 'sensor_latest.raw_value as last_raw_value'])
    .executeTakeFirst();
}

export async function deleteSensor(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db.deleteFrom('sensors').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Creates the sensor with that key on the device, or updates kind/unit/name (provisioning). */
export async function upsertSensorByKey(
  db: Db,
  organizationId: string,
  deviceId: string,
  fields: { key: string; kind: string; unit: string; name?: string | undefined },
): Promise<Sensor> {
  const existing = await findSensorByKey(db, organizationId, deviceId, fields.key);
  if (!existing) return insertSensor(db, organizationId, { device_id: deviceId, ...fields });
  const changes = { kind: fields.kind, unit: fields.unit, ...(fields.name !== undefined && { name: fields.name }) };
  if (Object.entries(changes).every(([k, v]) => existing[k as keyof Sensor] === v)) return existing;
  return (await updateSensor(db, organizationId, existing.id, changes)) ?? existing;
}

/**
 * What ingest needs to turn a raw value into a reported one: the sensor, its scaling profile and
 * the offset of its active calibration, for the sensors of this organization among `ids`, or of
 * the devices among `keys`. Sensors of other organizations or devices are absent from the result.
 */
export interface IngestTarget {
  sensor: Pick<Sensor, 'id' | 'device_id' | 'key'>;
  scaling: { kind: 'linear'; scale: number; offset: number } | { kind: 'piecewise_linear'; points: ScalingPoint[] } | null;
  calibrationOffset: number;
}

/**
 * The two lookups of ingest, prepared once per connection (array parameters: the same text for
 * any number of sensors), asked for every batch and every group of MQTT messages.
 */
const INGEST_TARGETS_FROM = `
  select s.id, s.device_id, s.key, p.kind as scaling_kind, p.scale as scaling_scale, p."offset" as scaling_offset,
         p.points as scaling_points, c."offset" as calibration_offset
  from sensors s
  left join scaling_profiles p on p.id = s.scaling_profile_id and p.organization_id = s.organization_id
  left join calibrations c on c.sensor_id = s.id and c.organization_id = s.organization_id and c.active
  where s.organization_id = $1::uuid`;
const INGEST_TARGETS_BY_ID = preparedStatement('ingest_targets_by_id', `${INGEST_TARGETS_FROM} and s.id = any($2::uuid[])`);
/** Several devices' keys at once (a group of MQTT messages): any of the keys on any of the devices, a superset the caller narrows to each device's own. */
const INGEST_TARGETS_BY_KEY = preparedStatement(
  'ingest_targets_by_key',
  `${INGEST_TARGETS_FROM} and s.device_id = any($2::uuid[]) and s.key = any($3::text[])`,
);

interface IngestTargetRow {
  id: string;
  device_id: string;
  key: string;
  scaling_kind: 'linear' | 'piecewise_linear' | null;
  scaling_scale: number | null;
  scaling_offset: number | null;
  scaling_points: ScalingPoint[] | null;
  calibration_offset: number | null;
}

export async function ingestTargets(
  db: Db,
  organizationId: string,
  select: { deviceIds: readonly string[]; keys: readonly string[] } | { ids: readonly string[] },
): Promise<IngestTarget[]> {
  let statement: CompiledQuery;
  if ('ids' in select) {
    const ids = [...new Set(select.ids.filter(isUuid))];
    if (ids.length === 0) return [];
    statement = INGEST_TARGETS_BY_ID.compile([organizationId, ids]);
  } else {
    const deviceIds = [...new Set(select.deviceIds.filter(isUuid))];
    if (deviceIds.length === 0 || select.keys.length === 0) return [];
    statement = INGEST_TARGETS_BY_KEY.compile([organizationId, deviceIds, [...new Set(select.keys)]]);
  }
  const { rows } = await db.executeQuery<IngestTargetRow>(statement);
  return rows.map(({ id, device_id, key, scaling_kind, scaling_scale, scaling_offset, scaling_points, calibration_offset }) => ({
    sensor: { id, device_id, key },
    scaling:
      scaling_kind === 'linear'
        ? { kind: 'linear' as const, scale: scaling_scale ?? 1, offset: scaling_offset ?? 0 }
        : scaling_kind === 'piecewise_linear'
          ? { kind: 'piecewise_linear' as const, points: scaling_points ?? [] }
          : null,
    calibrationOffset: calibration_offset ?? 0,
  }));
}
