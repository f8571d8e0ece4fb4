import type { Refusal } from '../../abuse/guard.js';
import { recordFailedSignIn } from '../../audit/audit.repo.js';
import { externalTokenDigestFor } from '../../identity/accounts.js';
import { decideScopes, parseScopeParam, roleScopes } from '../../identity/scopes.js';
import { findMemberByEmail, findUserByExternalTokenDigest, normalizeEmail } from '../../identity/users.repo.js';
import { verifyPassword } from '../../security/passwords.js';
import type { Role } from '../../storage/schema.js';
import { type OAuthError, invalidGrant, invalidRequest, invalidScope, tooManyRequests, unauthorizedClient } from '../errors.js';
import { clientScopeList } from '../runtime.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 6749 §4.3 (Sonicu, IoTConnect), and Sensorberg's variant: for clients whose `user_auth` is
 * `external_authentication_token`, the user is identified by that per-user token instead of a
 * username and password. Every check runs under the abuse guard (abuse/guard.ts): refused before
 * it runs once this account has failed too often from this address, or this address too often
 * overall; the answer never says whether the account exists.
 */
export const passwordGrant: GrantHandler = async ({ rt, client, method, params, source, address }) => {
  if (method === 'none' && client.public) throw unauthorizedClient('Public clients cannot use the password grant.');

  let subject: { userId: string; role: Role };
  if (client.user_auth === 'external_authentication_token') {
    const token = params.external_authentication_token;
    if (token === undefined) throw invalidRequest('This client identifies users by external_authentication_token, which is missing.');
    const result = await rt.abuse.attempt({ door: 'external-token', source }, async () => {
      // The token's digest is an argon2id run: the expensive check the guard is there for.
      const user =
        token.length <= 1024 ? await findUserByExternalTokenDigest(rt.db, await externalTokenDigestFor(rt.db, token)) : undefined;
      const role = user && user.deactivated_at === null ? await activeRole(rt.db, client.organization_id, user.id) : undefined;
      return user && role ? { userId: user.id, role } : undefined;
    });
    if ('refused' in result) throw refusedLogin(result.refused);
    if ('failed' in result) throw invalidGrant('The external_authentication_token is not valid.');
    subject = result.value;
  } else {
    if (params.external_authentication_token !== undefined && params.username === undefined) {
      throw invalidRequest('This client identifies users by username and password, not external_authentication_token.');
    }
    const { username, password } = params;
    if (username === undefined || password === undefined) throw invalidRequest('The password grant needs username and password.');
    let tried: string | undefined;
    const result = await rt.abuse.attempt({ door: 'password', credential: normalizeEmail(username), source }, async () => {
      const member =
        username.length <= 320 && password.length <= 1024 ? await findMemberByEmail(rt.db, client.organization_id, username) : undefined;
      tried = member?.id;
      // verifyPassword checks a decoy hash without a member: the same time either way.
      const ok = await verifyPassword(member?.password_hash, password.length <= 1024 ? password : '');
      return member && ok && member.deactivated_at === null && member.membership_deactivated_at === null
        ? { userId: member.id, role: member.role }
        : undefined;
    });
    if ('refused' in result) throw refusedLogin(result.refused);
    if ('failed' in result) {
      // In the audit log of the client's organization, when the account is one of its members.
      if (tried) await recordFailedSignIn(rt.db, tried, address, 'password_grant', client.organization_id);
      throw invalidGrant('The username or password is incorrect.');
    }
    subject = result.value;
  }

  const decision = decideScopes({
    requested: parseScopeParam(params.scope),
    clientAllowed: clientScopeList(client),
    subjectScopes: roleScopes(subject.role),
    userToken: true,
  });
  if (!decision.ok) throw invalidScope(decision.description);
  const { response } = await rt.tokens.issue(rt.db, {
    client,
    organizationId: client.organization_id,
    userId: subject.userId,
    grantType: 'password',
    scopes: [...decision.scopes],
    scopeDisplay: decision.granted,
    withRefreshToken: true,
  });
  return response;
};

function refusedLogin(refusal: Refusal): OAuthError {
  const what = refusal.scope === 'credential' ? 'for this account from this address' : 'from this address';
  return tooManyRequests(`Too many failed logins ${what}; retry in ${refusal.retryAfterSeconds} s.`, refusal.retryAfterSeconds, {
    max: refusal.policy.freeFailures,
    windowSeconds: Math.ceil(refusal.policy.forgetAfterMs / 1000),
  });
}
