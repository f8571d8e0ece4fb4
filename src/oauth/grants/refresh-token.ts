import { type Scope, boundUserScopes, isScope, isScopeAlias, parseScopeParam, roleScopes } from '../../identity/scopes.js';
import { sha256 } from '../../security/tokens.js';
import type { Db } from '../../storage/database.js';
import { OAuthError, invalidGrant, invalidRequest, invalidScope, unauthorizedClient } from '../errors.js';
import { type OAuthRuntime, refreshAllowed } from '../runtime.js';
import { REFRESH_TOKEN_PREFIX, type TokenResponse } from '../tokens/token-service.js';
import { type RefreshTokenView, findRefreshToken, spendRefreshToken } from '../tokens/tokens.repo.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each refresh spends the presented refresh token
 * and issues a new access and refresh token in the same family. Everything is checked before the
 * token is spent, so a refused refresh (a wider scope, a changed role) leaves it usable.
 *
 * Presenting a spent token within `OAUTH_REFRESH_REUSE_GRACE` seconds of its spending (a double
 * submit, two tabs, the losers of a race — the same client, as only it may present the token) is
 * refused without consequence; the first refresh's tokens stay valid. Later, it is treated as
 * theft and revokes the whole family: the legitimate client and an attacker holding a copy cannot
 * both keep going, and neither can tell which of them was first.
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
    if (!refreshAllowed(client, stored.grantType, stored.grantScopes) && !client.grant_types.includes('refresh_token')) {
      return unauthorizedClient('This client may not use the refresh_token grant.');
    }
    const unusable = await refuseUnusable(rt, tx, stored);
    if (unusable) {
      if (unusable.revoked) revokedFamily = stored.grantId;
      return unusable.error;
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
        if (isScopeAlias(entry) && originalTokens.has(entry)) for (const s of granted) narrowed.add(s);
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

    if (!(await spendRefreshToken(tx, hash))) {
      // Spent (or revoked) by a transaction that committed after this one read the row: read it again.
      const current = await findRefreshToken(tx, hash);
      const lost = current && (await refuseUnusable(rt, tx, current));
      if (lost?.revoked) revokedFamily = stored.grantId;
      return lost ? lost.error : invalidGrant('The refresh token is invalid.');
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

/** Why a refresh token cannot be spent, if it cannot; reuse after the grace window revokes its family. */
async function refuseUnusable(
  rt: OAuthRuntime,
  tx: Db,
  stored: RefreshTokenView,
): Promise<{ error: OAuthError; revoked: boolean } | undefined> {
  if (stored.grantRevokedAt || stored.revokedAt) return { error: invalidGrant('The refresh token has been revoked.'), revoked: false };
  if (stored.expired) return { error: invalidGrant('The refresh token has expired.'), revoked: false };
  if (stored.usedSecondsAgo === null) return undefined;
  const grace = rt.settings.refreshReuseGraceSeconds;
  if (grace > 0 && stored.usedSecondsAgo < grace) {
    return { error: invalidGrant('The refresh token was already used; use the tokens of the first refresh.'), revoked: false };
  }
  await rt.tokens.revokeFamily(stored.grantId, tx);
  return { error: invalidGrant('The refresh token was already used; every token of this grant has been revoked.'), revoked: true };
}
