/** Grant types the token endpoint implements (SPEC §3), one module each under oauth/grants/. */
export const GRANT_TYPES = [
  'authorization_code',
  'client_credentials',
  'password',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
] as const;

export type GrantType = (typeof GRANT_TYPES)[number];

export const isGrantType = (value: string): value is GrantType => (GRANT_TYPES as readonly string[]).includes(value);

/**
 * Names clients written from a vendor's prose send for a registered grant. Sensorberg's document
 * calls its machine-to-machine grant `user_credentials` (its curl example says
 * `client_credentials`): both reach the same grant. Not advertised in the metadata, which lists
 * registered grant types only.
 */
const GRANT_TYPE_ALIASES: Readonly<Record<string, GrantType>> = { user_credentials: 'client_credentials' };

/** The registered grant type `value` names (itself, or the one it is an alias of), or undefined. */
export function grantTypeOf(value: string): GrantType | undefined {
  if (isGrantType(value)) return value;
  return Object.hasOwn(GRANT_TYPE_ALIASES, value) ? GRANT_TYPE_ALIASES[value] : undefined;
}

/** How a password-grant client identifies users: Sensorberg's mode swaps the password for a per-user token. */
export const USER_AUTH_MODES = ['password', 'external_authentication_token'] as const;
export type UserAuthMode = (typeof USER_AUTH_MODES)[number];

export const TOKEN_FORMATS = ['opaque', 'jwt'] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];
