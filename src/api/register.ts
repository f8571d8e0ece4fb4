import { registerCalibrationRoutes } from '../inventory/calibrations.routes.js';
import { registerDeviceTokenResolver } from '../inventory/device-tokens.js';
import { registerDeviceRoutes } from '../inventory/devices.routes.js';
import { registerLocationRoutes } from '../inventory/locations.routes.js';
import { registerScalingProfileRoutes } from '../inventory/scaling-profiles.routes.js';
import { registerSensorRoutes } from '../inventory/sensors.routes.js';
import type { App } from '../server/app.js';
import type { AppServices } from '../server/context.js';
import { registerGroupRoutes } from './groups.routes.js';
import { registerInvitationRoutes } from './invitations.routes.js';
import { registerMeRoutes } from './me.routes.js';
import { installRepresentation } from './representation.js';
import { registerUserRoutes } from './users.routes.js';

/**
 * The resource API of the inventory and the people of an organization, mounted with one line in
 * buildApp: the representation checks for every /v1 route (406/415), the device-token resolver,
 * and the routes.
 */
export async function registerInventoryRoutes(app: App, services: AppServices): Promise<void> {
  installRepresentation(app);
  registerDeviceTokenResolver(services.bearer, services.db);
  registerMeRoutes(app, services);
  registerUserRoutes(app, services);
  registerInvitationRoutes(app, services);
  registerGroupRoutes(app, services);
  registerLocationRoutes(app, services);
  registerDeviceRoutes(app, services);
  registerSensorRoutes(app, services);
  registerScalingProfileRoutes(app, services);
  registerCalibrationRoutes(app, services);
}
