import { isScope, roleScopes } from '../../identity/scopes.js';
import { safeEqual, sha256 } from '../../security/tokens.js';
import { attachGrantToCode, spendAuthorizationCode } from '../codes.js';
import { OAuthError, invalidGrant, invalidRequest } from '../errors.js';
import { refreshAllowed } from '../runtime.js';
import type { TokenResponse } from '../tokens/token-service.js';
import { type GrantHandler, activeRole } from './types.js';

const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636, S256 only; required for public clients). The code is spent
 * by a conditional UPDATE in the same transaction that issues the tokens and records the grant on
 * the code, so a replay — concurrent or later — finds that grant and revokes it (RFC 6749 §4.1.2).
 * A failed check (wrong verifier, redirect URI or client) still spends the code: it cannot be
 * retried, so the verifier cannot be guessed.
 */
export const authorizationCodeGrant: GrantHandler = async ({ rt, client, params }) => {
  const code = params.code;
  if (code === undefined) throw invalidRequest('The authorization_code grant needs code.');
  const verifier = params.code_verifier;
  if (verifier !== undefined && !VERIFIER.test(verifier))
    throw invalidRequest('code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1).');
  await rt.tokens.prepare(client);

  let replayedGrant: string | null = null;
  const outcome = await rt.db.transaction().execute(async (tx): Promise<TokenResponse | OAuthError> => {
    const spent = await spendAuthorizationCode(tx, code);
    if (spent.status === 'unknown') return invalidGrant('The authorization code is invalid or expired.');
    if (spent.status === 'replayed') {
      if (spent.grantId) await rt.tokens.revokeFamily(spent.grantId, tx);
      replayedGrant = spent.grantId;
      return invalidGrant('The authorization code was already used; the tokens issued with it have been revoked.');
    }
    const stored = spent.code;
    if (stored.clientPk !== client.id) return invalidGrant('The authorization code was issued to another client.');

    // The redirect URI must be the one the code was sent to (RFC 6749 §4.1.3); it may only be
    // omitted when the client has exactly that one registered.
    const redirectUri = params.redirect_uri;
    if (
      redirectUri !== undefined
        ? redirectUri !== stored.redirectUri
        : !(client.redirect_uris.length === 1 && client.redirect_uris[0] === stored.redirectUri)
    ) {
      return invalidGrant('redirect_uri does not match the one of the authorization request.');
    }

    if (stored.codeChallenge) {
      if (verifier === undefined) return invalidGrant('code_verifier is required: the authorization request used PKCE.');
      // RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))); the verifier is ASCII by its grammar.
      const computed = sha256(verifier);
      if (stored.codeChallengeMethod !== 'S256' || !safeEqual(computed, stored.codeChallenge))
        return invalidGrant('code_verifier does not match the code_challenge.');
    } else {
      if (client.public) return invalidGrant('Public clients must use PKCE.');
      if (verifier !== undefined) return invalidGrant('code_verifier was sent but the authorization request had no code_challenge.');
    }

    const role = await activeRole(tx, stored.organizationId, stored.userId);
    if (!role) return invalidGrant('The user is no longer an active member of the organization.');
    const held = roleScopes(role);
    const scopes = stored.scopes.filter((s) => isScope(s) && held.has(s));
    if (scopes.length === 0) return invalidGrant("The user's role no longer holds any of the approved scopes.");

    const issued = await rt.tokens.issue(tx, {
      client,
      organizationId: stored.organizationId,
      userId: stored.userId,
      grantType: 'authorization_code',
      scopes,
      scopeDisplay: stored.scopeDisplay,
      withRefreshToken: refreshAllowed(client, 'authorization_code', scopes),
    });
    await attachGrantToCode(tx, stored.codeHash, issued.grantId);
    return issued.response;
  });
  if (replayedGrant) rt.bearer.evict({ revocationGroup: replayedGrant });
  if (outcome instanceof OAuthError) throw outcome;
  return outcome;
};
