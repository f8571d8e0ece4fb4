import { SYSTEM } from '../audit/audit.repo.js';
import { findDeviceBySerial } from '../inventory/devices.repo.js';
import { createDevice, rotateDeviceToken } from '../inventory/devices.service.js';
import { findLocationBySlug } from '../inventory/locations.repo.js';
import { organizationBySlug, withDatabase } from './commands.js';
import { CliError, printSecret } from './io.js';

/**
 * `sensorcloud device create` and `sensorcloud device token rotate`: the device token is printed
 * once on standard output (alone on its line, for scripts) and stored only as a hash. A rotation
 * takes effect on running servers within the bearer cache lifetime (1 s).
 */
export async function deviceCreateCommand(options: { org: string; serial: string; name: string; location?: string }): Promise<void> {
  if (!options.serial.trim()) throw new CliError('--serial must not be empty', 2);
  if (!options.name.trim()) throw new CliError('--name must not be empty', 2);
  await withDatabase(async ({ db }) => {
    const org = await organizationBySlug(db, options.org);
    let locationId: string | null = null;
    if (options.location !== undefined) {
      const location = await findLocationBySlug(db, org.id, options.location);
      if (!location) throw new CliError(`no location with slug "${options.location}" in ${org.slug}`);
      locationId = location.id;
    }
    if (await findDeviceBySerial(db, org.id, options.serial)) {
      throw new CliError(
        `${org.slug} already has a device with serial "${options.serial}" (rotate its token with: sensorcloud device token rotate)`,
      );
    }
    const created = await createDevice(db, org.id, SYSTEM, { serial: options.serial, name: options.name, location_id: locationId });
    printSecret(
      `created device ${created.device.serial} (id ${created.device.id}) in ${org.slug}; its token, shown only now:`,
      created.token,
      'stderr',
    );
  });
}

export async function deviceTokenRotateCommand(options: { org: string; serial: string }): Promise<void> {
  await withDatabase(async ({ db }) => {
    const org = await organizationBySlug(db, options.org);
    const device = await findDeviceBySerial(db, org.id, options.serial);
    if (!device) throw new CliError(`no device with serial "${options.serial}" in ${org.slug}`);
    const rotated = await rotateDeviceToken(db, undefined, org.id, device.id, SYSTEM);
    if (!rotated) throw new CliError(`no device with serial "${options.serial}" in ${org.slug}`);
    printSecret(
      `rotated the token of device ${device.serial} in ${org.slug}; the old token no longer works. New token, shown only now:`,
      rotated.token,
      'stderr',
    );
  });
}
