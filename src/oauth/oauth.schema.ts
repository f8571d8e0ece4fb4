import type { ColumnType, Generated, Selectable } from 'kysely';
import type { GrantType, TokenFormat, UserAuthMode } from './grant-types.js';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

/**
 * Who owns a client's registration besides the organization's admins: the provisioning file
 * (re-applied at every start) or the IoTConnect sign-in (its per-organization client).
 */
export type ClientManager = 'provisioning' | 'iotconnect';

/** Tables of the authorization server (migrations 0002_oauth, 0018_client_management). */
export interface OAuthClientsTable {
  id: Generated<string>;
  organization_id: string;
  client_id: string;
  name: string;
  secret_hash: string | null;
  public: ColumnType<boolean, boolean | undefined, boolean>;
  grant_types: GrantType[];
  scopes: string[];
  redirect_uris: ColumnType<string[], string[] | undefined, string[]>;
  privacy_policy_url: string | null;
  access_token_ttl: number;
  refresh_token_ttl: number | null;
  token_format: ColumnType<TokenFormat, TokenFormat | undefined, TokenFormat>;
  bound_user_id: string | null;
  user_auth: ColumnType<UserAuthMode, UserAuthMode | undefined, UserAuthMode>;
  resource_server: ColumnType<boolean, boolean | undefined, boolean>;
  /** A disabled client cannot authenticate or start an authorization, and its tokens are refused (0018). */
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  /** Who owns the registration when the organization's admins do not (0018); null: the organization. */
  managed_by: ColumnType<ClientManager | null, ClientManager | null | undefined, ClientManager | null>;
  created_by: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface OAuthGrantsTable {
  id: Generated<string>;
  organization_id: string;
  client_pk: string;
  user_id: string | null;
  grant_type: GrantType;
  scopes: string[];
  scope_display: string;
  created_at: CreatedAt;
  revoked_at: Timestamp | null;
}

export interface OAuthAccessTokensTable {
  token_hash: string;
  grant_id: string;
  organization_id: string;
  client_pk: string;
  user_id: string | null;
  scopes: string[];
  scope_display: string;
  created_at: CreatedAt;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface OAuthRefreshTokensTable {
  token_hash: string;
  grant_id: string;
  organization_id: string;
  created_at: CreatedAt;
  expires_at: Timestamp | null;
  used_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export interface OAuthAuthorizationCodesTable {
  code_hash: string;
  organization_id: string;
  client_pk: string;
  user_id: string;
  redirect_uri: string;
  scopes: string[];
  scope_display: string;
  code_challenge: string | null;
  code_challenge_method: string | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
  used_at: Timestamp | null;
  grant_id: string | null;
}

export interface OAuthDeviceCodesTable {
  device_code_hash: string;
  user_code: string;
  client_pk: string;
  organization_id: string;
  requested_scope: string | null;
  status: ColumnType<'pending' | 'approved' | 'denied' | 'redeemed', 'pending' | undefined, 'pending' | 'approved' | 'denied' | 'redeemed'>;
  user_id: string | null;
  scopes: string[] | null;
  scope_display: string | null;
  interval_seconds: ColumnType<number, number | undefined, number>;
  last_polled_at: Timestamp | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export interface OAuthConsentsTable {
  organization_id: string;
  user_id: string;
  client_pk: string;
  scopes: string[];
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface ApiKeysTable {
  id: Generated<string>;
  organization_id: string;
  name: string;
  key_hash: string;
  prefix: string;
  scopes: string[];
  created_by: string | null;
  created_at: CreatedAt;
  last_used_at: Timestamp | null;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  private_jwk: ColumnType<Record<string, unknown>, string, string>;
  public_jwk: ColumnType<Record<string, unknown>, string, string>;
  created_at: CreatedAt;
  retired_at: Timestamp | null;
  publish_until: Timestamp | null;
}

export interface OAuthTables {
  oauth_clients: OAuthClientsTable;
  oauth_grants: OAuthGrantsTable;
  oauth_access_tokens: OAuthAccessTokensTable;
  oauth_refresh_tokens: OAuthRefreshTokensTable;
  oauth_authorization_codes: OAuthAuthorizationCodesTable;
  oauth_device_codes: OAuthDeviceCodesTable;
  oauth_consents: OAuthConsentsTable;
  api_keys: ApiKeysTable;
  signing_keys: SigningKeysTable;
}

export type OAuthClient = Selectable<OAuthClientsTable>;
export type ApiKey = Selectable<ApiKeysTable>;

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends OAuthTables {}
}
