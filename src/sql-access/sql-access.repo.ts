import type { Selectable } from 'kysely';
import type { Db } from '../storage/database.js';
import type { SqlAccessLoginsTable } from './sql-access.schema.js';

/** Rows of `sql_access_logins`: one per organization, looked up by the organization only. */

export type SqlAccessLogin = Selectable<SqlAccessLoginsTable>;

export function findLogin(db: Db, organizationId: string): Promise<SqlAccessLogin | undefined> {
  return db.selectFrom('sql_access_logins').selectAll().where('organization_id', '=', organizationId).executeTakeFirst();
}

/** The row, locked until the transaction ends: one change of an organization's login at a time. */
export function lockLogin(tx: Db, organizationId: string): Promise<SqlAccessLogin | undefined> {
  return tx.selectFrom('sql_access_logins').selectAll().where('organization_id', '=', organizationId).forUpdate().executeTakeFirst();
}

export function insertLogin(
  tx: Db,
  row: { organizationId: string; roleName: string; allowedCidrs: string[]; createdBy: string | null },
): Promise<SqlAccessLogin> {
  return tx
    .insertInto('sql_access_logins')
    .values({
      organization_id: row.organizationId,
      role_name: row.roleName,
      allowed_cidrs: row.allowedCidrs,
      created_by: row.createdBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function updateLogin(
  tx: Db,
  organizationId: string,
  change: { allowedCidrs?: string[]; passwordRotatedAt?: Date },
): Promise<SqlAccessLogin> {
  return tx
    .updateTable('sql_access_logins')
    .set({
      ...(change.allowedCidrs && { allowed_cidrs: change.allowedCidrs }),
      ...(change.passwordRotatedAt && { password_rotated_at: change.passwordRotatedAt }),
      updated_at: new Date(),
    })
    .where('organization_id', '=', organizationId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteLogin(tx: Db, organizationId: string): Promise<void> {
  await tx.deleteFrom('sql_access_logins').where('organization_id', '=', organizationId).execute();
}
