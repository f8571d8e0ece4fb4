import type { Db } from '../storage/database.js';
import type { NotificationPreferences } from './notifications.schema.js';

/** A person's notification preferences (no row: the defaults). Keyed by user: they apply in every organization. */

export const defaultPreferences = (userId: string): NotificationPreferences => ({
  user_id: userId,
  email_enabled: true,
  quiet_start: null,
  quiet_end: null,
  quiet_timezone: null,
  updated_at: new Date(0),
});

export async function findPreferences(db: Db, userId: string): Promise<NotificationPreferences> {
  const row = await db.selectFrom('notification_preferences').selectAll().where('user_id', '=', userId).executeTakeFirst();
  return row ?? defaultPreferences(userId);
}

export interface PreferenceFields {
  email_enabled: boolean;
  quiet_start: string | null;
  quiet_end: string | null;
  quiet_timezone: string | null;
}

export async function savePreferences(db: Db, userId: string, fields: PreferenceFields): Promise<NotificationPreferences> {
  return db
    .insertInto('notification_preferences')
    .values({ user_id: userId, ...fields })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ ...fields, updated_at: new Date() }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The unsubscribe link: email off, whatever else was chosen. False when the user no longer exists. */
export async function turnEmailOff(db: Db, userId: string): Promise<boolean> {
  const user = await db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
  if (!user) return false;
  await db
    .insertInto('notification_preferences')
    .values({ user_id: userId, email_enabled: false })
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ email_enabled: false, updated_at: new Date() }))
    .execute();
  return true;
}
