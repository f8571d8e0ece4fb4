import { ConfigError } from '../config/config.js';

/**
 * Tunables of the authorization server, read from the environment once when the routes are
 * mounted. Rate limits are per-node request ceilings, not brute-force protection; that is the
 * abuse guard's (abuse/, whose variables include OAUTH_PASSWORD_FREE_FAILURES and
 * OAUTH_CLIENT_FREE_FAILURES) together with the argon2id cost of every check.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | OAUTH_RATE_LIMIT_IP | 3000 | requests per window per client IP on the token, revocation, token-info and device endpoints (0: off) |
 * | OAUTH_RATE_LIMIT_CLIENT | 6000 | token and device-authorization requests per window per authenticated client (0: off) |
 * | OAUTH_RATE_LIMIT_WINDOW | 60 | window length, seconds |
 * | OAUTH_DEVICE_INTERVAL | 5 | device-code polling interval, seconds (RFC 8628 §3.2) |
 * | OAUTH_DEVICE_CODE_TTL | 600 | device code lifetime, seconds |
 * | OAUTH_REFRESH_TOKEN_TTL | 7776000 | refresh-token lifetime for clients that set none (90 days, renewed on each rotation) |
 * | OAUTH_REFRESH_REUSE_GRACE | 10 | seconds after a refresh during which presenting its spent token again is refused without revoking the family (0: every reuse revokes) |
 * | OAUTH_PURGE_INTERVAL | 300 | seconds between purges of expired codes and tokens |
 */
export interface OAuthSettings {
  rateLimit: { ipMax: number; clientMax: number; windowMs: number };
  deviceIntervalSeconds: number;
  deviceCodeTtlSeconds: number;
  defaultRefreshTokenTtl: number;
  refreshReuseGraceSeconds: number;
  purgeIntervalMs: number;
  /** How long a verified client secret is remembered (see client-auth.ts). */
  secretCacheTtlMs: number;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  return value;
}

export function loadOAuthSettings(env: NodeJS.ProcessEnv = process.env): OAuthSettings {
  return {
    rateLimit: {
      ipMax: integer(env, 'OAUTH_RATE_LIMIT_IP', 3000, 0, 1e9),
      clientMax: integer(env, 'OAUTH_RATE_LIMIT_CLIENT', 6000, 0, 1e9),
      windowMs: integer(env, 'OAUTH_RATE_LIMIT_WINDOW', 60, 1, 86_400) * 1000,
    },
    deviceIntervalSeconds: integer(env, 'OAUTH_DEVICE_INTERVAL', 5, 1, 60),
    deviceCodeTtlSeconds: integer(env, 'OAUTH_DEVICE_CODE_TTL', 600, 60, 86_400),
    defaultRefreshTokenTtl: integer(env, 'OAUTH_REFRESH_TOKEN_TTL', 90 * 86_400, 60, 10 * 365 * 86_400),
    refreshReuseGraceSeconds: integer(env, 'OAUTH_REFRESH_REUSE_GRACE', 10, 0, 300),
    purgeIntervalMs: integer(env, 'OAUTH_PURGE_INTERVAL', 300, 1, 86_400) * 1000,
    secretCacheTtlMs: 5 * 60_000,
  };
}
