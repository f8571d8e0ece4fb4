import { Type } from 'typebox';
import { guarded as dbGuarded } from '../api/db-errors.js';
import { Nullable, SearchQuery, Text, Timestamp, iso } from '../api/kit.js';
import type { ResourceType } from '../api/documents.js';
import { resourceRoutes } from '../api/resource-routes.js';
import { SLUG_PATTERN } from '../identity/accounts.js';
import { badRequest } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { devicesAtLocations } from './devices.repo.js';
import type { Location } from './inventory.schema.js';
import { LOCATION_SORTS, deleteLocation, findLocation, insertLocation, listLocations, updateLocation } from './locations.repo.js';

export const LocationResource: ResourceType<Location> = {
  type: 'locations',
  id: (row) => row.id,
  path: (row) => `/v1/locations/${row.id}`,
  attributes: (row) => ({
    slug: row.slug,
    name: row.name,
    description: row.description,
    timezone: row.timezone,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    devices: {
      type: 'devices',
      field: 'device_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/devices?location_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, locationIds, limit) =>
          (await devicesAtLocations(db, organizationId, locationIds, limit)).map((row) => ({ owner: row.location_id!, row })),
      },
    },
  },
};

const LocationJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  timezone: Nullable(Type.String()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Slug = Type.String({
  pattern: SLUG_PATTERN,
  maxLength: 63,
  description: 'Lower-case letters, digits and dashes; unique in the organization.',
});
const LocationCreate = Type.Object(
  {
    slug: Slug,
    name: Text(),
    description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
    timezone: Type.Optional(Nullable(Type.String({ maxLength: 64, description: 'IANA time zone, e.g. Europe/Berlin.' }))),
  },
  { additionalProperties: false },
);
const LocationUpdate = Type.Partial(LocationCreate, { additionalProperties: false });

const UNIQUE = { unique: { locations_org_slug_key: 'A location with this slug already exists.' } };

function checkTimezone(timezone: string | null | undefined): void {
  if (!timezone) return;
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw badRequest(`"${timezone}" is not an IANA time zone.`, [
      { pointer: '/body/timezone', detail: 'timezone is not an IANA time zone' },
    ]);
  }
}

export function registerLocationRoutes(app: App, services: AppServices): void {
  const { db } = services;
  const locations = resourceRoutes(app, services, {
    path: '/v1/locations',
    resource: LocationResource,
    schema: LocationJson,
    noun: 'location',
    tags: ['locations'],
    scopes: { read: ['devices:read'], write: ['devices:write'] },
  });

  locations.list(
    {
      summary: 'List locations',
      sorts: LOCATION_SORTS,
      defaultSort: 'name',
      filters: { slug: Type.Optional(Type.String({ maxLength: 63 })), q: SearchQuery },
    },
    ({ organizationId, query, sort, page }) => listLocations(db, organizationId, { slug: query.slug, q: query.q }, sort, page),
  );

  locations.get({ summary: 'Get a location' }, ({ organizationId, id }) => findLocation(db, organizationId, id));

  locations.create({ summary: 'Create a location', body: LocationCreate }, async ({ organizationId, body }) => {
    checkTimezone(body.timezone);
    return dbGuarded(() => insertLocation(db, organizationId, body), UNIQUE);
  });

  locations.update({ summary: 'Update a location', body: LocationUpdate }, async ({ organizationId, id, body }) => {
    checkTimezone(body.timezone);
    return dbGuarded(() => updateLocation(db, organizationId, id, body), UNIQUE);
  });

  locations.remove({ summary: 'Delete a location (its devices stay, without a location)' }, ({ organizationId, id }) =>
    deleteLocation(db, organizationId, id),
  );
}
