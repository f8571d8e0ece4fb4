import { SYSTEM } from '../audit/audit.repo.js';
import type { SectionApplier } from '../provisioning/section.js';
import { auditToken } from './devices.service.js';
import { storedDeviceToken } from './device-tokens.js';
import { findDeviceBySerial, findDeviceByTokenHash, insertDevice, setDeviceToken, updateDevice } from './devices.repo.js';
import { findLocationBySlug, upsertLocationBySlug } from './locations.repo.js';
import { upsertSensorByKey } from './sensors.repo.js';

/**
 * The `locations` and `devices` sections of a provisioning file (SPEC §7). Upserts by natural key
 * (location slug, device serial, sensor key); a device token given in the file is stored as
 * SHA-256 exactly like a generated one, and only written when it differs, so applying the same
 * file twice changes nothing. Fields the file leaves out are left alone.
 */

export const locationsSection: SectionApplier = {
  section: 'locations',
  async apply(tx, organization, spec) {
    for (const location of spec.locations ?? []) await upsertLocationBySlug(tx, organization.id, location.slug, location.name);
    return spec.locations?.length ?? 0;
  },
};

/** Tokens the file brings are audited as the server's own doing (in the provisioning transaction). */
const PROVISIONED = { via: 'provisioning' };

export const devicesSection: SectionApplier = {
  section: 'devices',
  async apply(tx, organization, spec) {
    for (const item of spec.devices ?? []) {
      let locationId: string | undefined;
      if (item.location !== undefined) {
        const location = await findLocationBySlug(tx, organization.id, item.location);
        if (!location) throw new Error(`device ${item.serial}: location "${item.location}" does not exist`);
        locationId = location.id;
      }
      const token = item.token === undefined ? undefined : storedDeviceToken(item.token);
      if (token) {
        const holder = await findDeviceByTokenHash(tx, token.hash);
        if (holder && (holder.organization_id !== organization.id || holder.serial !== item.serial)) {
          throw new Error(`device ${item.serial}: the token is already the token of another device`);
        }
      }
      let device = await findDeviceBySerial(tx, organization.id, item.serial);
      if (!device) {
        device = await insertDevice(
          tx,
          organization.id,
          { serial: item.serial, name: item.name, location_id: locationId ?? null },
          token ?? null,
        );
        if (token) await auditToken(tx, SYSTEM, 'device_token.created', device, PROVISIONED);
      } else {
        const changes = {
          ...(device.name !== item.name && { name: item.name }),
          ...(locationId !== undefined && device.location_id !== locationId && { location_id: locationId }),
        };
        if (Object.keys(changes).length > 0) device = (await updateDevice(tx, organization.id, device.id, changes)) ?? device;
        if (token && device.token_hash !== token.hash) {
          device = (await setDeviceToken(tx, organization.id, device.id, token)) ?? device;
          await auditToken(tx, SYSTEM, 'device_token.rotated', device, PROVISIONED);
        }
      }
      for (const sensor of item.sensors ?? []) {
        await upsertSensorByKey(tx, organization.id, device.id, {
          key: sensor.key,
          kind: sensor.kind,
          unit: sensor.unit,
          name: sensor.name,
        });
      }
    }
    return spec.devices?.length ?? 0;
  },
};
