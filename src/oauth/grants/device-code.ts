import { isScope, roleScopes } from '../../identity/scopes.js';
import { pollDeviceCode } from '../device-codes.js';
import { OAuthError, invalidGrant, invalidRequest } from '../errors.js';
import { type GrantHandler, activeRole } from './types.js';

/**
 * RFC 8628 §3.4–3.5: the device polls with its device_code until the user has approved or denied
 * it on the /device page. Answers authorization_pending, slow_down (interval widened by 5 s),
 * access_denied, expired_token; an approved code is redeemed once.
 */
export const deviceCodeGrant: GrantHandler = async ({ rt, client, params }) => {
  const deviceCode = params.device_code;
  if (deviceCode === undefined) throw invalidRequest('The device_code grant needs device_code.');
  if (deviceCode.length > 512) throw invalidGrant('The device code is invalid.');
  const poll = await pollDeviceCode(rt.db, deviceCode, client.id);
  switch (poll.status) {
    case 'authorization_pending':
      throw new OAuthError('authorization_pending', 'The user has not yet approved this device.', 400, {}, { interval: poll.interval });
    case 'slow_down':
      throw new OAuthError(
        'slow_down',
        `Polling too fast; wait at least ${poll.interval} seconds between requests.`,
        400,
        {},
        { interval: poll.interval },
      );
    case 'access_denied':
      throw new OAuthError('access_denied', 'The user denied this device.');
    case 'expired_token':
      throw new OAuthError('expired_token', 'The device code has expired; start a new device authorization.');
    case 'invalid_grant':
      throw invalidGrant('The device code is invalid or was already used.');
  }
  const role = await activeRole(rt.db, poll.organizationId, poll.userId);
  if (!role) throw invalidGrant('The user who approved this device is no longer an active member of the organization.');
  const held = roleScopes(role);
  const scopes = poll.scopes.filter((s) => isScope(s) && held.has(s));
  if (scopes.length === 0) throw invalidGrant("The user's role holds none of the approved scopes.");
  const { response } = await rt.tokens.issue(rt.db, {
    client,
    organizationId: poll.organizationId,
    userId: poll.userId,
    grantType: 'urn:ietf:params:oauth:grant-type:device_code',
    scopes,
    scopeDisplay: poll.scopeDisplay,
    withRefreshToken: true,
  });
  return response;
};
