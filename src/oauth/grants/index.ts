import { type GrantType, isGrantType } from '../grant-types.js';
import { authorizationCodeGrant } from './authorization-code.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { deviceCodeGrant } from './device-code.js';
import { passwordGrant } from './password.js';
import { refreshTokenGrant } from './refresh-token.js';
import type { GrantHandler } from './types.js';

/** The token endpoint's grants, one module each. */
export const GRANT_HANDLERS: Record<GrantType, GrantHandler> = {
  authorization_code: authorizationCodeGrant,
  client_credentials: clientCredentialsGrant,
  password: passwordGrant,
  refresh_token: refreshTokenGrant,
  'urn:ietf:params:oauth:grant-type:device_code': deviceCodeGrant,
};

export { isGrantType };
export type { GrantHandler, TokenRequest } from './types.js';
