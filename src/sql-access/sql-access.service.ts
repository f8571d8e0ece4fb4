import { randomBytes } from 'node:crypto';
import type { AuditAction } from '../audit/actions.js';
import { type AuditEntry, recordAuditEvent } from '../audit/audit.repo.js';
import type { Config } from '../config/config.js';
import { generateToken } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import { parseCidrs } from './cidrs.js';
import {
  type LoginLimits,
  type ServerPrivilege,
  canSignalBackends,
  createLogin,
  dropLogin,
  grantReporting,
  isInsufficientPrivilege,
  refuseLogin,
  setLoginPassword,
  terminateSessions,
} from './reporting-roles.js';
import { type SqlAccessLogin, deleteLogin, findLogin, insertLogin, lockLogin, updateLogin } from './sql-access.repo.js';
import { scramVerifier } from './scram.js';

/**
 * SQL access of an organization (SPEC §6, §8): one PostgreSQL login reading the views of schema
 * `reporting` (migrations/0019_sql_access.ts), enabled, re-ranged, given a new password and
 * disabled here, by `/v1/sql-access` and by `sensorcloud sql-access`. Each change is one
 * transaction with its audit entry: the role DDL is transactional in PostgreSQL, so a login
 * exists exactly when its row does. Ending sessions is not transactional and comes after commit.
 *
 * - The password (256 random bits) is returned once; PostgreSQL receives only its SCRAM verifier
 *   and nothing of ours stores it.
 * - Rotation: new connections need the new password at once, and the login's open sessions end
 *   (whoever held the old password is out).
 * - Disable: the row goes (the views show nothing from the next statement on), the login is
 *   refused, its sessions terminated, then the role is dropped.
 */

export const SQL_ACCESS_SCHEMA = 'reporting';
const ROLE_PREFIX = 'sc_sql_';

/** What a refusal means to the caller: 404 (not enabled), 409 (embedded database, already enabled), 422 (bad ranges). */
export class SqlAccessRefusal extends Error {
  constructor(
    readonly status: 404 | 409 | 422,
    detail: string,
    readonly issues: { index: number; message: string }[] = [],
  ) {
    super(detail);
  }
}

/**
 * 409 naming what the server's database role lacks. A conflict with how the server is set up, like
 * the embedded database's 409: retrying changes nothing until an operator grants the privilege, so
 * not a 503 (which clients retry) nor a 500 (nothing is broken); nothing was changed.
 */
export function missingPrivilege(privilege: ServerPrivilege, action: string): SqlAccessRefusal {
  const grant = privilege === 'CREATEROLE' ? 'ALTER ROLE <server role> CREATEROLE' : 'GRANT pg_signal_backend TO <server role>';
  return new SqlAccessRefusal(
    409,
    `SQL access cannot ${action}: the server's PostgreSQL role lacks ${privilege}, which SQL access needs. ` +
      `An operator must grant it (${grant}); see docs/operations.md. Nothing was changed.`,
  );
}

/** Runs a change of logins; PostgreSQL's refusal for want of CREATEROLE becomes a 409 naming it. */
async function withCreateRole<T>(action: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isInsufficientPrivilege(error)) throw missingPrivilege('CREATEROLE', action);
    throw error;
  }
}

/** Where logins connect, as handed out, and their limits. */
export interface SqlAccessSettings extends LoginLimits {
  host: string;
  port: number;
  database: string;
}

/** SQL_ACCESS_* of the environment, each defaulting to what DATABASE_URL names. */
export function sqlAccessSettings(config: Config): SqlAccessSettings {
  const env = config.env;
  const url = config.databaseUrl ? new URL(config.databaseUrl) : undefined;
  return {
    host: env.SQL_ACCESS_HOST ?? (url?.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost'),
    port: env.SQL_ACCESS_PORT ?? (url?.port ? Number(url.port) : 5432),
    database: env.SQL_ACCESS_DATABASE ?? (url ? decodeURIComponent(url.pathname.slice(1)) : ''),
    statementTimeoutSeconds: env.SQL_ACCESS_STATEMENT_TIMEOUT,
    connectionLimit: env.SQL_ACCESS_CONNECTION_LIMIT,
  };
}

/** The login as shown to the organization (never the password). */
export interface SqlAccessView extends SqlAccessSettings {
  username: string;
  schema: string;
  allowedCidrs: string[];
  createdAt: Date;
  passwordRotatedAt: Date;
  updatedAt: Date;
}

/** Who makes a change: the audit entry's organization, actor and address, and the person if one. */
export interface SqlAccessActor {
  audit: Pick<AuditEntry, 'organizationId' | 'actor' | 'sourceAddress'>;
  userId: string | null;
}

function checkedCidrs(texts: readonly string[]): string[] {
  const parsed = parseCidrs(texts);
  if ('cidrs' in parsed) return parsed.cidrs;
  throw new SqlAccessRefusal(422, parsed.issues.map((i) => `allowed_cidrs[${i.index}]: ${i.message}`).join('; '), parsed.issues);
}

export class SqlAccessService {
  constructor(
    private readonly db: Db,
    private readonly databaseKind: 'embedded' | 'postgres',
    private readonly settings: SqlAccessSettings,
  ) {}

  private view(row: SqlAccessLogin): SqlAccessView {
    return {
      ...this.settings,
      username: row.role_name,
      schema: SQL_ACCESS_SCHEMA,
      allowedCidrs: row.allowed_cidrs,
      createdAt: row.created_at,
      passwordRotatedAt: row.password_rotated_at,
      updatedAt: row.updated_at,
    };
  }

  private requirePostgres(): void {
    if (this.databaseKind !== 'postgres')
      throw new SqlAccessRefusal(
        409,
        'SQL access needs PostgreSQL: this server runs on the embedded database, which accepts no logins. Run it with DATABASE_URL to offer SQL access.',
      );
  }

  private audit(tx: Db, by: SqlAccessActor, action: AuditAction, row: SqlAccessLogin, details: Record<string, unknown> = {}) {
    return recordAuditEvent(tx, {
      ...by.audit,
      action,
      target: { type: 'sql_access', id: row.organization_id },
      details: { username: row.role_name, allowed_cidrs: row.allowed_cidrs, ...details },
    });
  }

  /** The organization's login, or 404. */
  private async locked(tx: Db, organizationId: string): Promise<SqlAccessLogin> {
    const row = await lockLogin(tx, organizationId);
    if (!row) throw new SqlAccessRefusal(404, 'SQL access is not enabled for this organization.');
    return row;
  }

  async show(organizationId: string): Promise<SqlAccessView> {
    this.requirePostgres();
    const row = await findLogin(this.db, organizationId);
    if (!row) throw new SqlAccessRefusal(404, 'SQL access is not enabled for this organization.');
    return this.view(row);
  }

  async enable(
    organizationId: string,
    allowedCidrs: readonly string[],
    by: SqlAccessActor,
  ): Promise<{ login: SqlAccessView; password: string }> {
    this.requirePostgres();
    const cidrs = checkedCidrs(allowedCidrs);
    const password = generateToken('', 32);
    const roleName = ROLE_PREFIX + randomBytes(10).toString('hex');
    const row = await withCreateRole('be enabled', () =>
      this.db.transaction().execute(async (tx) => {
        if (await lockLogin(tx, organizationId))
          throw new SqlAccessRefusal(409, 'SQL access is already enabled: rotate its password or disable it first.');
        let row: SqlAccessLogin;
        try {
          row = await insertLogin(tx, { organizationId, roleName, allowedCidrs: cidrs, createdBy: by.userId });
        } catch (error) {
          // Another request enabled it between the check and the insert.
          if ((error as { code?: string }).code === '23505')
            throw new SqlAccessRefusal(409, 'SQL access is already enabled: rotate its password or disable it first.');
          throw error;
        }
        await grantReporting(tx);
        await createLogin(tx, roleName, scramVerifier(password), this.settings);
        await this.audit(tx, by, 'sql_access.enabled', row);
        return row;
      }),
    );
    return { login: this.view(row), password };
  }

  async setAllowedCidrs(organizationId: string, allowedCidrs: readonly string[], by: SqlAccessActor): Promise<SqlAccessView> {
    this.requirePostgres();
    const cidrs = checkedCidrs(allowedCidrs);
    const row = await this.db.transaction().execute(async (tx) => {
      const before = await this.locked(tx, organizationId);
      const row = await updateLogin(tx, organizationId, { allowedCidrs: cidrs });
      await this.audit(tx, by, 'sql_access.updated', row, { previous_allowed_cidrs: before.allowed_cidrs });
      return row;
    });
    return this.view(row);
  }

  /**
   * Checked before anything changes: the sessions opened with the old password must end, and that
   * comes after the commit, when the new password could no longer be taken back.
   */
  async rotate(organizationId: string, by: SqlAccessActor): Promise<{ login: SqlAccessView; password: string }> {
    this.requirePostgres();
    if (!(await canSignalBackends(this.db))) throw missingPrivilege('pg_signal_backend', 'rotate the password (open sessions must end)');
    const password = generateToken('', 32);
    const row = await withCreateRole('rotate the password', () =>
      this.db.transaction().execute(async (tx) => {
        const current = await this.locked(tx, organizationId);
        await setLoginPassword(tx, current.role_name, scramVerifier(password));
        const row = await updateLogin(tx, organizationId, { passwordRotatedAt: new Date() });
        await this.audit(tx, by, 'sql_access.password_rotated', row);
        return row;
      }),
    );
    await terminateSessions(this.db, row.role_name);
    return { login: this.view(row), password };
  }

  /**
   * Answers the error that kept the role from being dropped, if one did: the login is harmless
   * already (NOLOGIN, no row for the views to match) and an operator can drop it later.
   */
  async disable(organizationId: string, by: SqlAccessActor): Promise<{ dropError?: unknown }> {
    this.requirePostgres();
    // Open sessions must end, after the commit: refused before anything changes when they cannot.
    if (!(await canSignalBackends(this.db))) throw missingPrivilege('pg_signal_backend', 'be disabled (open sessions must end)');
    const row = await withCreateRole('be disabled', () =>
      this.db.transaction().execute(async (tx) => {
        const row = await this.locked(tx, organizationId);
        await deleteLogin(tx, organizationId);
        await refuseLogin(tx, row.role_name);
        await this.audit(tx, by, 'sql_access.disabled', row);
        return row;
      }),
    );
    await terminateSessions(this.db, row.role_name);
    try {
      await dropLogin(this.db, row.role_name);
      return {};
    } catch (error) {
      return { dropError: error };
    }
  }
}
