import { Type } from 'typebox';
import { MEMBER_SORTS, type MemberView, findMemberView, listMemberViews, setMemberName } from './members.repo.js';
import { changeMemberRole, removeFromOrganization, setMemberActive } from './members.service.js';
import { groupsOfUsers } from './group-admin.repo.js';
import { ROLES } from './scopes.js';
import { listMemberships } from './users.repo.js';
import { HttpProblem } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { IdParams, Nullable, SearchQuery, Timestamp, found, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { ownedBy } from '../api/compound.js';
import { callerOf, resourceRoutes } from '../api/resource-routes.js';

/**
 * The people of the caller's organization: list, change role, deactivate, remove. People join by
 * accepting an invitation (`POST /v1/users`, invitations.routes.ts).
 */

export function memberStatus(member: MemberView): 'active' | 'invited' | 'deactivated' {
  if (member.deactivated_at) return 'deactivated';
  return member.has_password ? 'active' : 'invited';
}

export const MemberResource: ResourceType<MemberView> = {
  type: 'users',
  id: (row) => row.id,
  path: (row) => `/v1/users/${row.id}`,
  attributes: (row) => ({
    email: row.email,
    name: row.name,
    role: row.role,
    status: memberStatus(row),
    active: row.deactivated_at === null,
    deactivated_at: iso(row.deactivated_at),
    joined_at: iso(row.joined_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    groups: {
      type: 'groups',
      field: 'group_ids',
      many: true,
      get: () => undefined,
      related: (row) => `/v1/groups?user_id=${row.id}`,
      include: {
        byOwners: async (db, organizationId, userIds, limit) => ownedBy(await groupsOfUsers(db, organizationId, userIds, limit), 'user_id'),
      },
    },
  },
};

export const RoleSchema = Type.Union(
  ROLES.map((r) => Type.Literal(r)),
  {
    description:
      'owner and admin hold every scope; member every :read scope plus readings:write, alarms:write, calibrations:write; viewer every :read scope.',
  },
);
const UserJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Nullable(Type.String()),
  role: RoleSchema,
  status: Type.Union([Type.Literal('active'), Type.Literal('invited'), Type.Literal('deactivated')]),
  active: Type.Boolean(),
  deactivated_at: Nullable(Timestamp()),
  joined_at: Timestamp(),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const UserUpdate = Type.Object(
  {
    role: Type.Optional(RoleSchema),
    name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    active: Type.Optional(Type.Boolean({ description: 'false deactivates the person in this organization, true reactivates.' })),
  },
  { additionalProperties: false },
);

const conflict = (detail: string) => new HttpProblem({ status: 409, detail });

export function registerUserRoutes(app: App, services: AppServices): void {
  const { bearer, db, config } = services;
  const tags = ['users'];
  const users = resourceRoutes(app, services, {
    path: '/v1/users',
    resource: MemberResource,
    schema: UserJson,
    noun: 'user',
    tags,
    scopes: { read: ['users:read'], write: ['users:write'] },
  });

  users.list(
    {
      summary: 'List the people of the organization',
      sorts: MEMBER_SORTS,
      defaultSort: 'email',
      filters: {
        role: Type.Optional(RoleSchema),
        email: Type.Optional(Type.String({ maxLength: 320 })),
        active: Type.Optional(Type.Boolean()),
        group_id: Type.Optional(Type.String({ maxLength: 100 })),
        q: SearchQuery,
      },
    },
    ({ organizationId, query: q, sort, page }) =>
      listMemberViews(db, organizationId, { role: q.role, email: q.email, active: q.active, q: q.q, groupId: q.group_id }, sort, page),
  );

  users.get({ summary: 'Get a person of the organization' }, ({ organizationId, id }) => findMemberView(db, organizationId, id));

  users.update({ summary: "Change a person's role, name or active state", body: UserUpdate }, (caller) =>
    db.transaction().execute(async (tx) => {
      const { organizationId, id, body } = caller;
      const target = await findMemberView(tx, organizationId, id);
      if (!target) return undefined;
      if (body.role !== undefined) await changeMemberRole(tx, bearer, caller, target, body.role);
      if (body.active !== undefined && body.active !== (target.deactivated_at === null)) {
        await setMemberActive(tx, bearer, caller, target, body.active);
      }
      if (body.name !== undefined && body.name !== target.name) {
        const memberships = await listMemberships(tx, target.id);
        if (memberships.some((m) => m.organization_id !== organizationId)) {
          throw conflict('This person also belongs to another organization; only they can change their name.');
        }
        await setMemberName(tx, target.id, body.name);
      }
      return findMemberView(tx, organizationId, target.id);
    }),
  );

  for (const [action, active] of [
    ['deactivate', false],
    ['reactivate', true],
  ] as const) {
    app.post(
      `/v1/users/:id/${action}`,
      secured(bearer, ['users:write'], {
        tags,
        summary: active
          ? 'Reactivate a person in the organization'
          : 'Deactivate a person in the organization (their credentials stop granting access to it)',
        params: IdParams,
        response: { 200: envelopeSchema(UserJson) },
      }),
      async (request, reply) => {
        const caller = callerOf(request);
        const member = await db.transaction().execute(async (tx) => {
          const target = found(await findMemberView(tx, caller.organizationId, request.params.id), 'user');
          await setMemberActive(tx, bearer, caller, target, active);
          return found(await findMemberView(tx, caller.organizationId, target.id), 'user');
        });
        return sendResource(config.publicUrl, request, reply, MemberResource, member);
      },
    );
  }

  users.remove({ summary: 'Remove a person from the organization (the account itself stays)' }, (caller) =>
    db.transaction().execute(async (tx) => {
      const target = await findMemberView(tx, caller.organizationId, caller.id);
      if (!target) return false;
      await removeFromOrganization(tx, bearer, caller, target);
      return true;
    }),
  );
}
