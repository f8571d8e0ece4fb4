import { Type } from 'typebox';
import type { Principal } from '../auth/principal.js';
import {
  MEMBER_SORTS,
  type MemberView,
  countActiveOwners,
  findMemberView,
  listMemberViews,
  removeMember,
  setMemberDeactivated,
  setMemberName,
  setMemberRole,
} from './members.repo.js';
import { groupsOfUsers } from './group-admin.repo.js';
import { ROLES } from './scopes.js';
import { findMember, listMemberships } from './users.repo.js';
import { HttpProblem } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { Db } from '../storage/database.js';
import type { Role } from '../storage/schema.js';
import { IdParams, Nullable, SearchQuery, Timestamp, found, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { ownedBy } from '../api/compound.js';
import { type Caller, callerOf, resourceRoutes } from '../api/resource-routes.js';
import type { AuditAction } from '../audit/actions.js';
import { recordCallerEvent } from '../audit/actor.js';

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
        byOwners: async (db, organizationId, userIds) => ownedBy(await groupsOfUsers(db, organizationId, userIds), 'user_id'),
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

const forbidden = (detail: string) => new HttpProblem({ status: 403, detail });
const conflict = (detail: string) => new HttpProblem({ status: 409, detail });

/** The caller's own role, when a person is behind the credential. */
async function callerRole(db: Db, principal: Principal): Promise<Role | undefined> {
  if (!principal.userId) return undefined;
  const member = await findMember(db, principal.organizationId, principal.userId);
  return member?.role;
}

/** Only an owner may make someone an owner (by invitation too), or change or remove an owner. */
export async function checkOwnerChange(
  db: Db,
  principal: Principal,
  target: MemberView | undefined,
  newRole: Role | undefined,
): Promise<void> {
  if (newRole !== 'owner' && target?.role !== 'owner') return;
  if ((await callerRole(db, principal)) !== 'owner') throw forbidden('Only an owner can grant the owner role or change an owner.');
}

/** The organization must keep at least one active owner. */
async function checkKeepsOwner(db: Db, organizationId: string, target: MemberView): Promise<void> {
  if (target.role === 'owner' && target.deactivated_at === null && (await countActiveOwners(db, organizationId)) <= 1) {
    throw conflict('This is the last active owner of the organization; make someone else owner first.');
  }
}

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

  /** Records a change to a member, in the change's transaction. */
  const audit = (tx: Db, caller: Caller, action: AuditAction, target: MemberView, details: Record<string, unknown> = {}) =>
    recordCallerEvent(tx, caller, action, { type: 'user', id: target.id }, { email: target.email, ...details });

  /** Deactivates or reactivates, audited when it changes something; their credentials stop (or resume) at once, on every node. */
  async function setActive(tx: Db, caller: Caller, target: MemberView, active: boolean): Promise<void> {
    const { principal, organizationId } = caller;
    if (!active) {
      await checkOwnerChange(tx, principal, target, undefined);
      await checkKeepsOwner(tx, organizationId, target);
    }
    await setMemberDeactivated(tx, organizationId, target.id, active ? null : (target.deactivated_at ?? new Date()));
    if (active !== (target.deactivated_at === null)) await audit(tx, caller, active ? 'member.reactivated' : 'member.deactivated', target);
    await bearer.revoked({ userId: target.id }, tx);
  }

  users.update({ summary: "Change a person's role, name or active state", body: UserUpdate }, (caller) =>
    db.transaction().execute(async (tx) => {
      const { principal, organizationId, id, body } = caller;
      const target = await findMemberView(tx, organizationId, id);
      if (!target) return undefined;
      if (body.role !== undefined && body.role !== target.role) {
        await checkOwnerChange(tx, principal, target, body.role);
        if (target.role === 'owner') await checkKeepsOwner(tx, organizationId, target);
        await setMemberRole(tx, organizationId, target.id, body.role);
        await audit(tx, caller, 'member.role_changed', target, { from: target.role, to: body.role });
        await bearer.revoked({ userId: target.id }, tx);
      }
      if (body.active !== undefined && body.active !== (target.deactivated_at === null)) {
        await setActive(tx, caller, target, body.active);
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
          await setActive(tx, caller, target, active);
          return found(await findMemberView(tx, caller.organizationId, target.id), 'user');
        });
        return sendResource(config.publicUrl, request, reply, MemberResource, member);
      },
    );
  }

  users.remove({ summary: 'Remove a person from the organization (the account itself stays)' }, (caller) =>
    db.transaction().execute(async (tx) => {
      const { principal, organizationId, id } = caller;
      const target = await findMemberView(tx, organizationId, id);
      if (!target) return false;
      await checkOwnerChange(tx, principal, target, undefined);
      await checkKeepsOwner(tx, organizationId, target);
      // `target` exists, so this answers 204 even when a concurrent request removed the membership first.
      if (await removeMember(tx, organizationId, target.id)) await audit(tx, caller, 'member.removed', target, { role: target.role });
      // Their credentials stop granting access here at once, on every node.
      await bearer.revoked({ userId: target.id }, tx);
      return true;
    }),
  );
}
