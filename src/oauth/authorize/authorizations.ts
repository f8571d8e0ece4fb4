import type { BearerAuthenticator } from '../../auth/bearer.js';
import type { Db } from '../../storage/database.js';
import type { OAuthClient } from '../oauth.schema.js';
import { findClientByClientId } from '../clients.repo.js';
import { type ConsentContext, type RevokedAuthorization, revokeAuthorization } from './consents.repo.js';

/**
 * A person withdraws an application's access ("Authorized applications": the account page, the
 * console page and `/v1/authorized-applications`): the consent is forgotten, its grants end in
 * one transaction, and their tokens are dropped from the bearer cache on every node.
 * Undefined when `clientId` names no application of the organization (the client's own when
 * `organizationId` is not given).
 */
export async function withdrawAuthorization(
  db: Db,
  bearer: Pick<BearerAuthenticator, 'revoked'>,
  clientId: string | undefined,
  context: Omit<ConsentContext, 'client' | 'organizationId'> & { organizationId?: string | undefined },
): Promise<{ client: OAuthClient; revoked: RevokedAuthorization } | undefined> {
  const client = clientId && clientId.length <= 200 ? await findClientByClientId(db, clientId) : undefined;
  if (!client || (context.organizationId ?? client.organization_id) !== client.organization_id) return undefined;
  const revoked = await revokeAuthorization(db, {
    ...context,
    organizationId: client.organization_id,
    client: { pk: client.id, clientId: client.client_id },
  });
  for (const grantId of revoked.grantIds) await bearer.revoked({ revocationGroup: grantId }, db);
  return { client, revoked };
}
