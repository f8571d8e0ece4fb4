import { sql } from 'kysely';
import type { Db } from '../storage/database.js';

/**
 * The PostgreSQL roles of SQL access. Every login is a member of one group role,
 * `sensorcloud_reporting`, and of nothing else: the group holds USAGE on schema `reporting` and
 * SELECT on its views, and is what pg_hba.conf names (`+sensorcloud_reporting`, scram-sha-256) so
 * logins authenticate with their password whatever the other rules trust. A login is created
 * without any attribute that lifts a limit (NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
 * NOBYPASSRLS), so SET ROLE can reach only the group (which sees no rows: the views key on
 * session_user) and SET SESSION AUTHORIZATION is refused (superusers only).
 *
 * DDL takes no parameters: role names are generated (`sc_sql_` + hex) and quoted as identifiers,
 * passwords arrive as SCRAM verifiers (scram.ts), settings are numbers.
 */

export const REPORTING_GROUP = 'sensorcloud_reporting';

/**
 * What the server's own database role needs for SQL access, beyond owning its database: CREATEROLE
 * to create, change and drop the logins, and the privileges of pg_signal_backend to end their
 * sessions (rotation, disabling, the watchdog). Without them PostgreSQL answers 42501.
 */
export type ServerPrivilege = 'CREATEROLE' | 'pg_signal_backend';

/** PostgreSQL's insufficient_privilege. */
export const isInsufficientPrivilege = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === '42501';

/** Whether the server's role may end other roles' sessions (superuser, or the privileges of pg_signal_backend). */
export async function canSignalBackends(db: Db): Promise<boolean> {
  const { rows } = await sql<{ can: boolean }>`
    select coalesce((select rolsuper from pg_roles where rolname = current_user), false)
      or pg_has_role(current_user, 'pg_signal_backend', 'USAGE') as can`.execute(db);
  return rows[0]?.can === true;
}

export interface LoginLimits {
  statementTimeoutSeconds: number;
  connectionLimit: number;
}

/**
 * Makes the group role if the cluster has none yet (roles are cluster-wide: another database may
 * have made it, possibly at this very moment) and grants it the views of this database.
 */
export async function grantReporting(db: Db): Promise<void> {
  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = ${sql.lit(REPORTING_GROUP)}) then
        begin
          create role ${sql.id(REPORTING_GROUP)} nologin;
        exception when duplicate_object or unique_violation then null;
        end;
      end if;
    end $$`.execute(db);
  await sql`grant usage on schema reporting to ${sql.id(REPORTING_GROUP)}`.execute(db);
  await sql`grant select on all tables in schema reporting to ${sql.id(REPORTING_GROUP)}`.execute(db);
}

export async function createLogin(db: Db, role: string, verifier: string, limits: LoginLimits): Promise<void> {
  await sql`
    create role ${sql.id(role)} login nosuperuser nocreatedb nocreaterole inherit noreplication nobypassrls
      connection limit ${sql.lit(limits.connectionLimit)} password ${sql.lit(verifier)} in role ${sql.id(REPORTING_GROUP)}`.execute(db);
  await applyLimits(db, role, limits);
}

/**
 * Session defaults of the login. The statement timeout (and the idle-in-transaction one, so an
 * open transaction cannot hold back vacuum) bound what one report costs; a login could lower
 * or lift them in its own session: endOverlongWork (a job every few seconds) ends what outlives
 * them anyway, and production points logins at a replica (docs/operations.md). Read-only by default as a second wall behind the missing grants.
 */
async function applyLimits(db: Db, role: string, limits: LoginLimits): Promise<void> {
  const timeout = `${limits.statementTimeoutSeconds}s`;
  await sql`alter role ${sql.id(role)} set statement_timeout = ${sql.lit(timeout)}`.execute(db);
  await sql`alter role ${sql.id(role)} set idle_in_transaction_session_timeout = ${sql.lit(timeout)}`.execute(db);
  await sql`alter role ${sql.id(role)} set default_transaction_read_only = on`.execute(db);
  await sql`alter role ${sql.id(role)} set search_path = reporting`.execute(db);
}

/** The new password works for new connections at once; the old one no longer does. */
export async function setLoginPassword(db: Db, role: string, verifier: string): Promise<void> {
  await sql`alter role ${sql.id(role)} password ${sql.lit(verifier)}`.execute(db);
}

/** Refuses new connections (before the role is dropped, and should the drop fail). */
export async function refuseLogin(db: Db, role: string): Promise<void> {
  await sql`alter role ${sql.id(role)} nologin`.execute(db);
}

/** Ends every session of the login on this server; answers how many there were. */
export async function terminateSessions(db: Db, role: string): Promise<number> {
  const { rows } = await sql<{ pid: number }>`
    select pid from pg_stat_activity where usename = ${role} and pid <> pg_backend_pid()`.execute(db);
  for (const { pid } of rows) await sql`select pg_terminate_backend(${pid}::int, 5000)`.execute(db);
  return rows.length;
}

export async function dropLogin(db: Db, role: string): Promise<void> {
  await sql`drop role if exists ${sql.id(role)}`.execute(db);
}

/**
 * Ends what a login's own session settings let outlive its limits: a login may `SET
 * statement_timeout = 0` (PostgreSQL lets any role change its session defaults), so statements of
 * reporting logins running past `timeoutSeconds` are cancelled, and sessions idle in a transaction
 * that long are terminated (they hold back vacuum). Membership is read from pg_auth_members, so a
 * cluster without the group simply has nothing to end. Answers what was ended.
 */
export async function endOverlongWork(db: Db, timeoutSeconds: number): Promise<{ cancelled: number; terminated: number }> {
  const { rows } = await sql<{ pid: number; idle: boolean }>`
    select a.pid, a.state <> 'active' as idle from pg_stat_activity a
    where a.pid <> pg_backend_pid()
      and a.usesysid in (
        select m.member from pg_auth_members m join pg_roles g on g.oid = m.roleid where g.rolname = ${REPORTING_GROUP})
      and ((a.state = 'active' and a.query_start < now() - make_interval(secs => ${timeoutSeconds}))
        or (a.state like 'idle in transaction%' and a.state_change < now() - make_interval(secs => ${timeoutSeconds})))`.execute(db);
  let cancelled = 0;
  let terminated = 0;
  for (const { pid, idle } of rows) {
    if (idle) {
      await sql`select pg_terminate_backend(${pid}::int)`.execute(db);
      terminated += 1;
    } else {
      await sql`select pg_cancel_backend(${pid}::int)`.execute(db);
      cancelled += 1;
    }
  }
  return { cancelled, terminated };
}
