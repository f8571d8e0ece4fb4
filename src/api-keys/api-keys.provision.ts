import { findMemberByEmail } from '../identity/users.repo.js';
import type { SectionApplier } from '../provisioning/section.js';
import { sha256 } from '../security/tokens.js';
import { upsertProvisionedApiKey } from './api-keys.repo.js';
import { SYSTEM } from '../audit/audit.repo.js';
import { auditApiKey, displayPrefix } from './api-keys.service.js';

/**
 * The `api_keys` section of a provisioning file (SPEC §7): keys given in the file, stored as
 * SHA-256 like generated ones (they must be `sk_live_` + at least 24 random characters, checked
 * by validate.ts). A key revoked through the API is never resurrected by re-applying the file. A
 * key the file adds or changes is audited with the system actor.
 */
export const apiKeysSection: SectionApplier = {
  section: 'api_keys',
  async apply(tx, organization, spec) {
    for (const key of spec.api_keys ?? []) {
      const creator = await findMemberByEmail(tx, organization.id, key.created_by);
      if (!creator) throw new Error(`API key ${key.name}: created_by ${key.created_by} is not a member of ${organization.slug}`);
      const fields = {
        name: key.name,
        keyHash: sha256(key.key),
        prefix: displayPrefix(key.key),
        scopes: [...new Set(key.scopes)],
        createdBy: creator.id,
        expiresAt: key.expires_at ? new Date(key.expires_at) : null,
      };
      const written = await upsertProvisionedApiKey(tx, organization.id, fields);
      // A key the file brings, or a new key for a name it had: the server's own doing, in this transaction.
      if (written && written.change !== 'updated') {
        const row = { ...fields, id: written.id, organizationId: organization.id };
        await auditApiKey(tx, SYSTEM, `api_key.${written.change}`, row, { via: 'provisioning' });
      }
    }
    return spec.api_keys?.length ?? 0;
  },
};
