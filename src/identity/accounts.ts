import { hashPassword, lookupDigest } from '../security/passwords.js';
import type { Db } from '../storage/database.js';
import { installationSalt } from '../storage/instance.repo.js';
import type { Role, User } from '../storage/schema.js';
import { insertUserIfAbsent, setMembership, upsertUser } from './users.repo.js';

/**
 * The one way a person is added to (or updated in) an organization, shared by first-run setup,
 * provisioning, the CLI and accepted invitations, so every path hashes secrets the same way.
 */
export interface MemberInput {
  email: string;
  role: Role;
  name?: string | null | undefined;
  /** Plain password, hashed here; `undefined` leaves an existing hash untouched. */
  password?: string | undefined;
  /** Sensorberg token, stored as a keyed digest; `null` removes it. */
  externalAuthenticationToken?: string | null | undefined;
}

export async function saveMember(db: Db, organizationId: string, input: MemberInput): Promise<User> {
  const externalTokenDigest =
    input.externalAuthenticationToken === undefined || input.externalAuthenticationToken === null
      ? input.externalAuthenticationToken
      : await externalTokenDigestFor(db, input.externalAuthenticationToken);
  const user = await upsertUser(db, {
    email: input.email,
    name: input.name,
    passwordHash: input.password === undefined ? undefined : await hashPassword(input.password),
    externalTokenDigest,
  });
  await setMembership(db, organizationId, user.id, input.role);
  return user;
}

/**
 * A new account and its first membership, for a person creating their own account (accepting an
 * invitation). Undefined, with nothing written, when the email already has an account: only its
 * owner may set that account's password, by signing in.
 */
export async function createMember(
  db: Db,
  organizationId: string,
  input: { email: string; role: Role; name: string | null; password: string },
): Promise<User | undefined> {
  const user = await insertUserIfAbsent(db, { email: input.email, name: input.name, passwordHash: await hashPassword(input.password) });
  if (user) await setMembership(db, organizationId, user.id, input.role);
  return user;
}

export async function externalTokenDigestFor(db: Db, token: string): Promise<string> {
  return lookupDigest(token, await installationSalt(db));
}

export const PASSWORD_MIN_LENGTH = 10;

/** The password rule every form and the CLI share (NIST 800-63B: length over composition). */
export function passwordProblem(password: string): string | undefined {
  if (password.length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (password.length > 1024) return 'must be at most 1024 characters';
  return undefined;
}

/** Deliberately loose (one @, no spaces): the mailbox itself is the real check. */
export const isEmail = (value: string): boolean => value.length <= 320 && /^[^\s@]+@[^\s@]+$/.test(value.trim());

export const SLUG_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$';
export const isSlug = (value: string): boolean => new RegExp(SLUG_PATTERN).test(value);
