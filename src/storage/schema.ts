import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Table types for Kysely. Each table is owned by one capability's repository module; no other
 * module writes SQL against it (see ARCHITECTURE.md).
 */

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** Defaults to now() on insert; set explicitly when a row changes. */
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

export interface InstanceSettingsTable {
  key: string;
  value: string;
}

export interface SetupTokensTable {
  token_hash: string;
  created_at: CreatedAt;
  used_at: Timestamp | null;
}

export interface OrganizationsTable {
  id: Generated<string>;
  slug: string;
  name: string;
  /** SHA-256 of the IoTConnect solution key: looked up by value, never shown again. */
  solution_key_hash: string | null;
  /** Days its readings are kept (readings/retention.ts); null: the server's default. */
  readings_retention_days: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface UsersTable {
  id: Generated<string>;
  email: string;
  name: string | null;
  /** argon2id PHC string; null for users who have not set a password (invited). */
  password_hash: string | null;
  /** Keyed argon2id digest of the Sensorberg external_authentication_token (see identity/secrets.ts). */
  external_auth_token_digest: string | null;
  deactivated_at: Timestamp | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export type Role = 'owner' | 'admin' | 'member' | 'viewer';

export interface MembershipsTable {
  organization_id: string;
  user_id: string;
  role: Role;
  created_at: CreatedAt;
  /** Set when an admin deactivates the person in this organization (migration 0004). */
  deactivated_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface GroupsTable {
  id: Generated<string>;
  organization_id: string;
  name: string;
  description: string | null;
  created_at: CreatedAt;
}

export interface GroupUsersTable {
  organization_id: string;
  group_id: string;
  user_id: string;
}

/** Migration 0008: an offer to join an organization, accepted by the invited person (identity/invitations.*). */
export interface OrganizationInvitationsTable {
  id: Generated<string>;
  organization_id: string;
  /** Normalized (trimmed, lower-case). */
  email: string;
  /** The name the inviter suggested, offered on the new-account form. */
  name: string | null;
  role: Role;
  /** SHA-256 of the `sc_inv_` token; the token itself is shown once. */
  token_hash: string;
  invited_by: string | null;
  created_at: CreatedAt;
  expires_at: Timestamp;
  accepted_at: Timestamp | null;
  declined_at: Timestamp | null;
  revoked_at: Timestamp | null;
  /** Set when a new invitation to the same email replaced this expired one. */
  superseded_at: Timestamp | null;
  /** The account that accepted (never set otherwise). */
  user_id: string | null;
}

/** A signed-in browser (migration 0009); the cookie holds the id, the row its SHA-256. */
export interface BrowserSessionsTable {
  id_hash: string;
  user_id: string;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export interface FoundationTables {
  instance_settings: InstanceSettingsTable;
  setup_tokens: SetupTokensTable;
  organizations: OrganizationsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  groups: GroupsTable;
  group_users: GroupUsersTable;
  organization_invitations: OrganizationInvitationsTable;
  browser_sessions: BrowserSessionsTable;
}

/**
 * Every table: the foundation's here, and each capability's added from its own schema module
 * (`declare module '../storage/schema.js' { interface Database extends XTables {} }`), so that a
 * new capability declares its tables without editing this file.
 */
export interface Database extends FoundationTables {}

export type Organization = Selectable<OrganizationsTable>;
export type NewOrganization = Insertable<OrganizationsTable>;
export type OrganizationUpdate = Updateable<OrganizationsTable>;
export type User = Selectable<UsersTable>;
export type Membership = Selectable<MembershipsTable>;
export type Group = Selectable<GroupsTable>;
export type Invitation = Selectable<OrganizationInvitationsTable>;
