import type { BearerAuthenticator, CredentialResolver } from '../auth/bearer.js';
import type { Principal } from '../auth/principal.js';
import type { Scope } from '../identity/scopes.js';
import { generateToken, sha256 } from '../security/tokens.js';
import type { Db } from '../storage/database.js';
import type { DeviceToken } from './devices.repo.js';
import { findDeviceByTokenHash } from './devices.repo.js';

/**
 * Device tokens (`sc_dev_…`): 256 random bits, shown once when the device is created or its token
 * rotated, stored as SHA-256. They authenticate a device at ingest (HTTP and MQTT) and can do nothing
 * else: the principal holds `readings:write` only, for its own organization and device.
 */

export const DEVICE_TOKEN_PREFIX = 'sc_dev_';
export const DEVICE_SCOPES: ReadonlySet<Scope> = new Set<Scope>(['readings:write']);

export interface IssuedDeviceToken {
  token: string;
  stored: DeviceToken;
}

/** A stored form for a token (generated, or given in a provisioning file). */
export function storedDeviceToken(token: string): DeviceToken {
  return { hash: sha256(token), prefix: token.slice(0, DEVICE_TOKEN_PREFIX.length + 4) };
}

export function newDeviceToken(): IssuedDeviceToken {
  const token = generateToken(DEVICE_TOKEN_PREFIX);
  return { token, stored: storedDeviceToken(token) };
}

/** The revocation group of every credential of a device: evicting it drops cached principals at once. */
export const deviceRevocationGroup = (deviceId: string): string => `device:${deviceId}`;

export function deviceTokenResolver(db: Db): CredentialResolver {
  return {
    prefix: DEVICE_TOKEN_PREFIX,
    byHash: true,
    async resolve(_token, hash): Promise<Principal | null> {
      const device = await findDeviceByTokenHash(db, hash);
      if (!device) return null;
      return {
        kind: 'device',
        organizationId: device.organization_id,
        userId: null,
        clientId: null,
        scopes: DEVICE_SCOPES,
        credentialHash: hash,
        revocationGroup: deviceRevocationGroup(device.id),
        expiresAt: null,
        deviceId: device.id,
        deviceSerial: device.serial,
      };
    },
  };
}

export function registerDeviceTokenResolver(bearer: BearerAuthenticator, db: Db): void {
  bearer.register(deviceTokenResolver(db));
}
