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

/** How a password-grant client identifies users: Sensorberg's mode swaps the password for a per-user token. */
export const USER_AUTH_MODES = ['password', 'external_authentication_token'] as const;
export type UserAuthMode = (typeof USER_AUTH_MODES)[number];

export const TOKEN_FORMATS = ['opaque', 'jwt'] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];
