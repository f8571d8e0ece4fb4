import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { Group } from '../storage/schema.js';
import { definedOnly, escapeLike, isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';

/** Group administration for the groups API (groups.repo.ts keeps the provisioning upserts). Scoped by organization. */

export const GROUP_SORTS: Record<string, SortField> = {
  name: { column: 'groups.name', cast: 'text' },
  created_at: { column: 'groups.created_at', cast: 'timestamptz' },
};

export interface GroupFilter {
  name?: string | undefined;
  q?: string | undefined;
  userId?: string | undefined;
  sensorId?: string | undefined;
}

export async function listGroupsPage(
  db: Db,
  organizationId: string,
  filter: GroupFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Group>> {
  if ((filter.userId !== undefined && !isUuid(filter.userId)) || (filter.sensorId !== undefined && !isUuid(filter.sensorId))) {
    return { items: [], nextCursor: undefined, limit: page.limit };
  }
  let query = db.selectFrom('groups').selectAll('groups').where('groups.organization_id', '=', organizationId);
  if (filter.name !== undefined) query = query.where('groups.name', '=', filter.name);
  if (filter.q !== undefined) query = query.where('groups.name', 'ilike', `%${escapeLike(filter.q)}%`);
  if (filter.userId !== undefined) {
    const userId = filter.userId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('group_users')
          .select('group_users.user_id')
          .whereRef('group_users.group_id', '=', 'groups.id')
          .where('group_users.organization_id', '=', organizationId)
          .where('group_users.user_id', '=', userId),
      ),
    );
  }
  if (filter.sensorId !== undefined) {
    const sensorId = filter.sensorId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('group_sensors')
          .select('group_sensors.sensor_id')
          .whereRef('group_sensors.group_id', '=', 'groups.id')
          .where('group_sensors.organization_id', '=', organizationId)
          .where('group_sensors.sensor_id', '=', sensorId),
      ),
    );
  }
  const rows = await paginate(query, sort, 'groups.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findGroupById(db: Db, organizationId: string, id: string): Promise<Group | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('groups').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** Groups by id (`include`): one statement; ids that are not the organization's are left out. */
export async function findGroupsByIds(db: Db, organizationId: string, ids: readonly string[]): Promise<Group[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  return db.selectFrom('groups').selectAll().where('organization_id', '=', organizationId).where('id', 'in', valid).execute();
}

/** The groups of these people, by name, each with its person (`include`): one statement. */
export async function groupsOfUsers(
  db: Db,
  organizationId: string,
  userIds: readonly string[],
  limit?: number,
): Promise<(Group & { user_id: string })[]> {
  const valid = userIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = db
    .selectFrom('groups')
    .innerJoin('group_users', (join) =>
      join.onRef('group_users.group_id', '=', 'groups.id').onRef('group_users.organization_id', '=', 'groups.organization_id'),
    )
    .selectAll('groups')
    .select('group_users.user_id')
    .where('groups.organization_id', '=', organizationId)
    .where('group_users.user_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'group_users.user_id',
    order: [
      ['groups.name', 'asc'],
      ['groups.id', 'asc'],
    ],
    limit,
  });
}

export async function insertGroup(db: Db, organizationId: string, name: string, description: string | null): Promise<Group> {
  return db.insertInto('groups').values({ organization_id: organizationId, name, description }).returningAll().executeTakeFirstOrThrow();
}

export async function updateGroup(
  db: Db,
  organizationId: string,
  id: string,
  changes: { name?: string | undefined; description?: string | null | undefined },
): Promise<Group | undefined> {
  if (!isUuid(id)) return undefined;
  const set = definedOnly(changes);
  if (Object.keys(set).length === 0) return findGroupById(db, organizationId, id);
  return db
    .updateTable('groups')
    .set(set)
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export async function deleteGroup(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  const result = await db.deleteFrom('groups').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** Adds users to the group (already there: unchanged); the composite key refuses non-members. */
export async function addGroupUsers(db: Db, organizationId: string, groupId: string, userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  await db
    .insertInto('group_users')
    .values([...new Set(userIds)].map((user_id) => ({ organization_id: organizationId, group_id: groupId, user_id })))
    .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
    .execute();
}

/** Removes these users from the group (those not in it: nothing); answers how many were. */
export async function removeGroupUsers(db: Db, organizationId: string, groupId: string, userIds: readonly string[]): Promise<number> {
  const valid = userIds.filter(isUuid);
  if (!isUuid(groupId) || valid.length === 0) return 0;
  const result = await db
    .deleteFrom('group_users')
    .where('organization_id', '=', organizationId)
    .where('group_id', '=', groupId)
    .where('user_id', 'in', valid)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** user ids of each of the groups. */
export async function groupUserIds(db: Db, organizationId: string, groupIds: readonly string[]): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return map;
  const rows = await db
    .selectFrom('group_users')
    .select(['group_id', 'user_id'])
    .where('organization_id', '=', organizationId)
    .where('group_id', 'in', [...groupIds])
    .orderBy('user_id')
    .execute();
  for (const row of rows) map.get(row.group_id)?.push(row.user_id);
  return map;
}
