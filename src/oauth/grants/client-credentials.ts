import { type Scope, boundUserScopes, decideScopes, parseScopeParam } from '../../identity/scopes.js';
import { invalidGrant, invalidScope, unauthorizedClient } from '../errors.js';
import { clientScopeList } from '../runtime.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 6749 §4.4. The application acts for itself (`app` scope), within its allowed scopes. A
 * client bound to a user (SmartSense) gets tokens that act as that user with read permissions
 * only (`boundUserScopes`), and stop working when the user leaves the organization. No refresh
 * token (§4.4.3).
 */
export const clientCredentialsGrant: GrantHandler = async ({ rt, client, method, params }) => {
  if (method === 'none') throw unauthorizedClient('Public clients cannot use the client_credentials grant.');
  let subjectScopes: ReadonlySet<Scope> | undefined;
  if (client.bound_user_id) {
    const role = await activeRole(rt.db, client.organization_id, client.bound_user_id);
    if (!role) throw invalidGrant('The user this client is bound to is no longer an active member of the organization.');
    subjectScopes = boundUserScopes(role);
  }
  const decision = decideScopes({
    requested: parseScopeParam(params.scope),
    clientAllowed: clientScopeList(client),
    subjectScopes,
    userToken: false,
  });
  if (!decision.ok) throw invalidScope(decision.description);
  const { response } = await rt.tokens.issue(rt.db, {
    client,
    organizationId: client.organization_id,
    userId: client.bound_user_id,
    grantType: 'client_credentials',
    scopes: [...decision.scopes],
    scopeDisplay: decision.granted,
    withRefreshToken: false,
  });
  return response;
};
