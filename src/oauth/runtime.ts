import type { AbuseGuard } from '../abuse/guard.js';
import type { BearerAuthenticator } from '../auth/bearer.js';
import type { Config } from '../config/config.js';
import { type ScopeToken, isScopeToken } from '../identity/scopes.js';
import type { Db } from '../storage/database.js';
import { ClientAuthenticator } from './client-auth.js';
import type { GrantType } from './grant-types.js';
import { SignInOptions } from './authorize/sign-in-options.js';
import type { OAuthClient } from './oauth.schema.js';
import type { OAuthSettings } from './settings.js';
import { SigningKeyStore } from './tokens/jwt.js';
import { TokenService } from './tokens/token-service.js';

/** The per-server objects of the authorization server, built once per server (server/app.ts) and shared as `services.oauth`. */
export interface OAuthRuntime {
  db: Db;
  config: Config;
  settings: OAuthSettings;
  bearer: BearerAuthenticator;
  keys: SigningKeyStore;
  tokens: TokenService;
  clientAuth: ClientAuthenticator;
  /** Brute-force and abuse protection of every credential check, shared by all nodes. */
  abuse: AbuseGuard;
  /** Other ways to sign in that the login page offers (external identity providers register here). */
  signInOptions: SignInOptions;
}

export function createOAuthRuntime(
  deps: { db: Db; config: Config; bearer: BearerAuthenticator; abuse: AbuseGuard },
  settings: OAuthSettings,
): OAuthRuntime {
  const keys = new SigningKeyStore(deps.db, deps.config.publicUrl);
  return {
    ...deps,
    settings,
    keys,
    tokens: new TokenService(deps.db, keys, deps.bearer, deps.config.publicUrl, settings.defaultRefreshTokenTtl),
    clientAuth: new ClientAuthenticator(deps.db, settings, deps.abuse),
    signInOptions: new SignInOptions(),
  };
}

/** The client's registered scope list, aliases included, as decideScopes takes it. */
export function clientScopeList(client: OAuthClient): ScopeToken[] {
  return client.scopes.filter(isScopeToken);
}

export function clientAllows(client: OAuthClient, grantType: GrantType): boolean {
  return client.grant_types.includes(grantType);
}

/**
 * Whether a grant gets (and may use) refresh tokens: the password and device grants always; the
 * authorization code when `offline_access` was granted or the client is registered for the
 * refresh_token grant; client credentials never (RFC 6749 §4.4.3).
 */
export function refreshAllowed(client: OAuthClient, grantType: GrantType, scopes: readonly string[]): boolean {
  switch (grantType) {
    case 'password':
    case 'urn:ietf:params:oauth:grant-type:device_code':
      return true;
    case 'authorization_code':
      return scopes.includes('offline_access') || clientAllows(client, 'refresh_token');
    default:
      return false;
  }
}
