import type { Module } from '../module.js';
import { apiKeysSection } from './api-keys.provision.js';
import { registerApiKeyRoutes } from './api-keys.routes.js';
import { apiKeyResolver } from './api-keys.service.js';

/** `sk_live_` API keys: their bearer resolver, /v1/api-keys and the provisioning section. (Table: 0002_oauth.) */
export const apiKeysModule: Module = {
  name: 'api-keys',
  provisioning: [apiKeysSection],
  register(app, services) {
    services.bearer.register(apiKeyResolver(services.db));
    registerApiKeyRoutes(app, services);
  },
};
