import { sql } from 'kysely';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import type { Db } from '../storage/database.js';
import type { Role } from '../storage/schema.js';
import { deleteUserBrowserSessions } from './sessions.repo.js';
import { escapeLike, isUuid } from '../storage/sql.js';
import { rowsPerOwner } from '../storage/per-owner.js';

/**
 * The people of one organization as the users API sees them: a user joined with their membership.
 * Every query is scoped by organization; a user of another organization does not exist here.
 */

export interface MemberView {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  /** True when the person can sign in with a password (otherwise: invited, no password yet). */
  has_password: boolean;
  deactivated_at: Date | null;
  joined_at: Date;
  created_at: Date;
  updated_at: Date;
}

export const MEMBER_SORTS: Record<string, SortField> = {
  email: { column: 'users.email', cast: 'text' },
  joined_at: { column: 'memberships.created_at', cast: 'timestamptz' },
  created_at: { column: 'users.created_at', cast: 'timestamptz' },
};

export interface MemberFilter {
  role?: Role | undefined;
  email?: string | undefined;
  /** true: only active members; false: only deactivated ones. */
  active?: boolean | undefined;
  q?: string | undefined;
  groupId?: string | undefined;
}

function members(db: Db, organizationId: string) {
  return db
    .selectFrom('users')
    .innerJoin('memberships', 'memberships.user_id', 'users.id')
    .select([
      'users.id',
      'users.email',
      'users.name',
      'memberships.role',
      sql<boolean>`users.password_hash is not null`.as('has_password'),
      'memberships.deactivated_at',
      'memberships.created_at as joined_at',
      'users.created_at',
      'users.updated_at',
    ])
    .where('memberships.organization_id', '=', organizationId);
}

export async function listMemberViews(
  db: Db,
  organizationId: string,
  filter: MemberFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<MemberView>> {
  let query = members(db, organizationId);
  if (filter.role !== undefined) query = query.where('memberships.role', '=', filter.role);
  if (filter.email !== undefined) query = query.where('users.email', '=', filter.email.trim().toLowerCase());
  if (filter.active === true) query = query.where('memberships.deactivated_at', 'is', null);
  if (filter.active === false) query = query.where('memberships.deactivated_at', 'is not', null);
  if (filter.q !== undefined) {
    const pattern = `%${escapeLike(filter.q)}%`;
    query = query.where((eb) => eb.or([eb('users.email', 'ilike', pattern), eb('users.name', 'ilike', pattern)]));
  }
  if (filter.groupId !== undefined) {
    if (!isUuid(filter.groupId)) return { items: [], nextCursor: undefined, limit: page.limit };
    const groupId = filter.groupId;
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('group_users')
          .select('group_users.user_id')
          .whereRef('group_users.user_id', '=', 'users.id')
          .where('group_users.organization_id', '=', organizationId)
          .where('group_users.group_id', '=', groupId),
      ),
    );
  }
  const rows = await paginate(query, sort, 'users.id', page).execute();
  // keysetPage reads the sort value by column name; joined_at is an alias of memberships.created_at.
  const keyed = sort.column === 'memberships.created_at' ? { ...sort, column: 'joined_at' } : sort;
  return keysetPage(rows, keyed, page);
}

export async function findMemberView(db: Db, organizationId: string, userId: string): Promise<MemberView | undefined> {
  if (!isUuid(userId)) return undefined;
  return members(db, organizationId).where('users.id', '=', userId).executeTakeFirst();
}

/** People by id (`include`): one statement; ids that are not members of the organization are left out. */
export async function findMemberViewsByIds(db: Db, organizationId: string, userIds: readonly string[]): Promise<MemberView[]> {
  const valid = userIds.filter(isUuid);
  if (valid.length === 0) return [];
  return members(db, organizationId).where('users.id', 'in', valid).execute();
}

/** The people of these groups, by email, each with its group (`include`): one statement. */
export async function membersOfGroups(
  db: Db,
  organizationId: string,
  groupIds: readonly string[],
  limit?: number,
): Promise<(MemberView & { group_id: string })[]> {
  const valid = groupIds.filter(isUuid);
  if (valid.length === 0) return [];
  const query = members(db, organizationId)
    .innerJoin('group_users', (join) =>
      join.onRef('group_users.user_id', '=', 'users.id').onRef('group_users.organization_id', '=', 'memberships.organization_id'),
    )
    .select('group_users.group_id')
    .where('group_users.group_id', 'in', valid);
  return rowsPerOwner(db, query, {
    owner: 'group_users.group_id',
    order: [
      ['users.email', 'asc'],
      ['users.id', 'asc'],
    ],
    limit,
  });
}

export async function setMemberRole(db: Db, organizationId: string, userId: string, role: Role): Promise<boolean> {
  if (!isUuid(userId)) return false;
  const result = await db
    .updateTable('memberships')
    .set({ role })
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function setMemberName(db: Db, userId: string, name: string | null): Promise<void> {
  await db.updateTable('users').set({ name, updated_at: new Date() }).where('id', '=', userId).execute();
}

/**
 * Deactivates (a date) or reactivates (null) the person in this organization only. Deactivation
 * also ends their browser sessions (which are not per organization): they sign in again to use
 * their other memberships.
 */
export async function setMemberDeactivated(db: Db, organizationId: string, userId: string, at: Date | null): Promise<boolean> {
  if (!isUuid(userId)) return false;
  const result = await db
    .updateTable('memberships')
    .set({ deactivated_at: at })
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  const changed = result.numUpdatedRows > 0n;
  if (changed && at !== null) await deleteUserBrowserSessions(db, userId);
  return changed;
}

/** Removes the person from the organization (their group memberships go with it). */
export async function removeMember(db: Db, organizationId: string, userId: string): Promise<boolean> {
  if (!isUuid(userId)) return false;
  const result = await db
    .deleteFrom('memberships')
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function countActiveOwners(db: Db, organizationId: string): Promise<number> {
  const row = await db
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('organization_id', '=', organizationId)
    .where('role', '=', 'owner')
    .where('deactivated_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The user's role in the organization if they are an active member of it: the user not
 * deactivated, the membership present and not deactivated. Every grant that acts for a user asks
 * this at issuance; the bearer check applies the same rule on each lookup.
 */
export async function activeRole(db: Db, organizationId: string, userId: string): Promise<Role | undefined> {
  const row = await db
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select('m.role')
    .where('m.organization_id', '=', organizationId)
    .where('m.user_id', '=', userId)
    .where('m.deactivated_at', 'is', null)
    .where('u.deactivated_at', 'is', null)
    .executeTakeFirst();
  return row?.role;
}
