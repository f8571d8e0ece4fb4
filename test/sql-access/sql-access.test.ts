import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { roleScopes } from '../../src/identity/scopes.js';
import type { App } from '../../src/server/context.js';
import { REPORTING_VIEWS } from '../../src/sql-access/migrations/0019_sql_access.js';
import { REPORTING_GROUP, endOverlongWork } from '../../src/sql-access/reporting-roles.js';
import { JSON_API, type TestOrg, call, createOrg, makeApp, memberWithKey } from '../api/support.js';
import { runCli } from '../support/cli.js';
import { TEST_DATABASE_URL, backends, useDatabase } from '../support/databases.js';

/**
 * SQL access against the machine's PostgreSQL, connecting as two organizations' logins: what each
 * sees through schema `reporting`, what they cannot do, the address ranges, the limits, rotation
 * and disabling; and `/v1/sql-access` itself (scopes, the password shown once, audit entries,
 * bad ranges). Needs the pg_hba.conf rules of scripts/sql-access-hba.sh (.ci/run adds them).
 */

const postgres = backends.find((backend) => backend.name === 'postgres');

/** Every route of /v1/sql-access, with a valid body where it takes one. */
const ROUTES = [
  { method: 'POST', url: '/v1/sql-access', body: undefined },
  { method: 'GET', url: '/v1/sql-access', body: undefined },
  { method: 'PATCH', url: '/v1/sql-access', body: { allowed_cidrs: ['10.0.0.0/8'] } },
  { method: 'POST', url: '/v1/sql-access/rotate', body: undefined },
  { method: 'DELETE', url: '/v1/sql-access', body: undefined },
] as const;

interface Access {
  username: string;
  password: string;
  host: string;
  port: number;
  database: string;
  schema: string;
  allowed_cidrs: string[];
}

/** SQLSTATE of what a statement fails with (undefined when it succeeds). */
async function failureOf(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe.runIf(postgres)('SQL access on postgres', () => {
  const database = useDatabase(postgres!);
  let app: App;
  const orgs: { org: TestOrg; access: Access }[] = [];
  const clients: pg.Client[] = [];

  async function connect(access: Pick<Access, 'username' | 'password'>, database = orgs[0]!.access.database): Promise<pg.Client> {
    const url = new URL(TEST_DATABASE_URL!);
    // The address the tests reach PostgreSQL at (the handed-out host may be a name resolving elsewhere).
    const client = new pg.Client({
      host: url.hostname,
      port: Number(url.port || 5432),
      database,
      user: access.username,
      password: access.password,
    });
    client.on('error', () => {}); // a terminated session is what some tests expect
    await client.connect();
    clients.push(client);
    return client;
  }

  const api = (org: TestOrg, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, accept?: string) =>
    call(app, { method, url, token: org.adminKey, ...(body !== undefined && { body }), ...(accept && { accept }) });

  /** One row in each table a view reads, made through the API. */
  async function seed(org: TestOrg, name: string): Promise<void> {
    const post = async (url: string, body: unknown, token = org.adminKey) => {
      const response = await call(app, { method: 'POST', url, token, body });
      expect(response.statusCode, `${url}: ${response.body}`).toBeLessThan(300);
      return response.data.data;
    };
    const location = await post('/v1/locations', { slug: `${name}-room`, name: `${name} room` });
    const profile = await post('/v1/scaling-profiles', { name: `${name} scale`, kind: 'linear', scale: 2, offset: 1 });
    const device = await post('/v1/devices', {
      serial: `${name}-1`,
      name: `${name} freezer`,
      location_id: location.id,
      sensors: [{ key: 't', kind: 'temperature', unit: '°C', scaling_profile_id: profile.id }],
    });
    const [sensorId] = device.sensor_ids;
    await post('/v1/calibrations', {
      sensor_id: sensorId,
      calibrated_at: '2024-02-01T00:00:00Z',
      due_at: '2031-01-01T00:00:00Z',
      offset: 0,
    });
    await post('/v1/groups', { name: `${name} group`, sensor_ids: [sensorId] });
    await post('/v1/alarm-thresholds', { sensor_id: sensorId, max: 10, name: `${name} max` });
    await post('/v1/ingest', { readings: [{ sensor: 't', ts: '2024-06-01T00:00:00Z', value: 30 }] }, device.token);
    const alarms = await call(app, { url: '/v1/alarms', token: org.adminKey });
    await post(`/v1/alarms/${alarms.data.data[0].id}/comments`, { body: `${name} looked` });
  }

  beforeAll(async () => {
    app = await makeApp(
      database.db,
      'postgres',
      { SQL_ACCESS_STATEMENT_TIMEOUT: '1', SQL_ACCESS_CONNECTION_LIMIT: '3' },
      { databaseUrl: database.current.databaseUrl },
    );
    for (const name of ['north', 'south']) {
      const org = await createOrg(database.db, name);
      await seed(org, name);
      const enabled = await api(org, 'POST', '/v1/sql-access', { allowed_cidrs: ['127.0.0.1', '::1/128'] });
      expect(enabled.statusCode, enabled.body).toBe(201);
      orgs.push({ org, access: enabled.data.data });
    }
    const wrong = await failureOf(() => connect({ ...orgs[0]!.access, password: 'not-the-password' }));
    if (wrong !== '28P01')
      throw new Error(
        `a wrong password was not refused (${wrong}): PostgreSQL needs the rules of scripts/sql-access-hba.sh in pg_hba.conf`,
      );
  });
  // Each test's sessions end with it: the logins' connection limit is small.
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.end().catch(() => {});
  });
  afterAll(async () => {
    await app?.close();
  });

  it('hands out the login, where to connect and the ranges; the database stores no password', async () => {
    const { access } = orgs[0]!;
    const url = new URL(database.current.databaseUrl!);
    expect(access).toMatchObject({
      host: url.hostname,
      port: Number(url.port || 5432),
      database: url.pathname.slice(1),
      schema: 'reporting',
    });
    expect(access.allowed_cidrs).toEqual(['127.0.0.1/32', '::1/128']);
    expect(access.password.length).toBeGreaterThanOrEqual(40);
    const dump = JSON.stringify(await database.db.selectFrom('sql_access_logins').selectAll().execute());
    expect(dump).not.toContain(access.password);
  });

  it('shows each login only its own organization, in every view', async () => {
    for (const { org, access } of orgs) {
      const client = await connect(access);
      for (const view of REPORTING_VIEWS) {
        const { rows } = await client.query<{ organization_id: string }>(`select * from reporting.${view}`);
        expect(rows.length, `${view} of ${org.slug}`).toBeGreaterThan(0);
        expect(new Set(rows.map((row) => row.organization_id)), view).toEqual(new Set([org.id]));
      }
      // Unqualified names find the views (search_path = reporting).
      const { rows } = await client.query('select count(*)::int as n from readings');
      expect(rows[0].n).toBe(1);
    }
  });

  it('refuses writes, DDL and COPY to files, even with the read-only default switched off', async () => {
    const client = await connect(orgs[0]!.access);
    await client.query('set default_transaction_read_only = off');
    for (const statement of [
      `insert into reporting.locations (id, organization_id, slug, name) values (gen_random_uuid(), '${orgs[0]!.org.id}', 'x', 'x')`,
      'update reporting.readings set value = 0',
      'delete from reporting.alarms',
      'create table reporting.mine (a int)',
      'create table public.mine (a int)',
      'create temporary table mine (a int)',
      'create view reporting.mine as select 1',
      'create schema mine',
      'create function reporting.leak(text) returns boolean language sql as $$ select true $$',
      "copy (select * from reporting.readings) to '/tmp/sensorcloud-sql-access-copy'",
      'copy reporting.locations from stdin',
    ]) {
      expect(await failureOf(() => client.query(statement)), statement).toBe('42501');
    }
  });

  it('cannot read base tables or other schemas', async () => {
    const client = await connect(orgs[0]!.access);
    for (const table of [
      'public.readings',
      'public.sensors',
      'public.sql_access_logins',
      'public.users',
      'public.oauth_clients',
      'pg_authid',
    ]) {
      expect(await failureOf(() => client.query(`select * from ${table} limit 1`)), table).toBe('42501');
    }
  });

  it('refuses set role and set session authorization towards anyone else', async () => {
    const [north, south] = orgs;
    const client = await connect(north!.access);
    const superuser = new URL(TEST_DATABASE_URL!).username || 'postgres';
    for (const statement of [
      `set role "${south!.access.username}"`,
      `set role "${superuser}"`,
      `set session authorization "${south!.access.username}"`,
      `set session authorization "${superuser}"`,
    ]) {
      expect(await failureOf(() => client.query(statement)), statement).toBe('42501');
    }
    // The group it belongs to is reachable, and changes nothing: the views follow the login.
    await client.query(`set role ${REPORTING_GROUP}`);
    const { rows } = await client.query<{ organization_id: string }>('select distinct organization_id from reporting.sensors');
    expect(rows.map((row) => row.organization_id)).toEqual([north!.org.id]);
  });

  it('shows nothing while the client address is outside the allowed ranges', async () => {
    const { org, access } = orgs[0]!;
    const open = await connect(access);
    const moved = await api(org, 'PATCH', '/v1/sql-access', { allowed_cidrs: ['10.0.0.0/8', '2001:db8::/32'] });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.data.data.allowed_cidrs).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    const fresh = await connect(access);
    for (const client of [open, fresh]) {
      for (const view of REPORTING_VIEWS) {
        const { rows } = await client.query(`select * from reporting.${view}`);
        expect(rows, view).toEqual([]);
      }
    }
    await api(org, 'PATCH', '/v1/sql-access', { allowed_cidrs: ['127.0.0.1/32'] });
    const { rows } = await fresh.query('select * from reporting.sensors');
    expect(rows).toHaveLength(1);
  });

  it('cancels a statement that runs past the timeout, and caps the connections', async () => {
    const { access } = orgs[1]!;
    const client = await connect(access);
    expect(await failureOf(() => client.query('select pg_sleep(5)'))).toBe('57014');
    await connect(access);
    await connect(access);
    expect(await failureOf(() => connect(access))).toBe('53300');
  });

  it('a login that lifts its own statement timeout is still ended by the watchdog', async () => {
    const { access } = orgs[1]!;
    const client = await connect(access);
    await client.query('set statement_timeout = 0');
    const sleeping = failureOf(() => client.query('select pg_sleep(30)'));
    const idle = await connect(access);
    await idle.query('set idle_in_transaction_session_timeout = 0');
    await idle.query('begin');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await endOverlongWork(database.db, 1)).toEqual({ cancelled: 1, terminated: 1 });
    expect(await sleeping).toBe('57014');
    expect(await failureOf(() => idle.query('select 1'))).toBeDefined();
    // Nothing of anyone else is touched: no reporting work is left to end.
    expect(await endOverlongWork(database.db, 1)).toEqual({ cancelled: 0, terminated: 0 });
  });

  it('rotation: the old password stops working and sessions opened with it end', async () => {
    const { org, access } = orgs[0]!;
    const open = await connect(access);
    const rotated = await api(org, 'POST', '/v1/sql-access/rotate');
    expect(rotated.statusCode, rotated.body).toBe(200);
    expect(rotated.headers['cache-control']).toBe('no-store');
    const password: string = rotated.data.data.password;
    expect(password).not.toBe(access.password);
    expect(await failureOf(() => open.query('select 1'))).toBeDefined();
    expect(await failureOf(() => connect(access))).toBe('28P01');
    const client = await connect({ ...access, password });
    expect((await client.query('select count(*)::int as n from reporting.sensors')).rows[0].n).toBe(1);
    orgs[0]!.access = { ...access, password };
  });

  it('disable: open sessions end, new ones are refused, the login is dropped', async () => {
    const { org, access } = orgs[1]!;
    const open = await connect(access);
    const disabled = await api(org, 'DELETE', '/v1/sql-access');
    expect(disabled.statusCode, disabled.body).toBe(204);
    expect(await failureOf(() => open.query('select 1'))).toBeDefined();
    // The role is gone: no password rule applies to a name that is no member of the group.
    expect(['28P01', '28000']).toContain(await failureOf(() => connect(access)));
    const { rows } = await sql<{ role: string | null }>`select to_regrole(${access.username})::text as role`.execute(database.db);
    expect(rows[0]?.role).toBeNull();
    expect((await api(org, 'GET', '/v1/sql-access')).statusCode).toBe(404);
    // Enabled again: a new login, a new password.
    const again = await api(org, 'POST', '/v1/sql-access', { allowed_cidrs: ['127.0.0.0/8'] });
    expect(again.statusCode, again.body).toBe(201);
    expect(again.data.data.username).not.toBe(access.username);
    orgs[1]!.access = again.data.data;
  });

  it('/v1/sql-access: the password once, JSON:API, 409 when enabled, 422 naming a bad range, 404 when off', async () => {
    const { org, access } = orgs[0]!;
    const shown = await api(org, 'GET', '/v1/sql-access');
    expect(shown.statusCode).toBe(200);
    expect(shown.data.data.username).toBe(access.username);
    expect(shown.body).not.toContain('password"');
    const jsonApi = await api(org, 'GET', '/v1/sql-access', undefined, JSON_API);
    expect(jsonApi.data.data).toMatchObject({ type: 'sql-access', id: access.username, attributes: { schema: 'reporting' } });

    const twice = await api(org, 'POST', '/v1/sql-access', {});
    expect(twice.statusCode).toBe(409);
    expect(twice.headers['content-type']).toContain('application/problem+json');

    for (const body of [{ allowed_cidrs: ['10.0.0.0/8', '10.0.0.1/8'] }, { allowed_cidrs: ['10.0.0.0/8', 'not-an-address'] }]) {
      const bad = await api(org, 'PATCH', '/v1/sql-access', body);
      expect(bad.statusCode, bad.body).toBe(422);
      expect(bad.data.errors[0].pointer).toBe('/body/allowed_cidrs/1');
    }
    expect((await api(org, 'PATCH', '/v1/sql-access', { allowed_cidrs: [] })).statusCode).toBe(400);

    const other = await createOrg(database.db, 'west');
    for (const { method, url, body } of ROUTES.filter((route) => route.method !== 'POST' || route.url !== '/v1/sql-access')) {
      const response = await api(other, method, url, body);
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
  });

  it('needs sql_access:write: members and viewers are refused', async () => {
    const { org } = orgs[0]!;
    for (const role of ['member', 'viewer'] as const) {
      const { key } = await memberWithKey(database.db, org, role, [...roleScopes(role)]);
      for (const { method, url, body } of ROUTES) {
        const response = await call(app, { method, url, token: key, body });
        expect(response.statusCode, `${role} ${method} ${url}`).toBe(403);
      }
    }
  });

  it('the CLI enables, shows, re-ranges, rotates and disables, with the same service', async () => {
    const east = await createOrg(database.db, 'east');
    const env = { DATABASE_URL: database.current.databaseUrl, LOG_LEVEL: 'silent' };
    const cli = (...args: string[]) => runCli(['sql-access', ...args, '--org', east.slug], env);
    const bad = await cli('enable', '--cidrs', '10.0.0.1/8');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--cidrs\[0\].*10\.0\.0\.0\/8/);
    const enabled = await cli('enable', '--cidrs', '127.0.0.1,::1');
    expect(enabled.code, enabled.stderr).toBe(0);
    const username = /login (sc_sql_\w+)/.exec(enabled.stderr)![1]!;
    const client = await connect({ username, password: enabled.stdout.trim() });
    expect((await client.query('select count(*)::int as n from sensors')).rows[0].n).toBe(0);
    expect((await cli('show')).stdout).toContain(`login ${username}`);
    expect((await cli('set-cidrs', '--cidrs', '192.0.2.0/24')).stdout).toContain('from 192.0.2.0/24');
    const rotated = await cli('rotate');
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(await failureOf(() => connect({ username, password: enabled.stdout.trim() }))).toBe('28P01');
    expect((await cli('disable')).code).toBe(0);
    expect((await cli('show')).stderr).toMatch(/not enabled/);
  });

  it('audits every change, never with the password', async () => {
    const events = await database.db
      .selectFrom('audit_events')
      .select(['organization_id', 'action', 'target_id', 'details', 'source_address'])
      .where('action', 'like', 'sql_access.%')
      .orderBy('at')
      .execute();
    const north = events.filter((e) => e.organization_id === orgs[0]!.org.id).map((e) => e.action);
    expect(north).toEqual(['sql_access.enabled', 'sql_access.updated', 'sql_access.updated', 'sql_access.password_rotated']);
    const south = events.filter((e) => e.organization_id === orgs[1]!.org.id).map((e) => e.action);
    expect(south).toEqual(['sql_access.enabled', 'sql_access.disabled', 'sql_access.enabled']);
    const text = JSON.stringify(events);
    for (const { access } of orgs) expect(text).not.toContain(access.password);
  });
});

describe.each(backends.filter((backend) => backend.name === 'pglite'))('SQL access on the embedded database', (backend) => {
  const database = useDatabase(backend);

  it('answers 409: SQL access needs PostgreSQL', async () => {
    const app = await makeApp(database.db, 'embedded');
    const org = await createOrg(database.db, 'solo');
    for (const { method, url, body } of ROUTES) {
      const response = await call(app, { method, url, token: org.adminKey, body });
      expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(409);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.data.detail).toMatch(/needs PostgreSQL/);
    }
    // The views exist there too (one migration set), and show nothing.
    for (const view of REPORTING_VIEWS) {
      const { rows } = await sql`select * from ${sql.table(`reporting.${view}`)}`.execute(database.db);
      expect(rows, view).toEqual([]);
    }
    await app.close();
  });
});
