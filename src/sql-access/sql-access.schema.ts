import type { ColumnType } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

/**
 * An organization's reporting login (migration 0019): at most one per organization. The password
 * is not here: PostgreSQL keeps its SCRAM verifier in the role itself.
 */
export interface SqlAccessLoginsTable {
  organization_id: string;
  /** The PostgreSQL login (`sc_sql_…`), unique in the cluster; the views key on it (session_user). */
  role_name: string;
  /** Canonical `network/prefix` strings; the views show rows only to connections from inside one. */
  allowed_cidrs: ColumnType<string[], string[], string[]>;
  created_by: string | null;
  created_at: CreatedAt;
  password_rotated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  updated_at: UpdatedAt;
}

export interface SqlAccessTables {
  sql_access_logins: SqlAccessLoginsTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends SqlAccessTables {}
}
