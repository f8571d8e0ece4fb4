import { sql } from 'kysely';
import { externalTokenDigestFor } from '../identity/accounts.js';
import { findOrganizationBySolutionKey, upsertOrganization } from '../identity/organizations.repo.js';
import { findUserByExternalTokenDigest, normalizeEmail } from '../identity/users.repo.js';
import type { Db } from '../storage/database.js';
import type { OrganizationSpec, ProvisioningFile } from './file-schema.js';
import { ProvisioningError, type ProvisioningIssue, loadProvisioningFile } from './load.js';
import { formatPath } from './path.js';
import { NO_SERVER_KEY, type ProvisioningContext, type SectionApplier } from './section.js';

/**
 * Applies a validated provisioning file in one transaction. Every step is an upsert keyed by the
 * file's natural keys (slug, email, client_id, serial…), and secrets are rehashed only when they
 * changed, so applying the same file twice leaves the database exactly as it was. Things absent
 * from the file are left alone: provisioning adds and updates, it never deletes.
 *
 * Each capability contributes its section appliers through its module (modules.ts lists them in
 * an order that works: users before the clients bound to them, locations before devices).
 */
/** Sections validated now whose capability does not store them yet; reported, never silently dropped. */
const PENDING_SECTIONS: (keyof OrganizationSpec)[] = [];

export interface ProvisioningSummary {
  organizations: number;
  applied: Partial<Record<keyof OrganizationSpec, number>>;
  notYetSupported: string[];
}

/**
 * Conflicts with rows the file does not describe, found before anything is written so they are
 * reported like any other problem of the file: a solution key or Sensorberg token the file gives
 * to one organization or person already belongs to another.
 */
async function conflictIssues(tx: Db, file: ProvisioningFile): Promise<ProvisioningIssue[]> {
  const issues: ProvisioningIssue[] = [];
  for (const [o, spec] of file.organizations.entries()) {
    if (spec.solution_key) {
      const holder = await findOrganizationBySolutionKey(tx, spec.solution_key);
      if (holder && holder.slug !== spec.slug) {
        issues.push({
          path: formatPath(['organizations', o, 'solution_key']),
          message: `is already the solution key of organization "${holder.slug}"`,
        });
      }
    }
    for (const [u, user] of (spec.users ?? []).entries()) {
      if (!user.external_authentication_token) continue;
      const holder = await findUserByExternalTokenDigest(tx, await externalTokenDigestFor(tx, user.external_authentication_token));
      if (holder && holder.email !== normalizeEmail(user.email)) {
        issues.push({
          path: formatPath(['organizations', o, 'users', u, 'external_authentication_token']),
          message: 'is already the external_authentication_token of another user',
        });
      }
    }
  }
  return issues;
}

/**
 * Applies a validated file; `source` names it in errors. All or nothing: any failure rolls the
 * whole transaction back and is reported as a ProvisioningError naming the file and where it
 * stopped.
 */
export async function applyProvisioning(
  db: Db,
  file: ProvisioningFile,
  sections: readonly SectionApplier[],
  source = 'provisioning file',
  context: ProvisioningContext = NO_SERVER_KEY,
): Promise<ProvisioningSummary> {
  const summary: ProvisioningSummary = { organizations: file.organizations.length, applied: {}, notYetSupported: [] };
  let at = '';
  try {
    await db.transaction().execute(async (tx) => {
      // Nodes starting together with the same file take turns instead of racing on unique keys.
      await sql`select pg_advisory_xact_lock(hashtext('sensorcloud:provisioning'))`.execute(tx);
      const conflicts = await conflictIssues(tx, file);
      if (conflicts.length > 0) throw new ProvisioningError(source, conflicts);
      for (const [o, spec] of file.organizations.entries()) {
        at = formatPath(['organizations', o]);
        const organization = await upsertOrganization(tx, {
          slug: spec.slug,
          name: spec.name,
          solutionKey: spec.solution_key,
          readingsRetentionDays: spec.readings_retention_days,
        });
        for (const applier of sections) {
          at = formatPath(['organizations', o, applier.section]);
          summary.applied[applier.section] =
            (summary.applied[applier.section] ?? 0) + (await applier.apply(tx, organization, spec, context));
        }
        for (const section of PENDING_SECTIONS) {
          if (spec[section] !== undefined && !summary.notYetSupported.includes(section)) summary.notYetSupported.push(section);
        }
      }
    });
  } catch (error) {
    if (error instanceof ProvisioningError) throw error;
    throw new ProvisioningError(source, [{ path: at, message: `could not be applied: ${(error as Error).message}` }], { cause: error });
  }
  return summary;
}

export async function applyProvisioningFile(
  db: Db,
  path: string,
  sections: readonly SectionApplier[],
  context: ProvisioningContext = NO_SERVER_KEY,
): Promise<ProvisioningSummary> {
  return applyProvisioning(db, await loadProvisioningFile(path), sections, path, context);
}
