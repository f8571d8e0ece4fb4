import type { ColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

/** An external OpenID Connect provider people of an organization may sign in with. */
export interface IdentityProvidersTable {
  /** Made by the repository: the secret is sealed bound to it before the row is written. */
  id: string;
  organization_id: string;
  /** Shown on the login page: "Sign in with <name>"; unique in the organization. */
  name: string;
  /** The OpenID issuer identifier (discovery at <issuer>/.well-known/openid-configuration). */
  issuer: string;
  client_id: string;
  /** The client secret, sealed (security/secret-box.ts, bound to the provider id): used again, never shown. */
  client_secret_sealed: string;
  /** Lower-case email domains whose people may sign in; empty: any domain. */
  allowed_email_domains: ColumnType<string[], string[] | undefined, string[]>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/**
 * A sign-in sent to a provider and not back yet: found by the SHA-256 of its `state`, taken (deleted)
 * by the callback that finishes it, so a state is used once.
 */
export interface ExternalSigninsTable {
  state_hash: string;
  organization_id: string;
  provider_id: string;
  /** SHA-256 of the browser session's nonce: the callback must come back to the same browser. */
  browser_hash: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  expires_at: ColumnType<Date, Date | string, never>;
}

export type IdentityProvider = {
  id: string;
  organization_id: string;
  name: string;
  issuer: string;
  client_id: string;
  client_secret_sealed: string;
  allowed_email_domains: string[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
};

export interface ExternalSigninTables {
  identity_providers: IdentityProvidersTable;
  external_signins: ExternalSigninsTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends ExternalSigninTables {}
}
