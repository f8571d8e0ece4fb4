import { externalTokenDigestFor } from '../../identity/accounts.js';
import { decideScopes, parseScopeParam, roleScopes } from '../../identity/scopes.js';
import { findMemberByEmail, findUserByExternalTokenDigest, normalizeEmail } from '../../identity/users.repo.js';
import { verifyPassword } from '../../security/passwords.js';
import type { Role } from '../../storage/schema.js';
import { invalidGrant, invalidRequest, invalidScope, tooManyRequests, unauthorizedClient } from '../errors.js';
import { clientScopeList } from '../runtime.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 6749 §4.3 (Sonicu, IoTConnect), and Sensorberg's variant: for clients whose `user_auth` is
 * `external_authentication_token`, the user is identified by that per-user token instead of a
 * username and password. Failures are throttled per account and per IP before any check runs;
 * the answer never says whether the account exists.
 */
export const passwordGrant: GrantHandler = async ({ rt, client, method, params, ip }) => {
  if (method === 'none' && client.public) throw unauthorizedClient('Public clients cannot use the password grant.');
  const ipKey = `ip:${ip}`;
  const ipWait = rt.ipBackoff.retryAfter(ipKey);
  if (ipWait > 0) throw tooManyRequests('Too many failed logins from this address; retry later.', ipWait);

  let userId: string;
  let role: Role | undefined;
  if (client.user_auth === 'external_authentication_token') {
    const token = params.external_authentication_token;
    if (token === undefined) throw invalidRequest('This client identifies users by external_authentication_token, which is missing.');
    const user = token.length <= 1024 ? await findUserByExternalTokenDigest(rt.db, await externalTokenDigestFor(rt.db, token)) : undefined;
    role = user && user.deactivated_at === null ? await activeRole(rt.db, client.organization_id, user.id) : undefined;
    if (!user || !role) {
      rt.ipBackoff.failure(ipKey);
      throw invalidGrant('The external_authentication_token is not valid.');
    }
    userId = user.id;
  } else {
    if (params.external_authentication_token !== undefined && params.username === undefined) {
      throw invalidRequest('This client identifies users by username and password, not external_authentication_token.');
    }
    const { username, password } = params;
    if (username === undefined || password === undefined) throw invalidRequest('The password grant needs username and password.');
    const account = `acct:${normalizeEmail(username)}`;
    const wait = rt.passwordBackoff.retryAfter(account);
    if (wait > 0) throw tooManyRequests('Too many failed logins for this account; retry later.', wait);
    const member = username.length <= 320 && password.length <= 1024 ? await findMemberByEmail(rt.db, client.organization_id, username) : undefined;
    const ok = await verifyPassword(member?.password_hash, password.length <= 1024 ? password : '');
    if (!member || !ok || member.deactivated_at !== null || member.membership_deactivated_at !== null) {
      rt.passwordBackoff.failure(account);
      rt.ipBackoff.failure(ipKey);
      throw invalidGrant('The username or password is incorrect.');
    }
    rt.passwordBackoff.success(account);
    userId = member.id;
    role = member.role;
  }

  const decision = decideScopes({ requested: parseScopeParam(params.scope), clientAllowed: clientScopeList(client), subjectScopes: roleScopes(role), userToken: true });
  if (!decision.ok) throw invalidScope(decision.description);
  const { response } = await rt.tokens.issue(rt.db, {
    client,
    organizationId: client.organization_id,
    userId,
    grantType: 'password',
    scopes: [...decision.scopes],
    scopeDisplay: decision.granted,
    withRefreshToken: true,
  });
  return response;
};
