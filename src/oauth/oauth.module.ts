import type { Module } from '../module.js';
import { registerAuthorizeRoutes } from './authorize/routes.js';
import { clientsSection } from './clients.provision.js';
import * as m0002 from './migrations/0002_oauth.js';
import * as m0018 from './migrations/0018_client_management.js';
import { registerOAuthRoutes } from './oauth.routes.js';

/** The authorization server: token family endpoints, login/consent/device/account pages, clients. */
export const oauthModule: Module = {
  name: 'oauth',
  migrations: { '0002_oauth': m0002, '0018_client_management': m0018 },
  provisioning: [clientsSection],
  async register(app, services) {
    await registerOAuthRoutes(app, services);
    await registerAuthorizeRoutes(app, services);
  },
};
