import { setGroupUsers, upsertGroup } from './groups.repo.js';
import { saveMember } from './accounts.js';
import { isRole } from './scopes.js';
import { findMemberByEmail } from './users.repo.js';
import type { SectionApplier } from '../provisioning/section.js';
import { verifyPassword } from '../security/passwords.js';

/** The people and groups of each organization in a provisioning file (SPEC §7 `users`, `groups`). */

export const membersSection: SectionApplier = {
  section: 'users',
  async apply(tx, organization, spec) {
    for (const user of spec.users ?? []) {
      if (!isRole(user.role)) throw new Error(`unvalidated role ${user.role}`);
      const existing = await findMemberByEmail(tx, organization.id, user.email);
      const passwordUnchanged =
        user.password !== undefined && existing !== undefined && (await verifyPassword(existing.password_hash, user.password));
      await saveMember(tx, organization.id, {
        email: user.email,
        role: user.role,
        name: user.name,
        password: passwordUnchanged ? undefined : user.password,
        externalAuthenticationToken: user.external_authentication_token,
      });
    }
    return spec.users?.length ?? 0;
  },
};

export const groupsSection: SectionApplier = {
  section: 'groups',
  async apply(tx, organization, spec) {
    for (const group of spec.groups ?? []) {
      const saved = await upsertGroup(tx, organization.id, group.name, group.description ?? null);
      const members = await Promise.all((group.users ?? []).map((email) => findMemberByEmail(tx, organization.id, email)));
      await setGroupUsers(
        tx,
        organization.id,
        saved.id,
        members.flatMap((m) => (m ? [m.id] : [])),
      );
    }
    return spec.groups?.length ?? 0;
  },
};
