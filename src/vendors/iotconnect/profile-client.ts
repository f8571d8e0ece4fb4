import { findOrganizationBySolutionKey } from '../../identity/organizations.repo.js';
import { findClientByClientId, findClientByClientIdCached, saveClient } from '../../oauth/clients.repo.js';
import type { OAuthClient } from '../../oauth/oauth.schema.js';
import type { Db } from '../../storage/database.js';

/**
 * The OAuth client IoTConnect's sign-in issues tokens to: one per organization that has a
 * solution key, created on its first sign-in. IoTConnect authenticates the application by the
 * organization's `solution-key` header (the basic token of step 1 is public), so this client has
 * no secret of its own: the profile's routes accept it only once that key matched. Its tokens live
 * 3600 s, as IoTConnect's do (SPEC §3), and carry every scope the user's role holds.
 */

export const PROFILE_ACCESS_TOKEN_TTL = 3600;

export const profileClientId = (organizationId: string) => `iotconnect-${organizationId}`;

export async function profileClientFor(db: Db, solutionKey: string): Promise<OAuthClient | undefined> {
  const organization = await findOrganizationBySolutionKey(db, solutionKey);
  if (!organization) return undefined;
  const clientId = profileClientId(organization.id);
  const existing = await findClientByClientIdCached(db, clientId);
  if (existing) return existing;
  const created = saveClient(db, organization.id, {
    clientId,
    name: 'IoTConnect sign-in',
    secretHash: null,
    public: false,
    grantTypes: ['password', 'refresh_token'],
    scopes: ['*'],
    redirectUris: [],
    privacyPolicyUrl: null,
    accessTokenTtl: PROFILE_ACCESS_TOKEN_TTL,
    refreshTokenTtl: null,
    tokenFormat: 'opaque',
    boundUserId: null,
    userAuth: 'password',
    resourceServer: false,
    managedBy: 'iotconnect',
  });
  try {
    return (await created).client;
  } catch (error) {
    // Two first sign-ins at once: the other one created it.
    const raced = await findClientByClientId(db, clientId);
    if (raced) return raced;
    throw error;
  }
}
