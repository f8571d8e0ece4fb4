import type { SectionApplier } from '../provisioning/section.js';
import { normalizeDomains } from './identity-provider-rules.js';
import { findProviderByName, insertProvider, updateProvider } from './identity-providers.repo.js';

/**
 * The `identity_providers` section of an organization in the provisioning file: upserted by name.
 * The client secret is sealed under the server key; an unchanged secret (the stored one opens to
 * it) is not sealed again, so re-applying the same file writes nothing.
 */
export const identityProvidersSection: SectionApplier = {
  section: 'identity_providers',
  async apply(tx, organization, spec, context) {
    for (const p of spec.identity_providers ?? []) {
      const fields = {
        name: p.name,
        issuer: p.issuer,
        client_id: p.client_id,
        allowed_email_domains: normalizeDomains(p.allowed_email_domains ?? []),
        enabled: p.enabled ?? true,
      };
      const existing = await findProviderByName(tx, organization.id, p.name);
      if (!existing) {
        await insertProvider(tx, organization.id, fields, (id) => context.secrets().seal(p.client_secret, id));
        continue;
      }
      let secretUnchanged = false;
      try {
        secretUnchanged = context.secrets().open(existing.client_secret_sealed, existing.id) === p.client_secret;
      } catch {
        // Sealed under another key (SECRETS_KEY changed): seal it again under the current one.
      }
      const same =
        secretUnchanged &&
        existing.issuer === fields.issuer &&
        existing.client_id === fields.client_id &&
        existing.enabled === fields.enabled &&
        existing.allowed_email_domains.join(' ') === fields.allowed_email_domains.join(' ');
      if (same) continue;
      await updateProvider(
        tx,
        organization.id,
        existing.id,
        fields,
        secretUnchanged ? undefined : context.secrets().seal(p.client_secret, existing.id),
      );
    }
    return spec.identity_providers?.length ?? 0;
  },
};
