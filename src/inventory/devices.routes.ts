import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { IdParams, Nullable, SearchQuery, Text, Timestamp, found, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { WithMeta, callerOf, resourceRoutes } from '../api/resource-routes.js';
import { ownedBy } from '../api/compound.js';
import { calibrationsOfDevices } from './calibrations.repo.js';
import { auditedBy } from '../audit/actor.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { DEVICE_SORTS, findDevice, listDevices, updateDevice } from './devices.repo.js';
import { DEVICE_CONSTRAINTS, createDevice, removeDevice, rotateDeviceToken } from './devices.service.js';
import type { Device } from './inventory.schema.js';
import { findLocationsByIds } from './locations.repo.js';
import { sensorsOfDevices } from './sensors.repo.js';
import { SensorKey, SensorKind, SensorUnit } from './sensors.routes.js';

/** A device as the API shows it; `token` only in the answer that created or rotated it. */
export type DeviceView = Device & { token?: string; sensor_ids?: string[] };

export const DeviceResource: ResourceType<DeviceView> = {
  type: 'devices',
  id: (row) => row.id,
  path: (row) => `/v1/devices/${row.id}`,
  attributes: (row) => ({
    serial: row.serial,
    name: row.name,
    description: row.description,
    model: row.model,
    firmware_version: row.firmware_version,
    token_prefix: row.token_prefix,
    token_rotated_at: iso(row.token_rotated_at),
    last_seen_at: iso(row.last_seen_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    ...(row.token !== undefined && { token: row.token }),
  }),
  relationships: {
    location: {
      type: 'locations',
      field: 'location_id',
      get: (row) => row.location_id,
      related: (row) => (row.location_id ? `/v1/locations/${row.location_id}` : undefined),
      include: { byIds: findLocationsByIds },
    },
    sensors: {
      type: 'sensors',
      field: 'sensor_ids',
      many: true,
      get: (row) => row.sensor_ids,
      related: (row) => `/v1/sensors?device_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, deviceIds, limit) =>
          (await sensorsOfDevices(db, organizationId, deviceIds, limit)).map((row) => ({ owner: row.device_id, row })),
      },
    },
    calibrations: {
      type: 'calibrations',
      field: 'calibration_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/calibrations?device_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, ids, limit) =>
          ownedBy(await calibrationsOfDevices(db, organizationId, ids, limit), 'device_id'),
      },
    },
  },
};

const Links = Type.Object({ self: Type.String({ format: 'uri' }) });
const DeviceJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  serial: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  model: Nullable(Type.String()),
  firmware_version: Nullable(Type.String()),
  location_id: Nullable(Type.String({ format: 'uuid' })),
  token_prefix: Nullable(Type.String({ description: 'First characters of the current device token.' })),
  token_rotated_at: Nullable(Timestamp()),
  last_seen_at: Nullable(Timestamp()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Links,
});
const DeviceWithTokenJson = Type.Object({
  ...DeviceJson.properties,
  token: Type.String({ description: 'The device token (sc_dev_…). Shown only in this answer; store it now.' }),
  sensor_ids: Type.Optional(Type.Array(Type.String({ format: 'uuid' }))),
});

const Uuid = Type.String({ format: 'uuid' });
const DeviceFieldsSchema = {
  serial: Text({ maxLength: 200, description: 'Unique in the organization.' }),
  name: Text(),
  description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
  model: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  firmware_version: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  location_id: Type.Optional(Nullable(Uuid)),
};
const NewSensor = Type.Object(
  {
    key: SensorKey,
    kind: SensorKind,
    unit: Type.Optional(SensorUnit),
    name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    scaling_profile_id: Type.Optional(Nullable(Uuid)),
    offline_after_seconds: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 31_536_000 }))),
  },
  { additionalProperties: false },
);
const DeviceCreate = Type.Object(
  {
    ...DeviceFieldsSchema,
    sensors: Type.Optional(Type.Array(NewSensor, { maxItems: 200, description: 'Sensors created with the device.' })),
  },
  { additionalProperties: false },
);
const DeviceUpdate = Type.Partial(Type.Object(DeviceFieldsSchema), { additionalProperties: false });

export function registerDeviceRoutes(app: App, services: AppServices): void {
  const { bearer, db, config } = services;
  const tags = ['devices'];
  const devices = resourceRoutes(app, services, {
    path: '/v1/devices',
    resource: DeviceResource,
    schema: DeviceJson,
    noun: 'device',
    tags,
    scopes: { read: ['devices:read'], write: ['devices:write'] },
    relationships: { location: 'location_id' },
  });

  devices.list(
    {
      summary: 'List devices',
      sorts: DEVICE_SORTS,
      defaultSort: 'name',
      filters: {
        serial: Type.Optional(Type.String({ maxLength: 200 })),
        location_id: Type.Optional(Type.String({ maxLength: 100 })),
        group_id: Type.Optional(Type.String({ maxLength: 100, description: 'Devices with a sensor in this group.' })),
        model: Type.Optional(Type.String({ maxLength: 200 })),
        q: SearchQuery,
      },
    },
    ({ organizationId, query: q, sort, page }) =>
      listDevices(
        db,
        organizationId,
        { serial: q.serial, locationId: q.location_id, groupId: q.group_id, model: q.model, q: q.q },
        sort,
        page,
      ),
  );

  devices.get({ summary: 'Get a device' }, ({ organizationId, id }) => findDevice(db, organizationId, id));

  // The token is shown in this answer only (stored hashed), so no cache may keep it.
  devices.create(
    { summary: 'Create a device (the answer carries its device token, once)', body: DeviceCreate, createdSchema: DeviceWithTokenJson },
    async (caller) => {
      const { organizationId, body, reply } = caller;
      const { sensors = [], ...fields } = body;
      const created = await createDevice(db, organizationId, auditedBy(caller), fields, sensors);
      reply.header('cache-control', 'no-store');
      const view: DeviceView = { ...created.device, token: created.token, sensor_ids: created.sensors.map((s) => s.id) };
      return new WithMeta(view, { token_shown_once: true });
    },
  );

  devices.update({ summary: 'Update a device', body: DeviceUpdate }, ({ organizationId, id, body }) =>
    dbGuarded(() => updateDevice(db, organizationId, id, body), DEVICE_CONSTRAINTS),
  );

  app.post(
    '/v1/devices/:id/token',
    secured(bearer, ['devices:write'], {
      tags,
      summary: 'Rotate the device token: a new token is returned once, the old one stops working',
      params: IdParams,
      response: { 200: envelopeSchema(DeviceWithTokenJson) },
    }),
    async (request, reply) => {
      const caller = callerOf(request);
      const rotated = found(await rotateDeviceToken(db, bearer, caller.organizationId, request.params.id, auditedBy(caller)), 'device');
      reply.header('cache-control', 'no-store');
      return sendResource(
        config.publicUrl,
        request,
        reply,
        DeviceResource,
        { ...rotated.device, token: rotated.token },
        { meta: { token_shown_once: true } },
      );
    },
  );

  // The service, not the repository: it also evicts the device's token from the bearer cache.
  devices.remove({ summary: 'Delete a device with its sensors and their calibrations' }, (caller) =>
    removeDevice(db, bearer, caller.organizationId, caller.id, auditedBy(caller)),
  );
}
