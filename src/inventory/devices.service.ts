import type { BearerAuthenticator } from '../auth/bearer.js';
import { guarded } from '../api/db-errors.js';
import { type AuditSource, auditTarget } from '../audit/audit.repo.js';
import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
import { deviceRevocationGroup, newDeviceToken, storedDeviceToken } from './device-tokens.js';
import { type DeviceFields, deleteDevice, insertDevice, setDeviceToken } from './devices.repo.js';
import type { Device, Sensor } from './inventory.schema.js';
import { insertSensor } from './sensors.repo.js';

/** Creating devices (with their first token and sensors), rotating tokens, deleting: the API and the CLI share this. */

export const DEVICE_CONSTRAINTS = {
  unique: {
    devices_org_serial_key: 'A device with this serial already exists.',
    devices_token_hash_key: 'This device token is already in use.',
    sensors_device_key_key: 'Two sensors of a device cannot share a key.',
  },
  foreignKey: {
    devices_location_fk: { pointer: '/body/location_id', detail: 'location_id does not refer to a location of this organization' },
    sensors_scaling_profile_fk: {
      pointer: '/body/scaling_profile_id',
      detail: 'scaling_profile_id does not refer to a scaling profile of this organization',
    },
  },
};

export interface NewSensorInput {
  key: string;
  kind: string;
  unit?: string | undefined;
  name?: string | null | undefined;
  scaling_profile_id?: string | null | undefined;
  offline_after_seconds?: number | null | undefined;
}

export interface CreatedDevice {
  device: Device;
  sensors: Sensor[];
  /** The device token, in clear: shown once, never stored. */
  token: string;
}

export async function createDevice(
  db: Db,
  organizationId: string,
  source: AuditSource,
  fields: DeviceFields,
  sensors: readonly NewSensorInput[] = [],
  presetToken?: string,
): Promise<CreatedDevice> {
  const issued = presetToken ? { token: presetToken, stored: storedDeviceToken(presetToken) } : newDeviceToken();
  return guarded(
    () =>
      db.transaction().execute(async (tx) => {
        const device = await insertDevice(tx, organizationId, fields, issued.stored);
        const created: Sensor[] = [];
        for (const sensor of sensors) created.push(await insertSensor(tx, organizationId, { ...sensor, device_id: device.id }));
        await auditToken(tx, source, 'device_token.created', device);
        return { device, sensors: created, token: issued.token };
      }),
    DEVICE_CONSTRAINTS,
  );
}

/** A new token for the device; the old one stops working at once, on every node (storage/invalidations.ts). */
export async function rotateDeviceToken(
  db: Db,
  bearer: BearerAuthenticator | undefined,
  organizationId: string,
  deviceId: string,
  source: AuditSource,
): Promise<{ device: Device; token: string } | undefined> {
  const issued = newDeviceToken();
  return db.transaction().execute(async (tx) => {
    const device = await setDeviceToken(tx, organizationId, deviceId, issued.stored);
    if (!device) return undefined;
    await auditToken(tx, source, 'device_token.rotated', device);
    await forgetDeviceToken(tx, bearer, device.id);
    return { device, token: issued.token };
  });
}

/** Deletes the device, and so revokes its token (audited as such). */
export async function removeDevice(
  db: Db,
  bearer: BearerAuthenticator | undefined,
  organizationId: string,
  deviceId: string,
  source: AuditSource,
): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const device = await deleteDevice(tx, organizationId, deviceId);
    if (!device) return false;
    if (device.token_hash !== null) await auditToken(tx, source, 'device_token.revoked', device, { reason: 'device_deleted' });
    await forgetDeviceToken(tx, bearer, device.id);
    return true;
  });
}

/** A device token's entry in the audit log: the device, by serial. */
export const auditToken = auditTarget('device', (device: Device) => ({
  organizationId: device.organization_id,
  id: device.id,
  details: { serial: device.serial },
}));

/** Every node stops honouring the device's previous token (the CLI, without a bearer cache of its own, only tells the servers). */
async function forgetDeviceToken(db: Db, bearer: BearerAuthenticator | undefined, deviceId: string): Promise<void> {
  const match = { revocationGroup: deviceRevocationGroup(deviceId) };
  if (bearer) await bearer.revoked(match, db);
  else await announce(db, { kind: 'credentials', ...match });
}
