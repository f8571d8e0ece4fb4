import type { Scope } from '../identity/scopes.js';

/**
 * Who is calling, as established by the bearer check. Every protected route reads this and
 * nothing else: the organization it may see, the user (if any) and the scopes it holds.
 */
export interface Principal {
  /** `browser_session`: a person signed in to the console (console/), never a bearer credential. */
  kind: 'user_token' | 'app_token' | 'api_key' | 'device' | 'browser_session';
  organizationId: string;
  /** The user acted for: the token's user, a bound user, an API key's creator; null for apps and devices. */
  userId: string | null;
  /** The OAuth client's public client_id, for tokens. */
  clientId: string | null;
  scopes: ReadonlySet<Scope>;
  /** SHA-256 of the presented credential: the cache key and the handle for revocation. */
  credentialHash: string;
  /** Grant family (tokens) or key/device id: revoking it evicts every cached credential of it. */
  revocationGroup: string;
  expiresAt: Date | null;
  deviceId?: string;
  /** The device's serial (its MQTT username and topic). */
  deviceSerial?: string;
  /** For OAuth access tokens: what introspection (RFC 7662) answers beyond the fields above. */
  token?: TokenDetails;
}

export interface TokenDetails {
  /** The issuing client's primary key (a client may introspect only its own tokens). */
  clientPk: string;
  grantType: string;
  userEmail: string | null;
  createdAt: Date;
}
