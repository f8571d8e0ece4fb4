import { Type } from 'typebox';
import { auditedBy } from '../audit/actor.js';
import { HttpProblem } from '../http/problem.js';
import {
  INVITATION_SORTS,
  INVITATION_STATUSES,
  findInvitation,
  invitationStatus,
  listInvitations,
  revokeInvitation,
} from './invitations.repo.js';
import { auditInvitation, invitationPath, invite } from './invitations.service.js';
import { findMemberViewsByIds } from './members.repo.js';
import { normalizeEmail } from './users.repo.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import type { Invitation, Role } from '../storage/schema.js';
import { Nullable, Timestamp, iso, secured } from '../api/kit.js';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { jsonApiBody } from '../api/json-api-body.js';
import { absoluteUrl } from '../api/links.js';
import { callerOf, resourceRoutes } from '../api/resource-routes.js';
import { checkOwnerChange } from './members.service.js';
import { RoleSchema } from './users.routes.js';

/**
 * Adding a person by email (`POST /v1/users`) and the invitations it makes. The answer holds only
 * what the caller sent and the invitation's own state, identical whether or not the email has an
 * account; the account shows up in `/v1/users` once its owner accepts.
 */

export const InvitationResource: ResourceType<Invitation> = {
  type: 'invitations',
  id: (row) => row.id,
  path: (row) => `/v1/invitations/${row.id}`,
  attributes: (row) => ({
    email: row.email,
    name: row.name,
    role: row.role,
    status: invitationStatus(row),
    created_at: iso(row.created_at),
    expires_at: iso(row.expires_at),
    accepted_at: iso(row.accepted_at),
    declined_at: iso(row.declined_at),
    revoked_at: iso(row.revoked_at),
  }),
  relationships: {
    // Their related links are this invitation's own (/v1/invitations/{id}/user): a person who has
    // left the organization since is null there, where /v1/users/{id} would be a 404.
    invited_by: { type: 'users', field: 'invited_by', get: (row) => row.invited_by, include: { byIds: findMemberViewsByIds } },
    user: { type: 'users', field: 'user_id', get: (row) => row.user_id, include: { byIds: findMemberViewsByIds } },
  },
};

const StatusSchema = Type.Union(
  INVITATION_STATUSES.map((s) => Type.Literal(s)),
  { description: 'pending until the person answers, the organization revokes it, or it expires.' },
);

const InvitationJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String({ description: 'As invited, normalized (trimmed, lower-case).' }),
  name: Nullable(Type.String({ description: 'The name suggested by the inviter; the person chooses their own when creating an account.' })),
  role: RoleSchema,
  status: StatusSchema,
  created_at: Timestamp(),
  expires_at: Timestamp(),
  accepted_at: Nullable(Timestamp()),
  declined_at: Nullable(Timestamp()),
  revoked_at: Nullable(Timestamp()),
  invited_by: Nullable(
    Type.String({ format: 'uuid', description: 'The user who invited (null for an application acting without a user).' }),
  ),
  user_id: Nullable(Type.String({ format: 'uuid', description: 'The member who accepted; null until then.' })),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const InviteBody = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    role: Type.Optional(RoleSchema),
    name: Type.Optional(Nullable(Type.String({ maxLength: 200, description: 'Suggested name, offered on the new-account form.' }))),
  },
  { additionalProperties: false },
);

const INVITE_DESCRIPTION = [
  'Adding a person is always an invitation they accept: the answer (202 Accepted) is the invitation and is the same whether or not the email has an account.',
  'Nothing of an account shows in this organization until its owner accepts; then they are a member with the role offered.',
  '`meta.accept_url` is the link the person opens to accept or decline (signing in, or creating their account). It is shown only in this answer.',
  'Email delivery is not there yet: forward the link to the person yourself. Invitations expire after 14 days.',
  '409 when the person is already a member or already has a pending invitation; only an owner may invite an owner.',
].join(' ');

export function registerInvitationRoutes(app: App, services: AppServices): void {
  const { bearer, db, config } = services;
  const tags = ['users', 'invitations'];

  app.post(
    '/v1/users',
    {
      ...secured(bearer, ['users:write'], {
        tags,
        summary: 'Invite a person to the organization by email',
        description: INVITE_DESCRIPTION,
        body: InviteBody,
        response: {
          202: envelopeSchema(
            InvitationJson,
            'The invitation (JSON envelope; JSON:API with Accept: application/vnd.api+json); meta.accept_url holds the link, shown once.',
          ),
        },
      }),
      preValidation: jsonApiBody({ type: 'users' }),
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { principal } = caller;
      const role: Role = request.body.role ?? 'member';
      await checkOwnerChange(db, principal, undefined, role);
      const { invitation, token } = await invite(
        db,
        principal.organizationId,
        { email: request.body.email, role, name: request.body.name ?? null, invitedBy: principal.userId },
        auditedBy(caller),
      );
      reply.header('cache-control', 'no-store').header('location', absoluteUrl(config.publicUrl, InvitationResource.path(invitation)));
      return sendResource(config.publicUrl, request, reply, InvitationResource, invitation, {
        status: 202,
        meta: { accept_url: absoluteUrl(config.publicUrl, invitationPath(token)) },
      });
    },
  );

  const invitations = resourceRoutes(app, services, {
    path: '/v1/invitations',
    resource: InvitationResource,
    schema: InvitationJson,
    noun: 'invitation',
    tags,
    scopes: { read: ['users:read'], write: ['users:write'] },
  });

  invitations.list(
    {
      summary: "List the organization's invitations",
      sorts: INVITATION_SORTS,
      defaultSort: '-created_at',
      filters: { status: Type.Optional(StatusSchema), email: Type.Optional(Type.String({ maxLength: 320 })) },
    },
    ({ organizationId, query, sort, page }) =>
      listInvitations(
        db,
        organizationId,
        { status: query.status, email: query.email === undefined ? undefined : normalizeEmail(query.email) },
        sort,
        page,
      ),
  );

  invitations.get({ summary: 'Get an invitation' }, ({ organizationId, id }) => findInvitation(db, organizationId, id));

  invitations.remove(
    { summary: 'Revoke a pending invitation: its link stops working (the invitation stays, as revoked)' },
    async (caller) => {
      const { organizationId, id } = caller;
      const revoked = await db.transaction().execute(async (tx) => {
        const revoked = await revokeInvitation(tx, organizationId, id);
        if (revoked) await auditInvitation(tx, auditedBy(caller), 'invitation.revoked', revoked);
        return revoked;
      });
      if (revoked) return true;
      const invitation = await findInvitation(db, organizationId, id);
      if (!invitation) return false;
      const status = invitationStatus(invitation);
      // Revoking twice is done already; an answered or expired invitation has nothing left to revoke.
      if (status === 'revoked') return true;
      throw new HttpProblem({ status: 409, detail: `The invitation is ${status}; only a pending invitation can be revoked.` });
    },
  );
}
