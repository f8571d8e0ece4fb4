import { type MemberInput, isSlug, passwordProblem, saveMember } from '../identity/accounts.js';
import { countOrganizations, upsertOrganization } from '../identity/organizations.repo.js';
import type { Db } from '../storage/database.js';
import type { Organization, User } from '../storage/schema.js';
import { consumeSetupToken, issueSetupToken } from './setup-tokens.repo.js';

/**
 * First run: an empty installation gets a one-time link to a page that creates the first
 * organization and its owner. Nothing is ever created with a default password.
 */

export async function needsSetup(db: Db): Promise<boolean> {
  return (await countOrganizations(db)) === 0;
}

/** A fresh setup URL when the installation is empty, otherwise undefined. */
export async function setupLinkIfEmpty(db: Db, publicUrl: string): Promise<string | undefined> {
  if (!(await needsSetup(db))) return undefined;
  return `${publicUrl}/setup?token=${encodeURIComponent(await issueSetupToken(db))}`;
}

export interface FirstOrganizationInput {
  organizationName: string;
  organizationSlug: string;
  email: string;
  password: string;
  name?: string | undefined;
}

export type SetupFieldErrors = Partial<Record<keyof FirstOrganizationInput, string>>;

export function validateFirstOrganization(input: FirstOrganizationInput): SetupFieldErrors {
  const errors: SetupFieldErrors = {};
  if (!input.organizationName.trim()) errors.organizationName = 'is required';
  else if (input.organizationName.length > 200) errors.organizationName = 'must be at most 200 characters';
  if (!isSlug(input.organizationSlug)) errors.organizationSlug = 'must be lower-case letters, digits and dashes (1–63)';
  if (!/^[^\s@]+@[^\s@]+$/.test(input.email) || input.email.length > 320) errors.email = 'must be an email address';
  const passwordIssue = passwordProblem(input.password);
  if (passwordIssue) errors.password = passwordIssue;
  return errors;
}

export class SetupUnavailableError extends Error {}

/**
 * Creates the first organization and its owner. With a token (the web page) the token is spent in
 * the same transaction; the CLI, already trusted by shell access, passes none.
 */
export async function createFirstOrganization(
  db: Db,
  input: FirstOrganizationInput,
  token?: string,
): Promise<{ organization: Organization; owner: User }> {
  return db.transaction().execute(async (tx) => {
    if (token !== undefined && !(await consumeSetupToken(tx, token))) {
      throw new SetupUnavailableError('This setup link is invalid or has already been used.');
    }
    if (!(await needsSetup(tx))) throw new SetupUnavailableError('This installation is already set up.');
    const organization = await upsertOrganization(tx, { slug: input.organizationSlug, name: input.organizationName.trim() });
    const owner: MemberInput = { email: input.email, password: input.password, role: 'owner', name: input.name ?? null };
    return { organization, owner: await saveMember(tx, organization.id, owner) };
  });
}
