import { Type } from 'typebox';
import type { Principal } from '../auth/principal.js';
import { principalOf } from '../auth/guard.js';
import { findMemberView, findMemberViewsByIds } from './members.repo.js';
import { findOrganizationById, upsertOrganization } from './organizations.repo.js';
import { SCOPES } from './scopes.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { Organization } from '../storage/schema.js';
import { Nullable, Text, Timestamp, found, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { jsonApiBody } from '../api/json-api-body.js';
import { callerOf, resourceRoutes } from '../api/resource-routes.js';
import { recordCallerEvent } from '../audit/actor.js';
import { findDevicesByIds } from '../inventory/devices.repo.js';
import { memberStatus } from './users.routes.js';
import type { MemberView } from './members.repo.js';

/** `GET /v1/me` (who is calling, with what scopes) and the caller's organization. */

export interface MeView {
  principal: Principal;
  organization: Organization;
  member: MemberView | undefined;
}

function meId(p: Principal): string {
  return p.userId ?? p.deviceId ?? p.clientId ?? p.revocationGroup;
}

export const MeResource: ResourceType<MeView> = {
  type: 'me',
  id: (row) => meId(row.principal),
  path: () => '/v1/me',
  attributes: ({ principal, member }) => ({
    kind: principal.kind,
    email: member?.email ?? null,
    name: member?.name ?? null,
    role: member?.role ?? null,
    status: member ? memberStatus(member) : null,
    scopes: SCOPES.filter((s) => principal.scopes.has(s)),
    client_id: principal.clientId,
    expires_at: iso(principal.expiresAt),
  }),
  relationships: {
    organization: {
      type: 'organizations',
      field: 'organization_id',
      get: (row) => row.organization.id,
      related: () => '/v1/organizations/current',
      include: {
        // The caller's own organization is the only one there is to include.
        byIds: async (db, organizationId, ids) => {
          const organization = ids.includes(organizationId) ? await findOrganizationById(db, organizationId) : undefined;
          return organization ? [organization] : [];
        },
      },
    },
    user: {
      type: 'users',
      field: 'user_id',
      get: (row) => row.principal.userId,
      related: (row) => (row.principal.userId ? `/v1/users/${row.principal.userId}` : undefined),
      include: { byIds: findMemberViewsByIds },
    },
    device: {
      type: 'devices',
      field: 'device_id',
      get: (row) => row.principal.deviceId ?? null,
      related: (row) => (row.principal.deviceId ? `/v1/devices/${row.principal.deviceId}` : undefined),
      include: { byIds: findDevicesByIds },
    },
  },
};

export const OrganizationResource: ResourceType<Organization> = {
  type: 'organizations',
  id: (row) => row.id,
  path: () => '/v1/organizations/current',
  attributes: (row) => ({
    slug: row.slug,
    name: row.name,
    has_solution_key: row.solution_key_hash !== null,
    readings_retention_days: row.readings_retention_days,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
};

const Links = Type.Object({ self: Type.String({ format: 'uri' }) });
const MeJson = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('user_token'), Type.Literal('app_token'), Type.Literal('api_key'), Type.Literal('device')]),
  email: Nullable(Type.String()),
  name: Nullable(Type.String()),
  role: Nullable(Type.String()),
  status: Nullable(Type.String()),
  scopes: Type.Array(Type.String()),
  client_id: Nullable(Type.String()),
  expires_at: Nullable(Timestamp()),
  organization_id: Type.String({ format: 'uuid' }),
  user_id: Nullable(Type.String({ format: 'uuid' })),
  device_id: Nullable(Type.String({ format: 'uuid' })),
  links: Links,
});
const OrganizationJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  has_solution_key: Type.Boolean(),
  readings_retention_days: Nullable(
    Type.Integer({ description: "Days readings are kept; null: the server's READINGS_RETENTION_DAYS (0 there: forever)." }),
  ),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Links,
});
const OrganizationUpdate = Type.Object(
  {
    name: Type.Optional(Text()),
    readings_retention_days: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, maximum: 36_500, description: "Days readings are kept; null: the server's default." })),
    ),
  },
  { additionalProperties: false },
);

export function registerMeRoutes(app: App, services: AppServices): void {
  const { bearer, db, config } = services;

  const me = resourceRoutes(app, services, {
    path: '/v1/me',
    resource: MeResource,
    schema: MeJson,
    noun: 'caller',
    tags: ['me'],
    scopes: { read: [], write: [] },
  });
  me.singleton(
    { summary: 'The caller: person (if any), role, organization and the scopes of the credential' },
    async ({ principal, organizationId }) => {
      const organization = found(await findOrganizationById(db, organizationId), 'organization');
      const member = principal.userId ? await findMemberView(db, organizationId, principal.userId) : undefined;
      return { principal, organization, member };
    },
  );

  const organizations = resourceRoutes(app, services, {
    path: '/v1/organizations/current',
    resource: OrganizationResource,
    schema: OrganizationJson,
    noun: 'organization',
    tags: ['organizations'],
    scopes: { read: [], write: ['users:write'] },
  });
  organizations.singleton({ summary: "The caller's organization" }, ({ organizationId }) => findOrganizationById(db, organizationId));

  for (const method of ['patch', 'put'] as const) {
    app[method](
      '/v1/organizations/current',
      {
        ...secured(bearer, ['users:write'], {
          tags: ['organizations'],
          summary: "Rename the caller's organization or set how long its readings are kept",
          body: OrganizationUpdate,
          response: { 200: envelopeSchema(OrganizationJson) },
        }),
        preValidation: jsonApiBody({ type: 'organizations' }),
      },
      async (request, reply) => {
        const current = found(await findOrganizationById(db, principalOf(request).organizationId), 'organization');
        const { name, readings_retention_days } = request.body;
        const organization = await db.transaction().execute(async (tx) => {
          const updated = await upsertOrganization(tx, {
            slug: current.slug,
            name: name ?? current.name,
            readingsRetentionDays: readings_retention_days,
          });
          // Audited when a field really changed, with the fields that did (none of them secret).
          const fields = ['name', 'readings_retention_days'] as const;
          const changed = fields.filter((field) => updated[field] !== current[field]);
          if (changed.length > 0) {
            const details = {
              ...Object.fromEntries(changed.map((field) => [field, updated[field]])),
              previous: Object.fromEntries(changed.map((field) => [field, current[field]])),
            };
            await recordCallerEvent(tx, callerOf(request), 'organization.updated', { type: 'organization', id: current.id }, details);
          }
          return updated;
        });
        return sendResource(config.publicUrl, request, reply, OrganizationResource, organization);
      },
    );
  }
}
