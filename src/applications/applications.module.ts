import type { Module } from '../module.js';
import { registerApplicationRoutes } from './applications.routes.js';
import { ApplicationService } from './applications.service.js';

/**
 * `/v1/applications`: an organization's OAuth clients, registered, changed, given a new secret and
 * deleted by its admins. No table of its own: clients live in the authorization server's
 * `oauth_clients` (oauth/clients.repo.ts), which also serves the provisioning file and the CLI.
 */
export const applicationsModule: Module = {
  name: 'applications',
  register(app, services) {
    const applications = new ApplicationService(services.db, { bearer: services.bearer, clientAuth: services.oauth.clientAuth });
    registerApplicationRoutes(app, services, applications);
  },
};
