import fs from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyProvisioning } from '../../src/provisioning/provision.js';
import { sha256 } from '../../src/security/tokens.js';
import type { App } from '../../src/server/context.js';
import { type Db, openDatabase } from '../../src/storage/database.js';
import { runCli } from '../support/cli.js';
import { backends, useDatabase } from '../support/databases.js';
import { SPEC_EXAMPLE, specExample } from '../support/files.js';
import { tempDir } from '../support/server.js';
import { JSON_API, call, makeApp } from './support.js';
import { provisioningSections } from '../../src/modules.js';

/** The locations and devices of a provisioning file (SPEC §7), and the device commands of the CLI. */

const FILE_TOKEN = 'sc_dev_acme0001000000000000000000000';
const FILE_KEY = 'sk_live_acmeci0000000000000000000000';
const INVENTORY = ['locations', 'devices', 'sensors'] as const;

async function inventoryDump(db: Db): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of INVENTORY) out[table] = (await sql`select * from ${sql.table(table)} order by id`.execute(db)).rows;
  return out;
}

describe.each(backends)('provisioning locations and devices on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;

  beforeAll(async () => {
    await applyProvisioning(database.db, await specExample(), provisioningSections(), SPEC_EXAMPLE);
    app = await makeApp(database.db, database.current.handle.kind);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('creates the location, the device with its sensors, and stores the device token hashed', async () => {
    const devices = await call(app, { url: '/v1/devices?serial=ACME-0001', token: FILE_KEY, accept: JSON_API });
    expect(devices.statusCode).toBe(200);
    const [device] = devices.data.data;
    expect(device.attributes).toMatchObject({ serial: 'ACME-0001', name: 'Fridge 1', token_prefix: FILE_TOKEN.slice(0, 11) });
    const location = await call(app, {
      url: device.relationships.location.links.related.replace(/^https?:\/\/[^/]+/, ''),
      token: FILE_KEY,
    });
    expect(location.data.data).toMatchObject({ slug: 'lab-1', name: 'Lab 1' });
    const sensors = await call(app, { url: `/v1/sensors?device_id=${device.id}&sort=key`, token: FILE_KEY });
    expect(sensors.data.data.map((s: any) => [s.key, s.kind, s.unit])).toEqual([
      ['hum', 'humidity', '%'],
      ['temp', 'temperature', '°C'],
    ]);
    const row = await database.db.selectFrom('devices').selectAll().where('id', '=', device.id).executeTakeFirstOrThrow();
    expect(row.token_hash).toBe(sha256(FILE_TOKEN));
    expect(JSON.stringify(await inventoryDump(database.db))).not.toContain(FILE_TOKEN);
    // The file's token authenticates the device.
    const me = await call(app, { url: '/v1/me', token: FILE_TOKEN });
    expect(me.data.data).toMatchObject({ kind: 'device', device_id: device.id, scopes: ['readings:write'] });
  });

  it('re-applying the file changes nothing; changes in the file are applied; nothing is deleted', async () => {
    const before = await inventoryDump(database.db);
    await applyProvisioning(database.db, await specExample(), provisioningSections(), SPEC_EXAMPLE);
    expect(await inventoryDump(database.db)).toEqual(before);

    const changed = await specExample();
    const org = changed.organizations[0];
    org.locations.push({ slug: 'lab-2', name: 'Lab 2' });
    org.devices[0].name = 'Fridge One';
    org.devices[0].location = 'lab-2';
    org.devices[0].token = 'sc_dev_acme0001rotated00000000000000';
    org.devices[0].sensors = [
      { key: 'temp', kind: 'temperature', unit: 'K' },
      { key: 'co2', kind: 'co2', unit: 'ppm' },
    ];
    await applyProvisioning(database.db, changed, provisioningSections(), 'changed.yaml');
    const device = (await call(app, { url: '/v1/devices?serial=ACME-0001', token: FILE_KEY })).data.data[0];
    expect(device.name).toBe('Fridge One');
    const lab2 = (await call(app, { url: '/v1/locations?slug=lab-2', token: FILE_KEY })).data.data[0];
    expect(device.location_id).toBe(lab2.id);
    const sensors = (await call(app, { url: `/v1/sensors?device_id=${device.id}&sort=key`, token: FILE_KEY })).data.data;
    expect(sensors.map((s: any) => [s.key, s.unit])).toEqual([
      ['co2', 'ppm'],
      ['hum', '%'],
      ['temp', 'K'],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // bearer cache
    expect((await call(app, { url: '/v1/me', token: FILE_TOKEN })).statusCode).toBe(401);
    expect((await call(app, { url: '/v1/me', token: 'sc_dev_acme0001rotated00000000000000' })).statusCode).toBe(200);
  });
});

describe('sensorcloud device create / device token rotate', () => {
  let dataDir: string;
  const env = () => ({ DATA_DIR: dataDir, DATABASE_URL: undefined, SENSORCLOUD_PROVISION: undefined, LOG_LEVEL: 'silent' });

  beforeAll(async () => {
    dataDir = await tempDir();
    expect((await runCli(['provision', SPEC_EXAMPLE], env())).code).toBe(0);
  });
  afterAll(async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  /** Asks a server on the CLI's database who a token is. */
  async function whoIs(token: string): Promise<number> {
    const handle = await openDatabase({ dataDir });
    const app = await makeApp(handle.db, 'embedded');
    try {
      return (await call(app, { url: '/v1/me', token })).statusCode;
    } finally {
      await app.close();
      await handle.close();
    }
  }

  it('creates a device and prints its token once; rotation prints a new one and ends the old', async () => {
    const created = await runCli(
      ['device', 'create', '--org', 'acme', '--serial', 'CLI-1', '--name', 'CLI fridge', '--location', 'lab-1'],
      env(),
    );
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^sc_dev_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('CLI-1');
    expect(created.stderr).not.toContain(token);
    expect(await whoIs(token)).toBe(200);

    const rotated = await runCli(['device', 'token', 'rotate', '--org', 'acme', '--serial', 'CLI-1'], env());
    expect(rotated.code, rotated.stderr).toBe(0);
    const fresh = rotated.stdout.trim();
    expect(fresh).toMatch(/^sc_dev_/);
    expect(fresh).not.toBe(token);
    expect(await whoIs(token)).toBe(401);
    expect(await whoIs(fresh)).toBe(200);

    // The provisioned device's token can be rotated the same way.
    expect((await runCli(['device', 'token', 'rotate', '--org', 'acme', '--serial', 'ACME-0001'], env())).code).toBe(0);
    expect(await whoIs(FILE_TOKEN)).toBe(401);

    // Each issue of a token (the file's too) is in the audit log as the server's own doing (no address), never the token.
    const handle = await openDatabase({ dataDir });
    try {
      const audit = await handle.db
        .selectFrom('audit_events')
        .select(['action', 'actor_kind', 'actor_id', 'source_address', 'details'])
        .where('action', 'like', 'device_token.%')
        .orderBy('at')
        .execute();
      expect(audit.map((a) => [a.action, a.details.serial])).toEqual([
        ['device_token.created', 'ACME-0001'],
        ['device_token.created', 'CLI-1'],
        ['device_token.rotated', 'CLI-1'],
        ['device_token.rotated', 'ACME-0001'],
      ]);
      expect(audit.every((a) => a.actor_kind === 'system' && a.actor_id === null && a.source_address === null)).toBe(true);
      expect(JSON.stringify(audit)).not.toMatch(new RegExp(`${token}|${fresh}`));
    } finally {
      await handle.close();
    }
  });

  it('refuses what it cannot do: exit 1 for unknown organization, location, serial or a duplicate; exit 2 for usage', async () => {
    const cases: [string[], number, RegExp][] = [
      [['device', 'create', '--org', 'nope', '--serial', 'X', '--name', 'X'], 1, /no organization/],
      [['device', 'create', '--org', 'acme', '--serial', 'X', '--name', 'X', '--location', 'nowhere'], 1, /no location/],
      [['device', 'create', '--org', 'acme', '--serial', 'ACME-0001', '--name', 'X'], 1, /already has a device/],
      [['device', 'token', 'rotate', '--org', 'acme', '--serial', 'NOPE'], 1, /no device/],
      [['device', 'create', '--org', 'acme', '--name', 'X'], 2, /serial/],
      [['device', 'token', 'rotate', '--org', 'acme'], 2, /serial/],
    ];
    for (const [args, code, message] of cases) {
      const result = await runCli(args, env());
      expect(result.code, args.join(' ')).toBe(code);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).not.toMatch(/sc_dev_/);
    }
  });
});
