import { preparedStatement } from '../storage/prepared.js';
import type { Db } from '../storage/database.js';
import type { Membership, Organization, Role, User } from '../storage/schema.js';
import { deleteUserBrowserSessions } from './sessions.repo.js';

/**
 * Users are people, and may belong to several organizations; everything an organization sees of
 * them goes through its memberships, so every list and lookup here other than login is scoped
 * by organization.
 */

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Login lookup, the one unscoped query: the organization is chosen after authentication. */
export async function findUserByEmail(db: Db, email: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

export async function findUserByExternalTokenDigest(db: Db, digest: string): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('external_auth_token_digest', '=', digest).executeTakeFirst();
}

export interface UserFields {
  email: string;
  name?: string | null | undefined;
  passwordHash?: string | null | undefined;
  externalTokenDigest?: string | null | undefined;
}

/**
 * Creates the user, or updates the given fields of the user with that email. Every password is
 * set here (setup, provisioning, CLI, users API), so this is where a change signs the user out.
 */
export async function upsertUser(db: Db, fields: UserFields): Promise<User> {
  const email = normalizeEmail(fields.email);
  const changes = {
    ...(fields.name !== undefined && { name: fields.name }),
    ...(fields.passwordHash !== undefined && { password_hash: fields.passwordHash }),
    ...(fields.externalTokenDigest !== undefined && { external_auth_token_digest: fields.externalTokenDigest }),
  };
  const existing = await findUserByEmail(db, email);
  if (existing) {
    if (Object.entries(changes).every(([key, value]) => existing[key as keyof User] === value)) return existing;
    // A new password ends every browser session: whoever knew the old one is signed out.
    if (changes.password_hash !== undefined && changes.password_hash !== existing.password_hash)
      await deleteUserBrowserSessions(db, existing.id);
    return db
      .updateTable('users')
      .set({ ...changes, updated_at: new Date() })
      .where('id', '=', existing.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  return db
    .insertInto('users')
    .values({ email, ...changes })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Creates the user unless an account with that email exists (then undefined: nothing is changed). */
export async function insertUserIfAbsent(db: Db, fields: UserFields): Promise<User | undefined> {
  return db
    .insertInto('users')
    .values({
      email: normalizeEmail(fields.email),
      name: fields.name ?? null,
      password_hash: fields.passwordHash ?? null,
      external_auth_token_digest: fields.externalTokenDigest ?? null,
    })
    .onConflict((oc) => oc.doNothing())
    .returningAll()
    .executeTakeFirst();
}

export interface MemberRow extends User {
  role: Role;
  /** Deactivation of this membership (per organization), as opposed to the person's `deactivated_at`. */
  membership_deactivated_at: Date | null;
}

export async function findMember(db: Db, organizationId: string, userId: string): Promise<MemberRow | undefined> {
  return db
    .selectFrom('users')
    .innerJoin('memberships', 'memberships.user_id', 'users.id')
    .selectAll('users')
    .select(['memberships.role', 'memberships.deactivated_at as membership_deactivated_at'])
    .where('memberships.organization_id', '=', organizationId)
    .where('users.id', '=', userId)
    .executeTakeFirst();
}

const FIND_MEMBER_BY_EMAIL = preparedStatement(
  'find_member_by_email',
  `
  select u.id, u.email, u.name, u.password_hash, u.external_auth_token_digest, u.deactivated_at, u.created_at, u.updated_at,
         m.role, m.deactivated_at as membership_deactivated_at
  from users u
  join memberships m on m.user_id = u.id
  where m.organization_id = $1 and u.email = $2`,
);

/**
 * The password grant's and the login form's lookup (before the argon2id verification): a
 * precompiled statement, no query building per request.
 */
export async function findMemberByEmail(db: Db, organizationId: string, email: string): Promise<MemberRow | undefined> {
  const { rows } = await db.executeQuery<MemberRow>(FIND_MEMBER_BY_EMAIL.compile([organizationId, normalizeEmail(email)]));
  return rows[0];
}

export async function listMembers(db: Db, organizationId: string): Promise<MemberRow[]> {
  return db
    .selectFrom('users')
    .innerJoin('memberships', 'memberships.user_id', 'users.id')
    .selectAll('users')
    .select(['memberships.role', 'memberships.deactivated_at as membership_deactivated_at'])
    .where('memberships.organization_id', '=', organizationId)
    .orderBy('users.email')
    .execute();
}

/** The organizations a person is an active member of, with their role there, oldest membership first: one statement. */
export async function activeOrganizationsOf(db: Db, userId: string): Promise<(Organization & { role: Role })[]> {
  return db
    .selectFrom('memberships')
    .innerJoin('organizations', 'organizations.id', 'memberships.organization_id')
    .selectAll('organizations')
    .select('memberships.role')
    .where('memberships.user_id', '=', userId)
    .where('memberships.deactivated_at', 'is', null)
    .orderBy('memberships.created_at')
    .execute();
}

export async function listMemberships(db: Db, userId: string): Promise<Membership[]> {
  return db.selectFrom('memberships').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
}

export async function setMembership(db: Db, organizationId: string, userId: string, role: Role): Promise<void> {
  await db
    .insertInto('memberships')
    .values({ organization_id: organizationId, user_id: userId, role })
    .onConflict((oc) => oc.columns(['organization_id', 'user_id']).doUpdateSet({ role }))
    .execute();
}
