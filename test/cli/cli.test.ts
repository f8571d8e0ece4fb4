import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrganizationBySlug } from '../../src/identity/organizations.repo.js';
import { findMemberByEmail, findUserByEmail } from '../../src/identity/users.repo.js';
import { verifyPassword } from '../../src/security/passwords.js';
import { isSetupTokenValid } from '../../src/setup/setup-tokens.repo.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { runCli, spawnCli } from '../support/cli.js';
import { dumpDatabase } from '../support/databases.js';
import { SPEC_EXAMPLE, specExample, writeFile } from '../support/files.js';
import { dataDirWithDatabase, tempDir } from '../support/server.js';

/** Opens the embedded database the CLI used, runs `read`, closes it again. */
async function inspect<T>(dataDir: string, read: (db: Db) => Promise<T>): Promise<T> {
  const handle = await openDatabase({ dataDir });
  try {
    return await read(handle.db);
  } finally {
    await handle.close();
  }
}

// The CLI reads its configuration from the environment: every run gets its own DATA_DIR and none
// of the caller's database settings.
const baseEnv = (dataDir: string) => ({
  DATA_DIR: dataDir,
  DATABASE_URL: undefined,
  SENSORCLOUD_PROVISION: undefined,
  SENSORCLOUD_PASSWORD: undefined,
  LOG_LEVEL: 'silent',
});

describe('sensorcloud command line: usage', () => {
  it.each([
    [['--help']],
    [['-h']],
    [['help']],
    [['serve', '--help']],
    [['migrate', '--help']],
    [['provision', '--help']],
    [['setup', '--help']],
    [['user', '--help']],
    [['user', 'create', '--help']],
    [['help', 'provision']],
  ])('%j prints usage and exits 0', async (args) => {
    const result = await runCli(args);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Usage: sensorcloud/);
  });

  it('the top-level help lists every command', async () => {
    const { stdout } = await runCli(['--help']);
    for (const command of ['serve', 'migrate', 'provision', 'setup', 'user']) expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['frobnicate']],
    ['an unknown flag', ['migrate', '--frobnicate']],
    ['an unknown top-level flag', ['--frobnicate']],
    ['a missing argument', ['provision']],
    ['a surplus argument', ['migrate', 'now']],
    ['a subcommand group without its subcommand', ['user']],
    ['an unknown subcommand', ['user', 'delete']],
    ['an invalid choice', ['user', 'create', '--org', 'acme', '--email', 'a@acme.test', '--role', 'god']],
    ['a missing required option', ['user', 'create', '--email', 'a@acme.test']],
  ])('%s prints usage on stderr and exits 2', async (_what, args) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Usage: sensorcloud/);
    expect(result.stdout).toBe('');
  });

  it('a configuration error exits 2 naming the variable', async () => {
    const dataDir = await tempDir();
    const result = await runCli(['migrate'], { ...baseEnv(dataDir), DATABASE_URL: 'mysql://localhost/db' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/DATABASE_URL/);
    await fs.rm(dataDir, { recursive: true, force: true });
  });
});

describe('sensorcloud command line: commands on the embedded database', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await dataDirWithDatabase({ migrated: false });
  });
  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('migrate applies the migrations once, then reports up to date', async () => {
    const first = await runCli(['migrate'], baseEnv(dataDir));
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/0001_foundation/);
    const second = await runCli(['migrate'], baseEnv(dataDir));
    expect(second).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  });

  it('setup on an empty database prints a working one-time link, and creates nothing', async () => {
    const result = await runCli(['setup'], baseEnv(dataDir));
    expect(result.code).toBe(0);
    const link = /(http:\/\/127\.0\.0\.1:8080\/setup\?token=(\S+))/.exec(result.stdout);
    expect(link, result.stdout).not.toBeNull();
    const token = decodeURIComponent(link![2]!);
    await inspect(dataDir, async (db) => {
      expect(await isSetupTokenValid(db, token)).toBe(true);
      expect(await db.selectFrom('users').select('id').execute()).toEqual([]);
      expect(await db.selectFrom('organizations').select('id').execute()).toEqual([]);
    });
    // A new link retires the old one.
    const again = await runCli(['setup'], baseEnv(dataDir));
    const token2 = decodeURIComponent(/token=(\S+)/.exec(again.stdout)![1]!);
    expect(token2).not.toBe(token);
    await inspect(dataDir, async (db) => {
      expect(await isSetupTokenValid(db, token)).toBe(false);
      expect(await isSetupTokenValid(db, token2)).toBe(true);
    });
  });

  it('setup with options creates the first organization and owner (password from SENSORCLOUD_PASSWORD)', async () => {
    const weak = await runCli(['setup', '--org-name', 'Acme', '--org-slug', 'acme', '--email', 'owner@acme.test'], {
      ...baseEnv(dataDir),
      SENSORCLOUD_PASSWORD: 'short',
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/password must be at least 10 characters/);

    const partial = await runCli(['setup', '--org-name', 'Acme'], { ...baseEnv(dataDir), SENSORCLOUD_PASSWORD: 'Own3r-pass-acme' });
    expect(partial.code).toBe(2);

    const result = await runCli(
      ['setup', '--org-name', 'Acme Labs', '--org-slug', 'acme', '--email', 'Owner@Acme.test', '--name', 'Olga'],
      {
        ...baseEnv(dataDir),
        SENSORCLOUD_PASSWORD: 'Own3r-pass-acme',
      },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/created organization acme with owner owner@acme.test/);
    await inspect(dataDir, async (db) => {
      const org = await findOrganizationBySlug(db, 'acme');
      const owner = await findMemberByEmail(db, org!.id, 'owner@acme.test');
      expect(owner).toMatchObject({ role: 'owner', name: 'Olga' });
      expect(await verifyPassword(owner!.password_hash, 'Own3r-pass-acme')).toBe(true);
    });

    // Only once: the installation now has an organization.
    const link = await runCli(['setup'], baseEnv(dataDir));
    expect(link.code).toBe(1);
    expect(link.stderr).toMatch(/already has an organization/);
    expect(link.stdout).not.toMatch(/token=/);
  });

  it('user create adds a member with the password from SENSORCLOUD_PASSWORD', async () => {
    const result = await runCli(['user', 'create', '--org', 'acme', '--email', 'Mia@Acme.test', '--role', 'admin', '--name', 'Mia'], {
      ...baseEnv(dataDir),
      SENSORCLOUD_PASSWORD: 'M1a-password-acme',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/mia@acme.test is admin of acme/);
    await inspect(dataDir, async (db) => {
      const org = await findOrganizationBySlug(db, 'acme');
      const mia = await findMemberByEmail(db, org!.id, 'mia@acme.test');
      expect(mia).toMatchObject({ role: 'admin', name: 'Mia' });
      expect(mia!.password_hash).toMatch(/^\$argon2id\$/);
      expect(await verifyPassword(mia!.password_hash, 'M1a-password-acme')).toBe(true);
    });
  });

  it('user create defaults to member, and --no-password creates no password at all', async () => {
    const result = await runCli(['user', 'create', '--org', 'acme', '--email', 'invited@acme.test', '--no-password'], baseEnv(dataDir));
    expect(result.code).toBe(0);
    await inspect(dataDir, async (db) => {
      const user = await findUserByEmail(db, 'invited@acme.test');
      expect(user?.password_hash).toBeNull();
      expect((await findMemberByEmail(db, (await findOrganizationBySlug(db, 'acme'))!.id, 'invited@acme.test'))?.role).toBe('member');
    });
  });

  it('user create refuses what it cannot do, creating nothing', async () => {
    const before = await inspect(dataDir, dumpDatabase);
    const noPassword = await runCli(['user', 'create', '--org', 'acme', '--email', 'x@acme.test'], baseEnv(dataDir));
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(/no password given/);

    const weak = await runCli(['user', 'create', '--org', 'acme', '--email', 'x@acme.test'], {
      ...baseEnv(dataDir),
      SENSORCLOUD_PASSWORD: 'weak',
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/password must be at least 10/);

    const noOrg = await runCli(['user', 'create', '--org', 'nope', '--email', 'x@acme.test'], {
      ...baseEnv(dataDir),
      SENSORCLOUD_PASSWORD: 'X-password-acme',
    });
    expect(noOrg.code).toBe(1);
    expect(noOrg.stderr).toMatch(/no organization with slug "nope"/);

    const badEmail = await runCli(['user', 'create', '--org', 'acme', '--email', 'not an email'], {
      ...baseEnv(dataDir),
      SENSORCLOUD_PASSWORD: 'X-password-acme',
    });
    expect(badEmail.code).toBe(2);
    expect(badEmail.stderr).toMatch(/email/);

    expect(await inspect(dataDir, dumpDatabase)).toEqual(before);
  });

  it('provision applies a file and is idempotent', async () => {
    const first = await runCli(['provision', SPEC_EXAMPLE], baseEnv(dataDir));
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/provisioned 1 organization/);
    const state = await inspect(dataDir, dumpDatabase);
    const second = await runCli(['provision', SPEC_EXAMPLE], baseEnv(dataDir));
    expect(second.code).toBe(0);
    expect(await inspect(dataDir, dumpDatabase)).toEqual(state);
  });

  it('provision of an invalid file exits 1 naming file, path and problem, and applies nothing', async () => {
    const before = await inspect(dataDir, dumpDatabase);
    const file = await specExample();
    file.organizations[0].name = 'Renamed';
    file.organizations[0].users[1].role = 'superuser';
    const bad = await writeFile('bad.yaml', file);
    const result = await runCli(['provision', bad], baseEnv(dataDir));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/nothing was applied/);
    expect(result.stderr).toContain(`${bad}:`);
    expect(result.stderr).toContain('organizations[0].users[1].role: unknown role "superuser"');
    expect(await inspect(dataDir, dumpDatabase)).toEqual(before);

    const missing = await runCli(['provision', '/nonexistent/file.yaml'], baseEnv(dataDir));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/\/nonexistent\/file\.yaml.*cannot be read/);
  });
});

describe('sensorcloud as a process', { timeout: 90_000 }, () => {
  it('provision BAD_FILE exits non-zero with the problem on stderr', async () => {
    const dataDir = await tempDir();
    const bad = await writeFile(
      'bad.yaml',
      'organizations:\n  - slug: acme\n    name: Acme\n    users:\n      - { email: a@acme.test, role: boss }\n',
    );
    const cli = spawnCli(['provision', bad], baseEnv(dataDir));
    const { code } = await cli.exited;
    const { stdout, stderr } = cli.output();
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${bad}:5: organizations[0].users[0].role: unknown role "boss"`);
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('serve prints the setup link on an empty database, serves /readyz, and exits 0 on SIGTERM', async () => {
    const dataDir = await dataDirWithDatabase();
    const cli = spawnCli(['serve'], { ...baseEnv(dataDir), PORT: '0', LOG_LEVEL: 'info' });
    try {
      const [, url] = await cli.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      const [, link] = await cli.waitFor(/(http:\/\/\S+\/setup\?token=\S+)/);
      expect(new URL(link!).origin).toBe(url);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      expect((await fetch(link!)).status).toBe(200);
      cli.child.kill('SIGTERM');
      const exit = await cli.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(cli.output().stdout).toMatch(/shutting down/);
    } finally {
      cli.child.kill('SIGKILL');
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });

  it('serve --provision applies the file before listening', async () => {
    const dataDir = await dataDirWithDatabase();
    const cli = spawnCli(['serve', '--provision', SPEC_EXAMPLE], { ...baseEnv(dataDir), PORT: '0', LOG_LEVEL: 'info' });
    try {
      const [, url] = await cli.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      expect(cli.output().stdout).toMatch(/provisioning applied/);
      expect(cli.output().stdout).not.toMatch(/setup\?token=/);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      cli.child.kill('SIGTERM');
      expect((await cli.exited).code).toBe(0);
      await inspect(dataDir, async (db) => expect(await findOrganizationBySlug(db, 'acme')).toBeDefined());
    } finally {
      cli.child.kill('SIGKILL');
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  });
});
