import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { pageRequest } from '../../api/list-query.js';
import type { BearerAuthenticator } from '../../auth/bearer.js';
import { principalOf, protect } from '../../auth/guard.js';
import { DEVICE_SORTS, findDevice, listDevices } from '../../inventory/devices.repo.js';
import type { Device } from '../../inventory/inventory.schema.js';
import { listSensors } from '../../inventory/sensors.repo.js';
import type { Db } from '../../storage/database.js';
import { isUuid } from '../../storage/sql.js';
import { IoTConnectError, type Link } from './responses.js';

/**
 * IoTConnect's device API (seeds/004, `GET /api/v1.1/Device`) over the same devices, credentials
 * and scopes as `/v1/devices`: any bearer credential holding `devices:read`. Lists page by keyset
 * like every list here; the `next` link (HATEOAS, as the document describes) carries the cursor.
 */

/** IoTConnect's field names for the sortable fields (`sortBy=displayName desc`). */
const SORT_FIELDS: Record<string, keyof typeof DEVICE_SORTS> = {
  displayName: 'name',
  uniqueId: 'serial',
  createdDate: 'created_at',
  updatedDate: 'updated_at',
};

const ListQuery = Type.Object({
  pageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Devices per page (at most 1000).' })),
  searchText: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Part of the display name or unique id.' })),
  sortBy: Type.Optional(
    Type.String({
      pattern: `^(${Object.keys(SORT_FIELDS).join('|')})( (asc|desc))?$`,
      description: `One of ${Object.keys(SORT_FIELDS).join(', ')}, then optionally " asc" or " desc".`,
    }),
  ),
  entityGuid: Type.Optional(Type.String({ description: 'Only devices at this location (entity).' })),
  uniqueId: Type.Optional(Type.String({ maxLength: 200, description: 'Only the device with this unique id (serial).' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'From the next link.' })),
});
type ListQuery = {
  pageSize?: number;
  searchText?: string;
  sortBy?: string;
  entityGuid?: string;
  uniqueId?: string;
  cursor?: string;
};

function deviceJson(device: Device, baseUrl: string) {
  return {
    guid: device.id,
    uniqueId: device.serial,
    displayName: device.name,
    description: device.description,
    entityGuid: device.location_id,
    templateName: device.model,
    firmwareVersion: device.firmware_version,
    lastActivityDate: device.last_seen_at?.toISOString() ?? null,
    createdDate: device.created_at.toISOString(),
    updatedDate: device.updated_at.toISOString(),
    links: [{ href: `${baseUrl}/api/v1.1/Device/${device.id}`, rel: 'self', method: 'GET' }] satisfies Link[],
  };
}

export interface DeviceRouteDeps {
  db: Db;
  bearer: BearerAuthenticator;
  /** PUBLIC_URL: the base of every link. */
  baseUrl: string;
}

export function registerIoTConnectDeviceRoutes(api: FastifyInstance, { db, bearer, baseUrl }: DeviceRouteDeps): void {
  const tags = ['iotconnect'];
  const guard = protect(bearer, ['devices:read']);
  const linkTo = (request: FastifyRequest, cursor?: string) => {
    const url = new URL(request.url, baseUrl);
    if (cursor === undefined) return url.href;
    url.searchParams.set('cursor', cursor);
    return url.href;
  };

  api.get(
    '/v1.1/Device',
    { ...guard, schema: { tags, summary: 'IoTConnect: list devices (needs devices:read)', querystring: ListQuery } },
    async (request) => {
      const { organizationId } = principalOf(request);
      const query = request.query as ListQuery;
      const [field = 'displayName', direction = 'asc'] = (query.sortBy ?? 'displayName').split(' ');
      const sortName = SORT_FIELDS[field] ?? 'name';
      const { column, cast } = DEVICE_SORTS[sortName]!;
      const page = await listDevices(
        db,
        organizationId,
        { q: query.searchText, locationId: query.entityGuid, serial: query.uniqueId },
        { field: sortName, column, cast, direction: direction === 'desc' ? 'desc' : 'asc' },
        pageRequest({ limit: query.pageSize, cursor: query.cursor }),
      );
      const links: Link[] = [{ href: linkTo(request), rel: 'self', method: 'GET' }];
      if (page.nextCursor) links.push({ href: linkTo(request, page.nextCursor), rel: 'next', method: 'GET' });
      return { data: page.items.map((d) => deviceJson(d, baseUrl)), status: 200, message: 'Device list', links };
    },
  );

  api.get(
    '/v1.1/Device/:guid',
    {
      ...guard,
      schema: { tags, summary: 'IoTConnect: one device, with its attributes (sensors)', params: Type.Object({ guid: Type.String() }) },
    },
    async (request) => {
      const { organizationId } = principalOf(request);
      const { guid } = request.params as { guid: string };
      // Another organization's device is as absent as one that never existed.
      const device = isUuid(guid) ? await findDevice(db, organizationId, guid) : undefined;
      if (!device) throw new IoTConnectError(404, 'No device has this guid.', [{ param: 'guid', msg: 'not found' }]);
      const sensors = await listSensors(
        db,
        organizationId,
        { deviceId: device.id },
        { field: 'key', column: 'sensors.key', cast: 'text', direction: 'asc' },
        { limit: 1000, after: undefined },
      );
      const attributes = sensors.items.map((s) => ({
        guid: s.id,
        localName: s.key,
        displayName: s.name ?? s.key,
        kind: s.kind,
        unit: s.unit,
        lastValue: s.last_value,
        lastActivityDate: s.last_reading_at?.toISOString() ?? null,
      }));
      const data = { ...deviceJson(device, baseUrl), attributes };
      data.links.push({ href: `${baseUrl}/api/v1.1/Device`, rel: 'collection', method: 'GET' });
      return { data: [data], status: 200, message: 'Device details' };
    },
  );
}
