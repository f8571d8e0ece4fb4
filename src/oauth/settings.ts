import type { Environment } from '../config/env.js';

/**
 * Tunables of the authorization server (their variables: config/env.ts and README). Rate limits
 * are per-node request ceilings, not brute-force protection; that is the abuse guard's (abuse/)
 * together with the argon2id cost of every check.
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

/** The authorization server's settings, from the environment read at start (config/env.ts). */
export function oauthSettings(env: Environment): OAuthSettings {
  return {
    rateLimit: { ipMax: env.OAUTH_RATE_LIMIT_IP, clientMax: env.OAUTH_RATE_LIMIT_CLIENT, windowMs: env.OAUTH_RATE_LIMIT_WINDOW * 1000 },
    deviceIntervalSeconds: env.OAUTH_DEVICE_INTERVAL,
    deviceCodeTtlSeconds: env.OAUTH_DEVICE_CODE_TTL,
    defaultRefreshTokenTtl: env.OAUTH_REFRESH_TOKEN_TTL,
    refreshReuseGraceSeconds: env.OAUTH_REFRESH_REUSE_GRACE,
    purgeIntervalMs: env.OAUTH_PURGE_INTERVAL * 1000,
    secretCacheTtlMs: 5 * 60_000,
  };
}
