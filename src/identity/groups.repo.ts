import type { Db } from '../storage/database.js';
import type { Group } from '../storage/schema.js';

export async function listGroups(db: Db, organizationId: string): Promise<Group[]> {
  return db.selectFrom('groups').selectAll().where('organization_id', '=', organizationId).orderBy('name').execute();
}

export async function findGroup(db: Db, organizationId: string, id: string): Promise<Group | undefined> {
  return db.selectFrom('groups').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

export async function upsertGroup(db: Db, organizationId: string, name: string, description: string | null = null): Promise<Group> {
  return db
    .insertInto('groups')
    .values({ organization_id: organizationId, name, description })
    .onConflict((oc) => oc.columns(['organization_id', 'name']).doUpdateSet({ description }))
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Replaces the group's users; the composite foreign keys refuse a user of another organization. */
export async function setGroupUsers(db: Db, organizationId: string, groupId: string, userIds: readonly string[]): Promise<void> {
  await db.deleteFrom('group_users').where('organization_id', '=', organizationId).where('group_id', '=', groupId).execute();
  if (userIds.length === 0) return;
  await db
    .insertInto('group_users')
    .values(userIds.map((user_id) => ({ organization_id: organizationId, group_id: groupId, user_id })))
    .execute();
}

export async function listGroupUserIds(db: Db, organizationId: string, groupId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('group_users')
    .select('user_id')
    .where('organization_id', '=', organizationId)
    .where('group_id', '=', groupId)
    .orderBy('user_id')
    .execute();
  return rows.map((r) => r.user_id);
}
