import { beforeEach, describe, expect, it } from 'vitest';
import { externalTokenDigestFor } from '../../src/identity/accounts.js';
import { findOrganizationBySlug, findOrganizationBySolutionKey, upsertOrganization } from '../../src/identity/organizations.repo.js';
import { findMemberByEmail, findUserByEmail, findUserByExternalTokenDigest, listMembers } from '../../src/identity/users.repo.js';
import { ProvisioningError, parseProvisioning } from '../../src/provisioning/load.js';
import { applyProvisioning, applyProvisioningFile } from '../../src/provisioning/provision.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { backends, dumpDatabase, truncateAll, useDatabase } from '../support/databases.js';
import { SPEC_EXAMPLE, SPEC_EXAMPLE_SECRETS, specExample, writeFile } from '../support/files.js';
import { provisioningSections } from '../../src/modules.js';

/** The rejection of a file: a ProvisioningError whose message names the file, the path and the problem. */
async function rejection(promise: Promise<unknown>): Promise<ProvisioningError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProvisioningError);
  return error as ProvisioningError;
}

describe('provisioning file validation (no database)', () => {
  it('accepts the SPEC §7 example as is', async () => {
    const file = await specExample();
    expect(() => parseProvisioning(JSON.stringify(file), 'spec.json')).not.toThrow();
  });

  it('reports every problem at once, each with file, line and path', async () => {
    const text = [
      'organizations:',
      '  - slug: acme',
      '    name: Acme',
      '    users:',
      '      - { email: a@acme.test, role: boss }',
      '      - { email: A@acme.test, role: viewer }',
    ].join('\n');
    const error = (() => {
      try {
        parseProvisioning(text, 'acme.yaml');
      } catch (e) {
        return e as ProvisioningError;
      }
      throw new Error('accepted');
    })();
    expect(error.issues.map((i) => i.path)).toEqual(['organizations[0].users[0].role', 'organizations[0].users[1].email']);
    expect(error.message).toContain('acme.yaml:5: organizations[0].users[0].role: unknown role "boss"');
    expect(error.message).toContain('acme.yaml:6: organizations[0].users[1].email: duplicate email "A@acme.test"');
  });

  it.each([
    [
      'an unknown field (typo)',
      (f: any) => (f.organizations[0].users[0].passwrd = 'x'),
      'organizations[0].users[0].passwrd',
      /not a known field/,
    ],
    ['a missing required field', (f: any) => delete f.organizations[0].name, 'organizations[0].name', /required/],
    [
      'a wrong type',
      (f: any) => (f.organizations[0].clients[0].access_token_ttl = 'a year'),
      'organizations[0].clients[0].access_token_ttl',
      /integer|number/i,
    ],
    ['an invalid slug', (f: any) => (f.organizations[0].slug = 'Acme Labs'), 'organizations[0].slug', /slug/],
    ['a weak password', (f: any) => (f.organizations[0].users[0].password = 'short'), 'organizations[0].users[0].password', /at least 10/],
    [
      'an unknown grant type',
      (f: any) => (f.organizations[0].clients[0].grant_types = ['implicit']),
      'organizations[0].clients[0].grant_types[0]',
      /unknown grant type "implicit"/,
    ],
    [
      'an API key scope the creator lacks',
      (f: any) => {
        f.organizations[0].api_keys[0].created_by = 'viewer@acme.test';
        f.organizations[0].api_keys[0].scopes = ['devices:write'];
      },
      'organizations[0].api_keys[0].scopes[0]',
      /not held by the creator's role \(viewer\)/,
    ],
    [
      'a device at a missing location',
      (f: any) => (f.organizations[0].devices[0].location = 'lab-9'),
      'organizations[0].devices[0].location',
      /lab-9/,
    ],
    [
      'a public client with a secret',
      (f: any) => (f.organizations[0].clients[3].client_secret = 'x'),
      'organizations[0].clients[3].client_secret',
      /public client/,
    ],
    [
      'a duplicate client_id',
      (f: any) => (f.organizations[0].clients[1].client_id = 'acme-password'),
      'organizations[0].clients[1].client_id',
      /duplicate client_id/,
    ],
    [
      'a redirect URI with a fragment',
      (f: any) => (f.organizations[0].clients[2].redirect_uris = ['http://127.0.0.1:9876/cb#x']),
      'organizations[0].clients[2].redirect_uris[0]',
      /fragment/,
    ],
    [
      'a group member who is not in the organization',
      (f: any) => (f.organizations[0].groups = [{ name: 'G', users: ['nobody@acme.test'] }]),
      'organizations[0].groups[0].users[0]',
      /nobody@acme.test/,
    ],
    [
      'the same person with two different passwords',
      (f: any) => {
        f.organizations.push({
          slug: 'beta',
          name: 'Beta',
          users: [{ email: 'Admin@acme.test', password: 'another-password', role: 'viewer' }],
        });
      },
      'organizations[1].users[0].password',
      /admin@acme.test/i,
    ],
  ])('rejects %s, naming the path', async (_what, mutate, path, problem) => {
    const file = await specExample();
    mutate(file);
    let error: ProvisioningError | undefined;
    try {
      parseProvisioning(JSON.stringify(file), 'acme.json');
    } catch (e) {
      error = e as ProvisioningError;
    }
    expect(error).toBeInstanceOf(ProvisioningError);
    expect(error!.issues.map((i) => i.path)).toContain(path);
    const line = error!.message.split('\n').find((l) => l.includes(`: ${path}: `));
    expect(line).toBeDefined();
    expect(line!.startsWith('acme.json')).toBe(true);
    expect(line).toMatch(problem);
  });

  it('accepts the same person in two organizations when their details agree', async () => {
    const file = await specExample();
    file.organizations.push({
      slug: 'beta',
      name: 'Beta',
      users: [
        { email: 'ADMIN@acme.test', role: 'viewer' },
        { email: 'viewer@acme.test', password: 'V1ewer-pass-acme', role: 'member', external_authentication_token: 'ext-acme-viewer' },
      ],
    });
    expect(() => parseProvisioning(JSON.stringify(file), 'two.json')).not.toThrow();
  });

  it('a missing file is reported by name', async () => {
    const error = await rejection(applyProvisioningFile(undefined as never, '/nonexistent/provision.yaml', provisioningSections()));
    expect(error.message).toMatch(/^\/nonexistent\/provision\.yaml: .*cannot be read: ENOENT/);
  });
});

describe.each(backends)('provisioning on $name', (backend) => {
  const database = useDatabase(backend);
  beforeEach(async () => {
    await truncateAll(database.db);
  });

  it('applies the SPEC §7 example: organization, solution key, users, roles, hashed secrets', async () => {
    const summary = await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    expect(summary.organizations).toBe(1);
    expect(summary.applied.users).toBe(2);

    const acme = await findOrganizationBySlug(database.db, 'acme');
    expect(acme).toMatchObject({ slug: 'acme', name: 'Acme Labs' });
    expect((await findOrganizationBySolutionKey(database.db, 'acme-solution-key'))?.id).toBe(acme!.id);

    const members = await listMembers(database.db, acme!.id);
    expect(members.map((m) => [m.email, m.role])).toEqual([
      ['admin@acme.test', 'admin'],
      ['viewer@acme.test', 'viewer'],
    ]);
    const admin = members[0]!;
    const viewer = members[1]!;
    expect(admin.password_hash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(admin.password_hash, 'Adm1n-pass-acme')).toBe(true);
    expect(await verifyPassword(viewer.password_hash, 'V1ewer-pass-acme')).toBe(true);
    expect(admin.external_auth_token_digest).toBeNull();
    expect((await findUserByExternalTokenDigest(database.db, await externalTokenDigestFor(database.db, 'ext-acme-viewer')))?.id).toBe(
      viewer.id,
    );
  });

  it('stores no secret of the file in plain text anywhere', async () => {
    await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    const dump = JSON.stringify(await dumpDatabase(database.db));
    for (const secret of SPEC_EXAMPLE_SECRETS) expect(dump, `${secret} found in the database`).not.toContain(secret);
  });

  it('applying the same file twice leaves identical state (no secret is rehashed)', async () => {
    await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    const first = await dumpDatabase(database.db);
    const hashBefore = (await findUserByEmail(database.db, 'admin@acme.test'))!.password_hash;
    await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    expect(await dumpDatabase(database.db)).toEqual(first);
    expect((await findUserByEmail(database.db, 'admin@acme.test'))!.password_hash).toBe(hashBefore);
    expect(Object.values(first).some((rows) => rows.length > 0)).toBe(true);
  });

  it('the same file as JSON gives the same state', async () => {
    await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    const fromYaml = await dumpDatabase(database.db);
    const json = await writeFile('spec-example.json', await specExample());
    await applyProvisioningFile(database.db, json, provisioningSections());
    expect(await dumpDatabase(database.db)).toEqual(fromYaml);

    await truncateAll(database.db);
    await applyProvisioningFile(database.db, json, provisioningSections());
    const acme = await findOrganizationBySlug(database.db, 'acme');
    expect((await listMembers(database.db, acme!.id)).map((m) => [m.email, m.role])).toEqual([
      ['admin@acme.test', 'admin'],
      ['viewer@acme.test', 'viewer'],
    ]);
  });

  it('changed fields are updated, unchanged ones left alone', async () => {
    await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
    const acmeBefore = (await findOrganizationBySlug(database.db, 'acme'))!;
    const adminBefore = (await findUserByEmail(database.db, 'admin@acme.test'))!;
    const viewerBefore = (await findUserByEmail(database.db, 'viewer@acme.test'))!;

    const changed = await specExample();
    const org = changed.organizations[0];
    org.name = 'Acme Laboratories';
    org.solution_key = 'acme-solution-key-2';
    org.readings_retention_days = 400;
    org.users[0].role = 'owner';
    org.users[0].name = 'Ada Admin';
    org.users[1].password = 'N3w-viewer-pass';
    org.users[1].external_authentication_token = 'ext-acme-viewer-2';
    org.users.push({ email: 'member@acme.test', password: 'M3mber-pass-acme', role: 'member' });
    org.groups = [{ name: 'Night shift', description: 'on call', users: ['viewer@acme.test', 'member@acme.test'] }];
    await applyProvisioningFile(database.db, await writeFile('changed.yaml', changed), provisioningSections());

    const acme = (await findOrganizationBySlug(database.db, 'acme'))!;
    expect(acme.id).toBe(acmeBefore.id);
    expect(acme.name).toBe('Acme Laboratories');
    expect(acmeBefore.readings_retention_days).toBeNull();
    expect(acme.readings_retention_days).toBe(400);
    expect(await findOrganizationBySolutionKey(database.db, 'acme-solution-key')).toBeUndefined();
    expect((await findOrganizationBySolutionKey(database.db, 'acme-solution-key-2'))?.id).toBe(acme.id);

    const admin = (await findMemberByEmail(database.db, acme.id, 'admin@acme.test'))!;
    expect(admin).toMatchObject({ id: adminBefore.id, role: 'owner', name: 'Ada Admin', password_hash: adminBefore.password_hash });

    const viewer = (await findMemberByEmail(database.db, acme.id, 'viewer@acme.test'))!;
    expect(viewer.id).toBe(viewerBefore.id);
    expect(await verifyPassword(viewer.password_hash, 'N3w-viewer-pass')).toBe(true);
    expect(await verifyPassword(viewer.password_hash, 'V1ewer-pass-acme')).toBe(false);
    expect(await findUserByExternalTokenDigest(database.db, await externalTokenDigestFor(database.db, 'ext-acme-viewer'))).toBeUndefined();
    expect((await findUserByExternalTokenDigest(database.db, await externalTokenDigestFor(database.db, 'ext-acme-viewer-2')))?.id).toBe(
      viewer.id,
    );

    expect((await findMemberByEmail(database.db, acme.id, 'member@acme.test'))?.role).toBe('member');
    const groups = await database.db.selectFrom('groups').selectAll().where('organization_id', '=', acme.id).execute();
    expect(groups.map((g) => [g.name, g.description])).toEqual([['Night shift', 'on call']]);
    expect(await database.db.selectFrom('group_users').select('user_id').where('group_id', '=', groups[0]!.id).execute()).toHaveLength(2);

    // And the changed file is itself idempotent.
    const state = await dumpDatabase(database.db);
    await applyProvisioningFile(database.db, await writeFile('changed-again.yaml', changed), provisioningSections());
    expect(await dumpDatabase(database.db)).toEqual(state);
  });

  it('the same person in two organizations is one user with two memberships, stable on reapply', async () => {
    const file = await specExample();
    file.organizations.push({
      slug: 'beta',
      name: 'Beta',
      users: [{ email: 'admin@acme.test', password: 'Adm1n-pass-acme', role: 'viewer' }],
    });
    const path = await writeFile('two-orgs.yaml', file);
    await applyProvisioningFile(database.db, path, provisioningSections());
    const state = await dumpDatabase(database.db);
    await applyProvisioningFile(database.db, path, provisioningSections());
    expect(await dumpDatabase(database.db)).toEqual(state);
    const beta = (await findOrganizationBySlug(database.db, 'beta'))!;
    const acme = (await findOrganizationBySlug(database.db, 'acme'))!;
    expect((await findMemberByEmail(database.db, beta.id, 'admin@acme.test'))?.role).toBe('viewer');
    expect((await findMemberByEmail(database.db, acme.id, 'admin@acme.test'))?.role).toBe('admin');
  });

  it('the same file applied concurrently converges on one state', async () => {
    const file = parseProvisioning(await (await import('node:fs/promises')).readFile(SPEC_EXAMPLE, 'utf8'), SPEC_EXAMPLE);
    await Promise.all([
      applyProvisioning(database.db, file, provisioningSections()),
      applyProvisioning(database.db, file, provisioningSections()),
      applyProvisioning(database.db, file, provisioningSections()),
    ]);
    expect(await database.db.selectFrom('organizations').select('id').execute()).toHaveLength(1);
    expect(await database.db.selectFrom('users').select('id').execute()).toHaveLength(2);
  });

  describe('an invalid file is rejected with file, path and problem, and nothing is applied', () => {
    // Each bad file also adds a new organization and changes an existing one, so "nothing applied"
    // is visible, not vacuous.
    async function expectRejected(name: string, content: string | object, path: string, problem: RegExp): Promise<void> {
      await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
      const before = await dumpDatabase(database.db);
      const file = await writeFile(name, content);
      const error = await rejection(applyProvisioningFile(database.db, file, provisioningSections()));
      expect(error.file).toBe(file);
      const line = error.message.split('\n').find((l) => l.includes(path) && problem.test(l));
      expect(line, `no line of\n${error.message}\nnames ${path} and ${problem}`).toBeDefined();
      expect(line!.startsWith(file)).toBe(true);
      expect(await dumpDatabase(database.db)).toEqual(before);
    }

    async function badExample(mutate: (file: any) => void): Promise<object> {
      const file = await specExample();
      file.organizations[0].name = 'Acme (renamed by a bad file)';
      file.organizations.push({
        slug: 'beta',
        name: 'Beta',
        users: [{ email: 'owner@beta.test', password: 'Own3r-pass-beta', role: 'owner' }],
      });
      mutate(file);
      return file;
    }

    it('bad YAML', async () => {
      const text = 'organizations:\n  - slug: beta\n    name: Beta\n    users: [ { email: a@beta.test, role: owner }\n';
      await expectRejected('bad.yaml', text, '(top level)', /not valid YAML or JSON/);
    });

    it('bad JSON', async () => {
      await expectRejected('bad.json', '{"organizations": [{"slug": "beta", "name": "Beta",}]}', '(top level)', /not valid JSON/);
    });

    it('a duplicate key', async () => {
      await expectRejected(
        'dup.yaml',
        'organizations:\n  - slug: beta\n    name: Beta\n    name: Gamma\n',
        '(top level)',
        /unique|duplicate/i,
      );
    });

    it('an unknown role', async () => {
      await expectRejected(
        'role.yaml',
        await badExample((f) => (f.organizations[0].users[1].role = 'superuser')),
        'organizations[0].users[1].role',
        /unknown role "superuser"/,
      );
    });

    it('a duplicate email', async () => {
      await expectRejected(
        'email.yaml',
        await badExample((f) => f.organizations[0].users.push({ email: 'Viewer@Acme.test', password: 'An0ther-pass', role: 'member' })),
        'organizations[0].users[2].email',
        /duplicate email "Viewer@Acme.test"/,
      );
    });

    it('a client granted a scope that does not exist', async () => {
      await expectRejected(
        'scope.yaml',
        await badExample((f) => (f.organizations[0].clients[1].scopes = ['app', 'devices:destroy'])),
        'organizations[0].clients[1].scopes[1]',
        /unknown scope "devices:destroy"/,
      );
    });

    it('a client bound to a missing user', async () => {
      await expectRejected(
        'bound.yaml',
        await badExample((f) => (f.organizations[0].clients[1].bound_user = 'ghost@acme.test')),
        'organizations[0].clients[1].bound_user',
        /"ghost@acme.test".*not in this organization/,
      );
    });

    it('an API key created by a missing user', async () => {
      await expectRejected(
        'apikey.yaml',
        await badExample((f) => (f.organizations[0].api_keys[0].created_by = 'ghost@acme.test')),
        'organizations[0].api_keys[0].created_by',
        /"ghost@acme.test".*not in this organization/,
      );
    });

    it('a user of another organization is a missing user', async () => {
      await expectRejected(
        'foreign.yaml',
        await badExample(
          (f) =>
            (f.organizations[1].api_keys = [
              { name: 'x', key: 'sk_live_beta000000000000000000000000', scopes: ['devices:read'], created_by: 'admin@acme.test' },
            ]),
        ),
        'organizations[1].api_keys[0].created_by',
        /"admin@acme.test".*not in this organization/,
      );
    });

    it('a conflict with data already in the database rolls everything back', async () => {
      await applyProvisioningFile(database.db, SPEC_EXAMPLE, provisioningSections());
      // Another organization, created outside the file, already holds the solution key the file wants.
      await upsertOrganization(database.db, { slug: 'gamma', name: 'Gamma', solutionKey: 'taken-key' });
      const before = await dumpDatabase(database.db);
      const file = await writeFile('conflict.yaml', await badExample((f) => (f.organizations[1].solution_key = 'taken-key')));
      const error = await rejection(applyProvisioningFile(database.db, file, provisioningSections()));
      expect(error.message).toContain(file);
      expect(error.message).toContain('organizations[1].solution_key');
      expect(await dumpDatabase(database.db)).toEqual(before);
    });
  });
});
