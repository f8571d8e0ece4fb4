import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { writeBatch } from '../../src/ingest/ingest.repo.js';
import { sha256 } from '../../src/security/tokens.js';
import type { Db } from '../../src/storage/database.js';

/**
 * Rows the readings tests stand on (organizations, users, devices, sensors, scaling profiles,
 * calibrations, API keys), inserted directly so these tests depend only on the schema.
 */

export interface SeededOrg {
  organizationId: string;
  userId: string;
  deviceId: string;
  /** The device's token (sc_dev_…), stored hashed as C's resolver expects. */
  deviceToken: string;
  /** Another device of the same organization, with a sensor keyed 'other'. */
  otherDeviceId: string;
  otherDeviceToken: string;
  sensors: Record<string, string>;
}

const token = (prefix: string) => prefix + randomBytes(32).toString('base64url');

export async function seedOrganization(db: Db, slug: string): Promise<SeededOrg> {
  const org = await db.insertInto('organizations').values({ slug, name: slug }).returning('id').executeTakeFirstOrThrow();
  const user = await db
    .insertInto('users')
    .values({ email: `${slug}-${randomBytes(4).toString('hex')}@example.test`, name: 'Owner' })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.insertInto('memberships').values({ organization_id: org.id, user_id: user.id, role: 'owner' }).execute();
  const deviceToken = token('sc_dev_');
  const otherDeviceToken = token('sc_dev_');
  const device = await db
    .insertInto('devices')
    .values({
      organization_id: org.id,
      serial: `${slug}-d1`,
      name: 'Device 1',
      token_hash: sha256(deviceToken),
      token_prefix: deviceToken.slice(0, 11),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const other = await db
    .insertInto('devices')
    .values({
      organization_id: org.id,
      serial: `${slug}-d2`,
      name: 'Device 2',
      token_hash: sha256(otherDeviceToken),
      token_prefix: otherDeviceToken.slice(0, 11),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const sensors: Record<string, string> = {};
  for (const key of ['temp', 'humidity', 'pressure']) {
    const row = await db
      .insertInto('sensors')
      .values({ organization_id: org.id, device_id: device.id, key, kind: key })
      .returning('id')
      .executeTakeFirstOrThrow();
    sensors[key] = row.id;
  }
  const otherSensor = await db
    .insertInto('sensors')
    .values({ organization_id: org.id, device_id: other.id, key: 'other', kind: 'temp' })
    .returning('id')
    .executeTakeFirstOrThrow();
  sensors.other = otherSensor.id;
  return { organizationId: org.id, userId: user.id, deviceId: device.id, deviceToken, otherDeviceId: other.id, otherDeviceToken, sensors };
}

export async function addSensor(db: Db, org: SeededOrg, key: string, deviceId = org.deviceId): Promise<string> {
  const row = await db
    .insertInto('sensors')
    .values({ organization_id: org.organizationId, device_id: deviceId, key, kind: 'test' })
    .returning('id')
    .executeTakeFirstOrThrow();
  org.sensors[key] = row.id;
  return row.id;
}

export async function setLinearProfile(db: Db, org: SeededOrg, sensorId: string, scale: number, offset: number): Promise<void> {
  const profile = await db
    .insertInto('scaling_profiles')
    .values({ organization_id: org.organizationId, name: `lin-${randomBytes(4).toString('hex')}`, kind: 'linear', scale, offset })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.updateTable('sensors').set({ scaling_profile_id: profile.id }).where('id', '=', sensorId).execute();
}

export async function setPiecewiseProfile(
  db: Db,
  org: SeededOrg,
  sensorId: string,
  points: { raw: number; value: number }[],
): Promise<void> {
  const profile = await db
    .insertInto('scaling_profiles')
    .values({
      organization_id: org.organizationId,
      name: `pw-${randomBytes(4).toString('hex')}`,
      kind: 'piecewise_linear',
      points: JSON.stringify(points),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db.updateTable('sensors').set({ scaling_profile_id: profile.id }).where('id', '=', sensorId).execute();
}

export async function setCalibration(db: Db, org: SeededOrg, sensorId: string, offset: number): Promise<void> {
  await db.updateTable('calibrations').set({ active: false }).where('sensor_id', '=', sensorId).where('active', '=', true).execute();
  await db
    .insertInto('calibrations')
    .values({ organization_id: org.organizationId, sensor_id: sensorId, calibrated_at: new Date(), offset, active: true })
    .execute();
}

/** An API key row (sk_live_…) with the given scopes, created by the organization's owner. */
export async function createApiKey(db: Db, org: SeededOrg, scopes: string[]): Promise<string> {
  const key = token('sk_live_');
  await db
    .insertInto('api_keys')
    .values({
      organization_id: org.organizationId,
      name: `key-${randomBytes(4).toString('hex')}`,
      key_hash: sha256(key),
      prefix: key.slice(0, 12),
      scopes,
      created_by: org.userId,
    })
    .execute();
  return key;
}

/** The partition a stored reading sits in. */
export async function partitionOf(db: Db, sensorId: string, ts: string): Promise<string | undefined> {
  const { rows } = await sql<{
    part: string;
  }>`select tableoid::regclass::text as part from readings where sensor_id = ${sensorId} and ts = ${ts}::timestamptz`.execute(db);
  return rows[0]?.part;
}

export interface Point {
  sensorId: string;
  ts: number;
  value: number;
}

/** Writes readings of one organization through the ingest statement; answers how many were new. */
export async function store(db: Db, org: SeededOrg, points: Point[]): Promise<number> {
  const sensors = [...new Set(points.map((p) => p.sensorId))];
  const { accepted } = await writeBatch(
    db,
    org.organizationId,
    {
      count: points.length,
      sensors,
      sensorIndex: Int32Array.from(points, (p) => sensors.indexOf(p.sensorId) + 1),
      ts: Float64Array.from(points, (p) => p.ts),
      values: Float64Array.from(points, (p) => p.value),
      rawValues: Float64Array.from(points, (p) => p.value),
    },
    [],
  );
  return accepted;
}
