import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { Device, Location } from './inventory.schema.js';
import { definedOnly, escapeLike, isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';

/** Devices of an organization, and the device-token lookup. Every query but that one is scoped by organization_id. */

export const DEVICE_SORTS: Record<string, SortField> = {
  name: { column: 'devices.name', cast: 'text' },
  serial: { column: 'devices.serial', cast: 'text' },
  created_at: { column: 'devices.created_at', cast: 'timestamptz' },
  updated_at: { column: 'devices.updated_at', cast: 'timestamptz' },
};

export interface DeviceFilter {
  serial?: string | undefined;
  locationId?: string | undefined;
  model?: string | undefined;
  /** Case-insensitive substring of name or serial. */
  q?: string | undefined;
  /** Devices with a sensor in this group. */
  groupId?: string | undefined;
}

export async function listDevices(
  db: Db,
  organizationId: string,
  filter: DeviceFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Device>> {
  let query = db.selectFrom('devices').selectAll('devices').where('devices.organization_id', '=', organizationId);
  if (filter.serial !== undefined) query = query.where('devices.serial', '=', filter.serial);
  if (filter.model !== undefined) query = query.where('devices.model', '=', filter.model);
  if (filter.locationId !== undefined) {
    if (!isUuid(filter.locationId)) return { items: [], nextCursor: undefined, limit: page.limit };
    query = query.where('devices.location_id', '=', filter.locationId);
  }
  if (filter.groupId !== undefined) {
    if (!isUuid(filter.groupId)) return { items: [], nextCursor: undefined, limit: page.limit };
    const groupId = filter.groupId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('group_sensors')
          .innerJoin('sensors', (join) =>
            join.onRef('sensors.id', '=', 'group_sensors.sensor_id').onRef('sensors.organization_id', '=', 'group_sensors.organization_id'),
          )
          .select('group_sensors.sensor_id')
          .where('group_sensors.organization_id', '=', organizationId)
          .where('group_sensors.group_id', '=', groupId)
          .whereRef('sensors.device_id', '=', 'devices.id'),
      ),
    );
  }
  if (filter.q !== undefined) {
    const pattern = `%${escapeLike(filter.q)}%`;
    query = query.where((eb) => eb.or([eb('devices.name', 'ilike', pattern), eb('devices.serial', 'ilike', pattern)]));
  }
  const rows = await paginate(query, sort, 'devices.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findDevice(db: Db, organizationId: string, id: string): Promise<Device | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** Several devices by id, in one statement (`include`, GraphQL's batched `Sensor.device`); ids of other organizations are absent. */
export async function findDevicesByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<Device[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('id', 'in', valid).execute();
}

/** The devices at these locations, by name (for `include`): one statement. */
export async function devicesAtLocations(
  db: Db,
  organizationId: string,
  locationIds: readonly string[],
  limit?: number,
): Promise<Device[]> {
  const valid = locationIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('location_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'location_id',
    order: [
      ['name', 'asc'],
      ['id', 'asc'],
    ],
    limit,
  });
}

/** The location of each of these sensors, through its device (for `include`): one statement. */
export async function locationsOfSensors(
  db: Db,
  organizationId: string,
  sensorIds: readonly string[],
): Promise<{ sensor_id: string; location: Location }[]> {
  const valid = sensorIds.filter(isUuid);
  if (valid.length === 0) return [];
  const rows = await db
    .selectFrom('sensors')
    .innerJoin('devices', (join) =>
      join.onRef('devices.id', '=', 'sensors.device_id').onRef('devices.organization_id', '=', 'sensors.organization_id'),
    )
    .innerJoin('locations', (join) =>
      join.onRef('locations.id', '=', 'devices.location_id').onRef('locations.organization_id', '=', 'devices.organization_id'),
    )
    .selectAll('locations')
    .select('sensors.id as sensor_id')
    .where('sensors.organization_id', '=', organizationId)
    .where('sensors.id', 'in', valid)
    .execute();
  return rows.map(({ sensor_id, ...location }) => ({ sensor_id, location }));
}

export async function findDeviceBySerial(db: Db, organizationId: string, serial: string): Promise<Device | undefined> {
  return db.selectFrom('devices').selectAll().where('organization_id', '=', organizationId).where('serial', '=', serial).executeTakeFirst();
}

/** The device-token lookup (by SHA-256 of the token): the one unscoped query, since the token names its organization. */
/**
 * Every device with this serial, whatever its organization (at most two: the caller needs only
 * to know whether the serial is ambiguous). For topics of an existing broker, which name a device
 * by serial alone.
 */
export async function devicesWithSerial(db: Db, serial: string): Promise<Pick<Device, 'id' | 'organization_id'>[]> {
  return db.selectFrom('devices').select(['id', 'organization_id']).where('serial', '=', serial).limit(2).execute();
}

export async function findDeviceByTokenHash(db: Db, tokenHash: string): Promise<Device | undefined> {
  return db.selectFrom('devices').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export interface DeviceFields {
  serial: string;
  name: string;
  description?: string | null | undefined;
  model?: string | null | undefined;
  firmware_version?: string | null | undefined;
  location_id?: string | null | undefined;
}

export interface DeviceToken {
  hash: string;
  prefix: string;
}

export async function insertDevice(db: Db, organizationId: string, fields: DeviceFields, token: DeviceToken | null): Promise<Device> {
  return db
    .insertInto('devices')
    .values({
      organization_id: organizationId,
      serial: fields.serial,
      name: fields.name,
      description: fields.description ?? null,
      model: fields.model ?? null,
      firmware_version: fields.firmware_version ?? null,
      location_id: fields.location_id ?? null,
      token_hash: token?.hash ?? null,
      token_prefix: token?.prefix ?? null,
      token_rotated_at: token ? new Date() : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updateDevice(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<DeviceFields>,
): Promise<Device | undefined> {
  if (!isUuid(id)) return undefined;
  const set = definedOnly(changes);
  if (Object.keys(set).length === 0) return findDevice(db, organizationId, id);
  return db
    .updateTable('devices')
    .set({ ...set, updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Replaces the device's token hash; the old token stops resolving at once (in the database). */
export async function setDeviceToken(db: Db, organizationId: string, id: string, token: DeviceToken | null): Promise<Device | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('devices')
    .set({ token_hash: token?.hash ?? null, token_prefix: token?.prefix ?? null, token_rotated_at: new Date(), updated_at: new Date() })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/** Deletes the device with its sensors (and their calibrations, group memberships). */
export async function deleteDevice(db: Db, organizationId: string, id: string): Promise<Device | undefined> {
  if (!isUuid(id)) return undefined;
  return db.deleteFrom('devices').where('organization_id', '=', organizationId).where('id', '=', id).returningAll().executeTakeFirst();
}
