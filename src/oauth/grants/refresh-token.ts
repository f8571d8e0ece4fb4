import { type Scope, boundUserScopes, isScope, isScopeAlias, parseScopeParam, roleScopes } from '../../identity/scopes.js';
import { sha256 } from '../../security/tokens.js';
import { OAuthError, invalidGrant, invalidRequest, invalidScope, unauthorizedClient } from '../errors.js';
import { refreshAllowed } from '../runtime.js';
import { REFRESH_TOKEN_PREFIX, type TokenResponse } from '../tokens/token-service.js';
import { findRefreshToken, spendRefreshToken } from '../tokens/tokens.repo.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each refresh spends the presented refresh token
 * (a conditional UPDATE … WHERE used_at IS NULL, so of concurrent refreshes exactly one wins) and
 * issues a new access and refresh token in the same family. Presenting a spent refresh token —
 * a replay, or the losers of a race — revokes the whole family: the legitimate client and an
 * attacker holding a copy cannot both keep going, and neither can tell which of them was first.
 */
export const refreshTokenGrant: GrantHandler = async ({ rt, client, params }) => {
  const token = params.refresh_token;
  if (token === undefined) throw invalidRequest('The refresh_token grant needs refresh_token.');
  if (!token.startsWith(REFRESH_TOKEN_PREFIX) || token.length > 512) throw invalidGrant('The refresh token is invalid.');
  const hash = sha256(token);
  await rt.tokens.prepare(client);

  let revokedFamily: string | undefined;
  const outcome = await rt.db.transaction().execute(async (tx): Promise<TokenResponse | OAuthError> => {
    const stored = await findRefreshToken(tx, hash, { lockFamily: true });
    if (!stored || stored.clientPk !== client.id) return invalidGrant('The refresh token is invalid.');
    if (stored.grantRevokedAt || stored.revokedAt) return invalidGrant('The refresh token has been revoked.');
    if (stored.expired) return invalidGrant('The refresh token has expired.');
    if (!refreshAllowed(client, stored.grantType, stored.grantScopes) && !client.grant_types.includes('refresh_token')) {
      return unauthorizedClient('This client may not use the refresh_token grant.');
    }
    if (stored.usedAt || !(await spendRefreshToken(tx, hash))) {
      await rt.tokens.revokeFamily(stored.grantId, tx);
      revokedFamily = stored.grantId;
      return invalidGrant('The refresh token was already used; every token of this grant has been revoked.');
    }

    // Scopes: the grant's, optionally narrowed by `scope` (§6: never wider), and by the user's current role.
    const granted = stored.grantScopes.filter(isScope);
    let scopes: Scope[] = granted;
    let display = stored.grantScopeDisplay;
    const requested = parseScopeParam(params.scope);
    if (requested.length > 0 && requested.join(' ') !== stored.grantScopeDisplay) {
      const originalTokens = new Set(stored.grantScopeDisplay.split(' '));
      const narrowed = new Set<Scope>();
      for (const entry of requested) {
        if (isScopeAlias(entry) && originalTokens.has(entry)) granted.forEach((s) => narrowed.add(s));
        else if (isScope(entry) && granted.includes(entry)) narrowed.add(entry);
        else return invalidScope(`scope "${entry}" was not part of the original grant`);
      }
      scopes = [...narrowed];
      display = requested.join(' ');
    }
    if (stored.userId !== null) {
      const role = await activeRole(tx, stored.organizationId, stored.userId);
      if (!role) return invalidGrant('The user is no longer an active member of the organization.');
      const held = stored.grantType === 'client_credentials' ? boundUserScopes(role) : roleScopes(role);
      scopes = scopes.filter((s) => held.has(s));
      if (scopes.length === 0) return invalidGrant("The user's role no longer holds any of the granted scopes.");
    }
    const issued = await rt.tokens.issue(tx, {
      client,
      organizationId: stored.organizationId,
      userId: stored.userId,
      grantType: stored.grantType,
      scopes,
      scopeDisplay: display,
      withRefreshToken: true,
      grantId: stored.grantId,
    });
    return issued.response;
  });
  if (revokedFamily) rt.bearer.evict({ revocationGroup: revokedFamily });
  if (outcome instanceof OAuthError) throw outcome;
  return outcome;
};
