import { findMemberByEmail } from '../identity/users.repo.js';
import type { SectionApplier } from '../provisioning/section.js';
import { hashPassword, verifyPassword } from '../security/passwords.js';
import { DEFAULT_ACCESS_TOKEN_TTL, findClientByClientId, saveClient } from './clients.repo.js';
import type { GrantType, TokenFormat, UserAuthMode } from './grant-types.js';

/**
 * The `clients` section of a provisioning file (SPEC §7). Secrets are argon2id-hashed; an
 * unchanged secret is verified against the stored hash first and never rehashed, so re-applying
 * the same file writes nothing.
 */
export const clientsSection: SectionApplier = {
  section: 'clients',
  async apply(tx, organization, spec) {
    for (const c of spec.clients ?? []) {
      const existing = await findClientByClientId(tx, c.client_id);
      let secretHash: string | null | undefined;
      if (c.public) secretHash = null;
      else if (c.client_secret !== undefined) {
        const unchanged =
          existing?.organization_id === organization.id &&
          existing.secret_hash !== null &&
          (await verifyPassword(existing.secret_hash, c.client_secret));
        secretHash = unchanged ? undefined : await hashPassword(c.client_secret);
      }
      let boundUserId: string | null = null;
      if (c.bound_user) {
        const member = await findMemberByEmail(tx, organization.id, c.bound_user);
        if (!member) throw new Error(`client ${c.client_id}: bound_user ${c.bound_user} is not a member of ${organization.slug}`);
        boundUserId = member.id;
      }
      await saveClient(tx, organization.id, {
        clientId: c.client_id,
        name: c.name ?? c.client_id,
        secretHash,
        public: c.public ?? false,
        grantTypes: c.grant_types as GrantType[],
        scopes: c.scopes,
        redirectUris: c.redirect_uris ?? [],
        privacyPolicyUrl: c.privacy_policy_url ?? null,
        accessTokenTtl: c.access_token_ttl ?? DEFAULT_ACCESS_TOKEN_TTL,
        refreshTokenTtl: c.refresh_token_ttl ?? null,
        tokenFormat: (c.token_format as TokenFormat | undefined) ?? 'opaque',
        boundUserId,
        userAuth: (c.user_auth as UserAuthMode | undefined) ?? 'password',
        resourceServer: c.resource_server ?? false,
        // The file owns the registration (the API refuses to change it); `enabled` is not the file's.
        managedBy: 'provisioning',
      });
    }
    return spec.clients?.length ?? 0;
  },
};
