import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyPassword } from '../../src/security/passwords.js';
import { sha256 } from '../../src/security/tokens.js';
import { openDatabase } from '../../src/storage/database.js';
import { runCli } from '../support/cli.js';
import { TEST_DATABASE_URL, type ThrowawayDatabase, createThrowawayDatabase } from '../support/databases.js';

/** The authorization server's CLI: `client create`, `api-key create`, `keys rotate|list`. */

let dataDir: string;
let throwaway: ThrowawayDatabase | undefined;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sensorcloud-oauth-cli-'));
  // A real PostgreSQL when available (each CLI run opens the database; PGlite takes seconds to start).
  if (TEST_DATABASE_URL) throwaway = await createThrowawayDatabase();
  env = { DATA_DIR: dataDir, DATABASE_URL: throwaway?.url, LOG_LEVEL: 'silent', SENSORCLOUD_PASSWORD: 'Adm1n-pass-cli-test' };
  const setup = await runCli(['setup', '--org-name', 'CLI Org', '--org-slug', 'cli', '--email', 'admin@cli.test'], env);
  expect(setup.code, setup.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await throwaway?.drop();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const lastLine = (out: string) => out.trim().split('\n').pop() as string;

it('creates clients (secret printed once, stored as argon2id) and API keys (printed once, stored as SHA-256), rotates keys', async () => {
  const created = await runCli(
    [
      'client',
      'create',
      '--org',
      'cli',
      '--client-id',
      'cli-m2m',
      '--grant-types',
      'client_credentials',
      '--scopes',
      'app,devices:read',
      '--bound-user',
      'admin@cli.test',
      '--token-format',
      'jwt',
    ],
    env,
  );
  expect(created.code, created.stderr).toBe(0);
  const secret = lastLine(created.stdout);
  expect(secret).toMatch(/^sc_cs_/);
  const duplicate = await runCli(
    ['client', 'create', '--org', 'cli', '--client-id', 'cli-m2m', '--grant-types', 'client_credentials', '--scopes', 'app'],
    env,
  );
  expect(duplicate.code).toBe(1);
  const invalid = await runCli(
    ['client', 'create', '--org', 'cli', '--client-id', 'x', '--grant-types', 'implicit', '--scopes', 'app'],
    env,
  );
  expect(invalid.code).toBe(2);

  const key = await runCli(
    ['api-key', 'create', '--org', 'cli', '--name', 'ci', '--scopes', 'devices:read,readings:read', '--created-by', 'admin@cli.test'],
    env,
  );
  expect(key.code, key.stderr).toBe(0);
  const apiKey = lastLine(key.stdout);
  expect(apiKey).toMatch(/^sk_live_/);
  const tooWide = await runCli(
    ['api-key', 'create', '--org', 'cli', '--name', 'x', '--scopes', 'telepathy', '--created-by', 'admin@cli.test'],
    env,
  );
  expect(tooWide.code).toBe(2);

  const rotate = await runCli(['keys', 'rotate'], env);
  expect(rotate.code, rotate.stderr).toBe(0);
  const kid = /new signing key (\S+) is current/.exec(rotate.stdout)?.[1];
  const listed = await runCli(['keys', 'list'], env);
  expect(listed.stdout).toContain(`${kid}  RS256`);

  const handle = await openDatabase({ databaseUrl: throwaway?.url, dataDir: throwaway ? undefined : dataDir });
  try {
    const client = await handle.db.selectFrom('oauth_clients').selectAll().where('client_id', '=', 'cli-m2m').executeTakeFirstOrThrow();
    expect(client.secret_hash).toMatch(/^\$argon2id\$/);
    expect(await verifyPassword(client.secret_hash, secret)).toBe(true);
    expect(client).toMatchObject({ token_format: 'jwt', grant_types: ['client_credentials'], scopes: ['app', 'devices:read'] });
    expect(client.bound_user_id).toEqual(expect.any(String));
    const stored = await handle.db.selectFrom('api_keys').selectAll().where('name', '=', 'ci').executeTakeFirstOrThrow();
    expect(stored.key_hash).toBe(sha256(apiKey));
    // Audited as the server's own doing: the system actor, no address, never the key.
    const audit = await handle.db.selectFrom('audit_events').selectAll().where('target_id', '=', stored.id).execute();
    expect(audit).toMatchObject([
      { action: 'api_key.created', actor_kind: 'system', actor_id: null, source_address: null, target_type: 'api_key' },
    ]);
    expect(JSON.stringify(audit)).not.toContain(apiKey);
  } finally {
    await handle.close();
  }
}, 180_000);
