import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import { externalTokenDigestFor, saveMember } from '../../src/identity/accounts.js';
import { findGroup, listGroupUserIds, listGroups, setGroupUsers, upsertGroup } from '../../src/identity/groups.repo.js';
import {
  countOrganizations,
  findOrganizationById,
  findOrganizationBySlug,
  findOrganizationBySolutionKey,
  upsertOrganization,
} from '../../src/identity/organizations.repo.js';
import {
  findMember,
  findMemberByEmail,
  findUserByEmail,
  findUserByExternalTokenDigest,
  listMembers,
  listMemberships,
  setMembership,
  upsertUser,
} from '../../src/identity/users.repo.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { installationSalt } from '../../src/storage/instance.repo.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { backends, dumpDatabase, truncateAll, useDatabase } from '../support/databases.js';
import { allMigrations } from '../../src/modules.js';

describe.each(backends)('identity repositories on $name', (backend) => {
  const database = useDatabase(backend);
  beforeEach(async () => {
    await truncateAll(database.db);
  });

  describe('migrations', () => {
    it('are idempotent: a second run applies nothing', async () => {
      expect(await migrateToLatest(database.db, allMigrations())).toEqual([]);
    });
  });

  describe('organizations', () => {
    it('upsert creates, then is idempotent on the slug', async () => {
      const created = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme Labs' });
      expect(created).toMatchObject({ slug: 'acme', name: 'Acme Labs', solution_key_hash: null });
      expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
      const before = await dumpDatabase(database.db);
      const again = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme Labs' });
      expect(again.id).toBe(created.id);
      expect(again.updated_at.getTime()).toBe(created.updated_at.getTime());
      expect(await dumpDatabase(database.db)).toEqual(before);
      expect(await countOrganizations(database.db)).toBe(1);
    });

    it('upsert updates changed fields and bumps updated_at', async () => {
      const created = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme Labs' });
      await new Promise((r) => setTimeout(r, 5));
      const renamed = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme Laboratories' });
      expect(renamed.id).toBe(created.id);
      expect(renamed.name).toBe('Acme Laboratories');
      expect(renamed.updated_at.getTime()).toBeGreaterThan(created.updated_at.getTime());
      expect((await findOrganizationById(database.db, created.id))?.name).toBe('Acme Laboratories');
    });

    it('keeps the solution key only as a hash, found by value', async () => {
      const org = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme', solutionKey: 'acme-solution-key' });
      expect(org.solution_key_hash).toBeTruthy();
      expect(org.solution_key_hash).not.toContain('acme-solution-key');
      expect(JSON.stringify(await dumpDatabase(database.db))).not.toContain('acme-solution-key');
      expect((await findOrganizationBySolutionKey(database.db, 'acme-solution-key'))?.id).toBe(org.id);
      expect(await findOrganizationBySolutionKey(database.db, 'acme-solution-kez')).toBeUndefined();
      expect(await findOrganizationBySolutionKey(database.db, org.solution_key_hash!)).toBeUndefined();
    });

    it('leaves the solution key alone when not given, clears it with null, replaces it when changed', async () => {
      await upsertOrganization(database.db, { slug: 'acme', name: 'Acme', solutionKey: 'key-1' });
      await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      expect(await findOrganizationBySolutionKey(database.db, 'key-1')).toBeDefined();
      await upsertOrganization(database.db, { slug: 'acme', name: 'Acme', solutionKey: 'key-2' });
      expect(await findOrganizationBySolutionKey(database.db, 'key-1')).toBeUndefined();
      expect(await findOrganizationBySolutionKey(database.db, 'key-2')).toBeDefined();
      await upsertOrganization(database.db, { slug: 'acme', name: 'Acme', solutionKey: null });
      expect((await findOrganizationBySlug(database.db, 'acme'))?.solution_key_hash).toBeNull();
    });

    it('refuses two organizations with the same slug or solution key', async () => {
      await upsertOrganization(database.db, { slug: 'acme', name: 'Acme', solutionKey: 'shared' });
      await expect(database.db.insertInto('organizations').values({ slug: 'acme', name: 'Other' }).execute()).rejects.toThrow(
        /unique|duplicate/i,
      );
      await expect(upsertOrganization(database.db, { slug: 'other', name: 'Other', solutionKey: 'shared' })).rejects.toThrow(
        /unique|duplicate/i,
      );
    });
  });

  describe('users and memberships', () => {
    it('emails are case-insensitive and unique', async () => {
      const first = await upsertUser(database.db, { email: 'Alice@Example.TEST' });
      expect(first.email).toBe('alice@example.test');
      const second = await upsertUser(database.db, { email: '  alice@example.test ' });
      expect(second.id).toBe(first.id);
      expect((await findUserByEmail(database.db, 'ALICE@example.test'))?.id).toBe(first.id);
      // Even a write that bypasses the repository cannot create a case variant.
      await expect(database.db.insertInto('users').values({ email: 'ALICE@EXAMPLE.TEST' }).execute()).rejects.toThrow(/unique|duplicate/i);
      expect(await database.db.selectFrom('users').select('id').execute()).toHaveLength(1);
    });

    it('upsertUser updates only the fields given and is a no-op when nothing changed', async () => {
      const created = await upsertUser(database.db, { email: 'bob@example.test', name: 'Bob', passwordHash: 'h1' });
      const same = await upsertUser(database.db, { email: 'bob@example.test', name: 'Bob' });
      expect(same.updated_at.getTime()).toBe(created.updated_at.getTime());
      expect(same.password_hash).toBe('h1');
      const renamed = await upsertUser(database.db, { email: 'bob@example.test', name: 'Robert' });
      expect(renamed).toMatchObject({ id: created.id, name: 'Robert', password_hash: 'h1' });
    });

    it('memberships carry a role per organization, and only the four roles exist', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const beta = await upsertOrganization(database.db, { slug: 'beta', name: 'Beta' });
      const user = await upsertUser(database.db, { email: 'carol@example.test' });
      await setMembership(database.db, acme.id, user.id, 'admin');
      await setMembership(database.db, beta.id, user.id, 'viewer');
      expect((await findMember(database.db, acme.id, user.id))?.role).toBe('admin');
      expect((await findMember(database.db, beta.id, user.id))?.role).toBe('viewer');
      await setMembership(database.db, acme.id, user.id, 'member');
      expect((await findMember(database.db, acme.id, user.id))?.role).toBe('member');
      const memberships = await listMemberships(database.db, user.id);
      expect(memberships.map((m) => [m.organization_id, m.role]).sort()).toEqual(
        [
          [acme.id, 'member'],
          [beta.id, 'viewer'],
        ].sort(),
      );
      await expect(
        database.db
          .insertInto('memberships')
          .values({
            organization_id: acme.id,
            user_id: (await upsertUser(database.db, { email: 'x@example.test' })).id,
            role: 'superuser' as 'owner',
          })
          .execute(),
      ).rejects.toThrow(/check|constraint|violates/i);
    });

    it('member lookups are scoped by organization', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const beta = await upsertOrganization(database.db, { slug: 'beta', name: 'Beta' });
      const alice = await saveMember(database.db, acme.id, { email: 'alice@acme.test', role: 'owner' });
      const bob = await saveMember(database.db, beta.id, { email: 'bob@beta.test', role: 'viewer' });
      expect(await findMember(database.db, acme.id, bob.id)).toBeUndefined();
      expect(await findMemberByEmail(database.db, acme.id, 'bob@beta.test')).toBeUndefined();
      expect((await findMemberByEmail(database.db, acme.id, 'ALICE@acme.test'))?.id).toBe(alice.id);
      expect((await listMembers(database.db, acme.id)).map((m) => [m.email, m.role])).toEqual([['alice@acme.test', 'owner']]);
      expect((await listMembers(database.db, beta.id)).map((m) => m.email)).toEqual(['bob@beta.test']);
    });

    it('saveMember hashes the password with argon2id and never stores it plainly', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const user = await saveMember(database.db, acme.id, { email: 'dan@acme.test', role: 'member', password: 'correct horse battery' });
      expect(user.password_hash).toMatch(/^\$argon2id\$/);
      expect(await verifyPassword(user.password_hash, 'correct horse battery')).toBe(true);
      expect(await verifyPassword(user.password_hash, 'correct horse batterz')).toBe(false);
      expect(JSON.stringify(await dumpDatabase(database.db))).not.toContain('correct horse battery');
      // Omitting the password leaves the hash alone.
      const again = await saveMember(database.db, acme.id, { email: 'dan@acme.test', role: 'admin' });
      expect(again.password_hash).toBe(user.password_hash);
      expect((await findMember(database.db, acme.id, user.id))?.role).toBe('admin');
    });

    it('stores the external authentication token as a keyed digest, found by value', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const user = await saveMember(database.db, acme.id, {
        email: 'eve@acme.test',
        role: 'viewer',
        externalAuthenticationToken: 'ext-acme-eve',
      });
      expect(user.external_auth_token_digest).toBeTruthy();
      expect(JSON.stringify(await dumpDatabase(database.db))).not.toContain('ext-acme-eve');
      const digest = await externalTokenDigestFor(database.db, 'ext-acme-eve');
      expect(digest).toBe(user.external_auth_token_digest);
      expect((await findUserByExternalTokenDigest(database.db, digest))?.id).toBe(user.id);
      expect(await findUserByExternalTokenDigest(database.db, await externalTokenDigestFor(database.db, 'ext-acme-evE'))).toBeUndefined();
      const cleared = await saveMember(database.db, acme.id, { email: 'eve@acme.test', role: 'viewer', externalAuthenticationToken: null });
      expect(cleared.external_auth_token_digest).toBeNull();
    });
  });

  describe('groups', () => {
    it('upsert is idempotent on (organization, name) and lists per organization', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const beta = await upsertOrganization(database.db, { slug: 'beta', name: 'Beta' });
      const g1 = await upsertGroup(database.db, acme.id, 'Fridges', 'cold chain');
      const g2 = await upsertGroup(database.db, acme.id, 'Fridges', 'cold chain, updated');
      expect(g2.id).toBe(g1.id);
      expect(g2.description).toBe('cold chain, updated');
      const other = await upsertGroup(database.db, beta.id, 'Fridges');
      expect(other.id).not.toBe(g1.id);
      expect((await listGroups(database.db, acme.id)).map((g) => g.id)).toEqual([g1.id]);
      expect(await findGroup(database.db, beta.id, g1.id)).toBeUndefined();
      expect((await findGroup(database.db, acme.id, g1.id))?.name).toBe('Fridges');
    });

    it('members are set and replaced', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const a = await saveMember(database.db, acme.id, { email: 'a@acme.test', role: 'member' });
      const b = await saveMember(database.db, acme.id, { email: 'b@acme.test', role: 'viewer' });
      const group = await upsertGroup(database.db, acme.id, 'Night shift');
      await setGroupUsers(database.db, acme.id, group.id, [a.id, b.id]);
      expect(await listGroupUserIds(database.db, acme.id, group.id)).toEqual([a.id, b.id].sort());
      await setGroupUsers(database.db, acme.id, group.id, [b.id]);
      expect(await listGroupUserIds(database.db, acme.id, group.id)).toEqual([b.id]);
      await setGroupUsers(database.db, acme.id, group.id, []);
      expect(await listGroupUserIds(database.db, acme.id, group.id)).toEqual([]);
    });

    it('a user of another organization cannot be added (composite foreign key)', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const beta = await upsertOrganization(database.db, { slug: 'beta', name: 'Beta' });
      const mallory = await saveMember(database.db, beta.id, { email: 'mallory@beta.test', role: 'owner' });
      const group = await upsertGroup(database.db, acme.id, 'Fridges');
      await expect(setGroupUsers(database.db, acme.id, group.id, [mallory.id])).rejects.toThrow(/foreign key|violates/i);
      // Nor by naming the other organization on the row: the group is not theirs.
      await expect(
        database.db.insertInto('group_users').values({ organization_id: beta.id, group_id: group.id, user_id: mallory.id }).execute(),
      ).rejects.toThrow(/foreign key|violates/i);
      expect(await listGroupUserIds(database.db, acme.id, group.id)).toEqual([]);
      expect(await listGroupUserIds(database.db, beta.id, group.id)).toEqual([]);
    });

    it('removing a membership removes the user from the organization groups', async () => {
      const acme = await upsertOrganization(database.db, { slug: 'acme', name: 'Acme' });
      const a = await saveMember(database.db, acme.id, { email: 'a@acme.test', role: 'member' });
      const group = await upsertGroup(database.db, acme.id, 'Fridges');
      await setGroupUsers(database.db, acme.id, group.id, [a.id]);
      await database.db.deleteFrom('memberships').where('organization_id', '=', acme.id).where('user_id', '=', a.id).execute();
      expect(await listGroupUserIds(database.db, acme.id, group.id)).toEqual([]);
    });
  });

  describe('instance settings', () => {
    it('the installation salt is created once and stays stable', async () => {
      const salts = await Promise.all([installationSalt(database.db), installationSalt(database.db), installationSalt(database.db)]);
      expect(salts[0]!.length).toBe(16);
      for (const salt of salts) expect(salt.equals(salts[0]!)).toBe(true);
      expect((await installationSalt(database.db)).equals(salts[0]!)).toBe(true);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from instance_settings where key = 'lookup_salt'`.execute(
        database.db,
      );
      expect(rows[0]?.n).toBe(1);
    });
  });
});
