import type { Module } from '../module.js';
import { calibrationsDueJob } from './calibrations-due.js';
import { registerCalibrationRoutes } from './calibrations.routes.js';
import { registerDeviceTokenResolver } from './device-tokens.js';
import { registerDeviceRoutes } from './devices.routes.js';
import { devicesSection, locationsSection } from './inventory.provision.js';
import { registerLocationRoutes } from './locations.routes.js';
import * as m0004 from './migrations/0004_inventory.js';
import * as m0013 from './migrations/0013_calibration_due_events.js';
import * as m0021 from './migrations/0021_devices_by_serial.js';
import { registerScalingProfileRoutes } from './scaling-profiles.routes.js';
import { registerSensorRoutes } from './sensors.routes.js';

/** Locations, devices (and their `sc_dev_` tokens), sensors, scaling profiles, calibrations (and their calibration.due events). */
export const inventoryModule: Module = {
  name: 'inventory',
  migrations: { '0004_inventory': m0004, '0013_calibration_due_events': m0013, '0021_devices_by_serial': m0021 },
  provisioning: [locationsSection, devicesSection],
  register(app, services) {
    registerDeviceTokenResolver(services.bearer, services.db);
    registerLocationRoutes(app, services);
    registerDeviceRoutes(app, services);
    registerSensorRoutes(app, services);
    registerScalingProfileRoutes(app, services);
    registerCalibrationRoutes(app, services);
    services.jobs.add(calibrationsDueJob(services));
  },
};
