import { Type } from 'typebox';
import { auditActor } from '../../audit/actor.js';
import { principalOf } from '../../auth/guard.js';
import type { Principal } from '../../auth/principal.js';
import { HttpProblem } from '../../http/problem.js';
import { Nullable, Timestamp, iso, secured } from '../../api/kit.js';
import { type ResourceType, collectionSchema, sendCollection, sendNoContent } from '../../api/documents.js';
import { installNegotiation } from '../../api/negotiation.js';
import type { App } from '../../server/context.js';
import type { AppServices } from '../../server/context.js';
import { withdrawAuthorization } from './authorizations.js';
import { type AuthorizedApplication, listAuthorizedApplications } from './consents.repo.js';

/**
 * `/v1/authorized-applications`: the JSON face of the "Authorized applications" page, for the
 * person behind the bearer credential, within its organization. Listing and revoking one's own
 * authorizations needs no scope; a credential without a person (app token, device) gets 403.
 */

const AuthorizedApplicationResource: ResourceType<AuthorizedApplication> = {
  type: 'authorized-applications',
  id: (row) => row.clientId,
  path: (row) => `/v1/authorized-applications/${encodeURIComponent(row.clientId)}`,
  attributes: (row) => ({
    client_id: row.clientId,
    name: row.name,
    privacy_policy_url: row.privacyPolicyUrl,
    scopes: row.scopes,
    created_at: iso(row.createdAt),
    updated_at: iso(row.updatedAt),
  }),
};

const AuthorizedApplicationJson = Type.Object({
  id: Type.String({ description: 'The application client_id.' }),
  client_id: Type.String(),
  name: Type.String(),
  privacy_policy_url: Nullable(Type.String()),
  scopes: Type.Array(Type.String()),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

/** The person behind a credential of their own (a user token or their API key); a client-credentials token bound to a user acts for them but is not them. */
function personOf(principal: Principal): string {
  if (!principal.userId || (principal.kind !== 'user_token' && principal.kind !== 'api_key')) throw personOnly();
  return principal.userId;
}

const personOnly = () =>
  new HttpProblem({ status: 403, detail: 'Authorized applications belong to a person: use a credential issued to a user.' });

export function registerAuthorizedApplicationsApi(app: App, services: AppServices): void {
  const { bearer, db, config } = services;
  installNegotiation(app);

  app.get(
    '/v1/authorized-applications',
    secured(bearer, [], {
      tags: ['authorized-applications'],
      summary: 'Applications the calling person has authorized in this organization (remembered consents)',
      response: { 200: collectionSchema(AuthorizedApplicationJson) },
    }),
    async (request, reply) => {
      const principal = principalOf(request);
      const items = await listAuthorizedApplications(db, personOf(principal), principal.organizationId);
      return sendCollection(config.publicUrl, request, reply, AuthorizedApplicationResource, { items, nextCursor: undefined });
    },
  );

  app.delete(
    '/v1/authorized-applications/:client_id',
    secured(bearer, [], {
      tags: ['authorized-applications'],
      summary: "Revoke an application's access: forgets the consent and revokes every token it holds for the calling person",
      params: Type.Object({ client_id: Type.String({ minLength: 1, maxLength: 200 }) }),
      response: { 204: Type.Null({ description: 'Revoked.' }) },
    }),
    async (request, reply) => {
      const principal = principalOf(request);
      const userId = personOf(principal);
      const withdrawn = await withdrawAuthorization(db, bearer, request.params.client_id, {
        organizationId: principal.organizationId,
        userId,
        sourceAddress: request.ip,
        actor: auditActor(principal),
      });
      if (!withdrawn || (!withdrawn.revoked.consentDeleted && withdrawn.revoked.grantIds.length === 0))
        throw new HttpProblem({ status: 404, detail: 'No such authorized application.' });
      request.log.info(
        { client_id: withdrawn.client.client_id, user_id: userId, grants: withdrawn.revoked.grantIds.length },
        'application authorization revoked',
      );
      return sendNoContent(reply);
    },
  );
}
