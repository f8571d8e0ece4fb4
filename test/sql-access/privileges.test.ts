import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/server/context.js';
import { type DatabaseHandle, openDatabase } from '../../src/storage/database.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { allMigrations } from '../../src/modules.js';
import { sqlAccessWatchdog } from '../../src/sql-access/sql-access.module.js';
import { type TestOrg, call, createOrg, makeApp } from '../api/support.js';
import { TEST_DATABASE_URL, withAdmin } from '../support/databases.js';

/**
 * SQL access when the server's PostgreSQL role lacks what it needs: a server role of its own
 * (LOGIN, owner of a fresh database, first without CREATEROLE, then without pg_signal_backend)
 * gets a 409 problem document naming the missing privilege, and nothing changes; the watchdog
 * says it once. The role, its database and any login it made are dropped afterwards.
 */

describe('sqlAccessWatchdog', () => {
  it('says once that it lacks pg_signal_backend, not at every turn; other failures still fail the job', async () => {
    const errors: string[] = [];
    const infos: object[] = [];
    const log = { error: (_: object, message: string) => errors.push(message), info: (details: object) => infos.push(details) };
    let answer: () => Promise<{ cancelled: number; terminated: number }> = async () => {
      throw Object.assign(new Error('permission denied to cancel query'), { code: '42501' });
    };
    const run = sqlAccessWatchdog(() => answer(), log);
    for (let turn = 0; turn < 5; turn++) await run();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('pg_signal_backend');
    // Nothing to end meanwhile does not make it say it again.
    answer = async () => ({ cancelled: 0, terminated: 0 });
    await run();
    answer = async () => {
      throw Object.assign(new Error('permission denied'), { code: '42501' });
    };
    await run();
    expect(errors).toHaveLength(1);
    // Once it has ended something (granted meanwhile), a new refusal is news again.
    answer = async () => ({ cancelled: 1, terminated: 0 });
    await run();
    expect(infos).toEqual([{ cancelled: 1, terminated: 0 }]);
    answer = async () => {
      throw Object.assign(new Error('permission denied'), { code: '42501' });
    };
    await run();
    expect(errors).toHaveLength(2);
    answer = async () => {
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    };
    await expect(run()).rejects.toThrow('connection refused');
  });
});

describe.runIf(TEST_DATABASE_URL)('SQL access without the database privileges, on postgres', () => {
  const suffix = randomBytes(6).toString('hex');
  const role = `sc_nocreaterole_${suffix}`;
  const password = randomBytes(18).toString('base64url');
  const databaseName = `sc_test_priv_${suffix}`;
  let handle: DatabaseHandle | undefined;
  let app: App | undefined;
  let org: TestOrg;

  const api = (method: 'GET' | 'POST' | 'DELETE', url: string) =>
    call(app!, { method, url, token: org.adminKey, body: method === 'POST' && url === '/v1/sql-access' ? {} : undefined });

  beforeAll(async () => {
    await withAdmin(async (admin) => {
      await admin.query(`create role ${role} login nocreaterole nosuperuser password '${password}'`);
      await admin.query(`create database ${databaseName} owner ${role}`);
    });
    const url = new URL(TEST_DATABASE_URL!);
    url.username = role;
    url.password = password;
    url.pathname = `/${databaseName}`;
    handle = await openDatabase({ databaseUrl: url.toString(), poolSize: 6 });
    await migrateToLatest(handle.db, allMigrations());
    app = await makeApp(handle.db, 'postgres');
    org = await createOrg(handle.db, 'priv');
  });

  afterAll(async () => {
    await app?.close();
    const logins = handle
      ? (await handle.db.selectFrom('sql_access_logins').select('role_name').execute()).map((row) => row.role_name)
      : [];
    await handle?.close();
    await withAdmin(async (admin) => {
      await admin.query(`drop database if exists ${databaseName} with (force)`);
      for (const login of logins) await admin.query(`drop role if exists "${login.replaceAll('"', '""')}"`);
      await admin.query(`drop role if exists ${role}`);
    });
  });

  it('enable without CREATEROLE: 409 naming CREATEROLE, no login, no row, nothing audited', async () => {
    const refused = await api('POST', '/v1/sql-access');
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.data.detail).toContain('lacks CREATEROLE');
    expect(refused.body).not.toContain(role);
    expect(await handle!.db.selectFrom('sql_access_logins').selectAll().execute()).toEqual([]);
    const audited = await handle!.db.selectFrom('audit_events').select('action').where('action', 'like', 'sql_access.%').execute();
    expect(audited).toEqual([]);
  });

  it('rotate and disable without pg_signal_backend: 409 naming it, before anything changes', async () => {
    await withAdmin((admin) => admin.query(`alter role ${role} createrole`));
    const enabled = await api('POST', '/v1/sql-access');
    expect(enabled.statusCode, enabled.body).toBe(201);
    const before = await handle!.db.selectFrom('sql_access_logins').selectAll().executeTakeFirstOrThrow();

    for (const [method, url] of [
      ['POST', '/v1/sql-access/rotate'],
      ['DELETE', '/v1/sql-access'],
    ] as const) {
      const refused = await api(method, url);
      expect(refused.statusCode, `${method} ${url}: ${refused.body}`).toBe(409);
      expect(refused.data.detail).toContain('lacks pg_signal_backend');
    }
    expect(await handle!.db.selectFrom('sql_access_logins').selectAll().executeTakeFirstOrThrow()).toEqual(before);

    // Granted, both work.
    await withAdmin((admin) => admin.query(`grant pg_signal_backend to ${role}`));
    expect((await api('POST', '/v1/sql-access/rotate')).statusCode).toBe(200);
    expect((await api('DELETE', '/v1/sql-access')).statusCode).toBe(204);
  });
});
