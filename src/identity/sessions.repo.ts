import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import type { User } from '../storage/schema.js';

/**
 * Signed-in browser sessions (web/session.ts), by SHA-256 of their random id. Times
 * are the database's, so every node sharing it agrees on expiry.
 */

export async function insertBrowserSession(db: Db, idHash: string, userId: string, lifetimeSeconds: number): Promise<void> {
  await db
    .insertInto('browser_sessions')
    .values({ id_hash: idHash, user_id: userId, expires_at: sql<Date>`now() + make_interval(secs => ${lifetimeSeconds})` })
    .execute();
}

/** The signed-in user of a live session; a deactivated user has none. */
export async function findBrowserSessionUser(db: Db, idHash: string): Promise<User | undefined> {
  return db
    .selectFrom('browser_sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .selectAll('u')
    .where('s.id_hash', '=', idHash)
    .where('s.expires_at', '>', sql<Date>`now()`)
    .where('u.deactivated_at', 'is', null)
    .executeTakeFirst();
}

export async function deleteBrowserSession(db: Db, idHash: string): Promise<void> {
  await db.deleteFrom('browser_sessions').where('id_hash', '=', idHash).execute();
}

/** Signs the user out everywhere (password change, deactivation). */
export async function deleteUserBrowserSessions(db: Db, userId: string): Promise<void> {
  await db.deleteFrom('browser_sessions').where('user_id', '=', userId).execute();
}

export async function purgeExpiredBrowserSessions(db: Db): Promise<number> {
  const result = await db.deleteFrom('browser_sessions').where('expires_at', '<=', sql<Date>`now()`).executeTakeFirst();
  return Number(result.numDeletedRows);
}
