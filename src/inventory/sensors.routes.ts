import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { Nullable, SearchQuery, Timestamp, iso } from '../api/kit.js';
import type { ResourceType } from '../api/documents.js';
import { ownedBy } from '../api/compound.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { alarmsOfSensors } from '../alarms/alarms.repo.js';
import { thresholdsOfSensors } from '../alarms/thresholds.repo.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { calibrationsOfSensors } from './calibrations.repo.js';
import { findDevicesByIds, locationsOfSensors } from './devices.repo.js';
import { findScalingProfilesByIds } from './scaling-profiles.repo.js';
import {
  SENSOR_SORTS,
  type SensorView,
  deleteSensor,
  findSensor,
  insertSensor,
  listSensors,
  updateSensor,
  withoutReadings,
} from './sensors.repo.js';

export const SensorKey = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,64}$',
  description: 'Unique per device; devices name their sensors by key at ingest.',
});
export const SensorKind = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'What is measured: temperature, humidity, co2, pressure, …',
});
export const SensorUnit = Type.String({ maxLength: 32, description: 'Engineering unit of reported values, e.g. °C, %.' });

export const SensorResource: ResourceType<SensorView> = {
  type: 'sensors',
  id: (row) => row.id,
  path: (row) => `/v1/sensors/${row.id}`,
  attributes: (row) => ({
    key: row.key,
    kind: row.kind,
    unit: row.unit,
    name: row.name,
    offline_after_seconds: row.offline_after_seconds,
    last_reading_at: iso(row.last_reading_at),
    last_value: row.last_value,
    last_raw_value: row.last_raw_value,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    device: {
      type: 'devices',
      field: 'device_id',
      get: (row) => row.device_id,
      related: (row) => `/v1/devices/${row.device_id}`,
      include: { byIds: findDevicesByIds },
    },
    // The device's location: no column of the sensor, so its linkage is there once included.
    location: {
      type: 'locations',
      field: 'location_id',
      jsonApiOnly: true,
      get: () => undefined,
      include: {
        byOwners: async (db, organizationId, sensorIds) =>
          (await locationsOfSensors(db, organizationId, sensorIds)).map(({ sensor_id, location }) => ({ owner: sensor_id, row: location })),
      },
    },
    scaling_profile: {
      type: 'scaling-profiles',
      field: 'scaling_profile_id',
      get: (row) => row.scaling_profile_id,
      related: (row) => (row.scaling_profile_id ? `/v1/scaling-profiles/${row.scaling_profile_id}` : undefined),
      include: { byIds: findScalingProfilesByIds },
    },
    calibrations: {
      type: 'calibrations',
      field: 'calibration_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/calibrations?sensor_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, sensorIds, limit) =>
          (await calibrationsOfSensors(db, organizationId, sensorIds, limit)).map((row) => ({ owner: row.sensor_id, row })),
      },
    },
    thresholds: {
      type: 'alarm-thresholds',
      field: 'threshold_ids',
      many: true,
      jsonApiOnly: true,
      get: () => undefined,
      related: (row) => `/v1/alarm-thresholds?sensor_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, ids, limit) => ownedBy(await thresholdsOfSensors(db, organizationId, ids, limit), 'sensor_id'),
      },
    },
    alarms: {
      type: 'alarms',
      field: 'alarm_ids',
      many: true,
      jsonApiOnly: true,
      get: () => undefined,
      related: (row) => `/v1/alarms?sensor_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, ids, limit) => ownedBy(await alarmsOfSensors(db, organizationId, ids, limit), 'sensor_id'),
      },
    },
    // A time series, not a set of resources: paged by time at its own endpoint, never included.
    readings: {
      type: 'readings',
      field: 'reading_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/sensors/${row.id}/readings`,
    },
  },
};

const Uuid = Type.String({ format: 'uuid' });
const SensorJson = Type.Object({
  id: Uuid,
  device_id: Uuid,
  key: Type.String(),
  kind: Type.String(),
  unit: Type.String(),
  name: Nullable(Type.String()),
  scaling_profile_id: Nullable(Uuid),
  offline_after_seconds: Nullable(Type.Integer()),
  last_reading_at: Nullable(Timestamp('Time of the newest reading (null until the first).')),
  last_value: Nullable(Type.Number({ description: 'Reported value of the newest reading.' })),
  last_raw_value: Nullable(Type.Number({ description: 'Raw value of the newest reading, as the device sent it.' })),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Editable = {
  key: SensorKey,
  kind: SensorKind,
  unit: Type.Optional(SensorUnit),
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  scaling_profile_id: Type.Optional(Nullable(Uuid)),
  offline_after_seconds: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 1, maximum: 31_536_000, description: 'Seconds without a reading before the sensor counts as offline.' }),
    ),
  ),
};
const SensorCreate = Type.Object({ device_id: Uuid, ...Editable }, { additionalProperties: false });
const SensorUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

export const SENSOR_CONSTRAINTS = {
  unique: { sensors_device_key_key: 'This device already has a sensor with this key.' },
  foreignKey: {
    sensors_device_fk: { pointer: '/body/device_id', detail: 'device_id does not refer to a device of this organization' },
    sensors_scaling_profile_fk: {
      pointer: '/body/scaling_profile_id',
      detail: 'scaling_profile_id does not refer to a scaling profile of this organization',
    },
  },
};

export function registerSensorRoutes(app: App, services: AppServices): void {
  const { db } = services;
  const sensors = resourceRoutes(app, services, {
    path: '/v1/sensors',
    resource: SensorResource,
    schema: SensorJson,
    noun: 'sensor',
    tags: ['sensors'],
    scopes: { read: ['devices:read'], write: ['devices:write'] },
    relationships: { device: 'device_id', scaling_profile: 'scaling_profile_id' },
  });

  sensors.list(
    {
      summary: 'List sensors',
      sorts: SENSOR_SORTS,
      defaultSort: 'key',
      filters: {
        device_id: Type.Optional(Type.String({ maxLength: 100 })),
        location_id: Type.Optional(Type.String({ maxLength: 100 })),
        group_id: Type.Optional(Type.String({ maxLength: 100 })),
        scaling_profile_id: Type.Optional(Type.String({ maxLength: 100 })),
        kind: Type.Optional(Type.String({ maxLength: 64 })),
        key: Type.Optional(Type.String({ maxLength: 64 })),
        q: SearchQuery,
      },
    },
    ({ organizationId, query: q, sort, page }) =>
      listSensors(
        db,
        organizationId,
        {
          deviceId: q.device_id,
          locationId: q.location_id,
          groupId: q.group_id,
          scalingProfileId: q.scaling_profile_id,
          kind: q.kind,
          key: q.key,
          q: q.q,
        },
        sort,
        page,
      ),
  );

  sensors.get({ summary: 'Get a sensor' }, ({ organizationId, id }) => findSensor(db, organizationId, id));

  // A new sensor has no reading yet.
  sensors.create({ summary: 'Create a sensor on a device', body: SensorCreate }, async ({ organizationId, body }) =>
    withoutReadings(await dbGuarded(() => insertSensor(db, organizationId, body), SENSOR_CONSTRAINTS)),
  );

  sensors.update({ summary: 'Update a sensor', body: SensorUpdate }, ({ organizationId, id, body }) =>
    dbGuarded(() => updateSensor(db, organizationId, id, body), SENSOR_CONSTRAINTS),
  );

  sensors.remove({ summary: 'Delete a sensor (with its calibrations)' }, ({ organizationId, id }) => deleteSensor(db, organizationId, id));
}
