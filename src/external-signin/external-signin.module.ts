import type { Module } from '../module.js';
import { serverSecretBox } from '../security/secret-box.js';
import { registerExternalSigninRoutes } from './external-signin.routes.js';
import { identityProvidersSection } from './identity-providers.provision.js';
import { registerIdentityProviderRoutes } from './identity-providers.routes.js';
import * as m0016 from './migrations/0016_identity_providers.js';
import { RelyingParty } from './relying-party.js';

/** How long a request to an identity provider may take (discovery, token, userinfo). */
const PROVIDER_TIMEOUT_SECONDS = 10;

/**
 * Sign-in with an organization's external OpenID Connect providers (Sensorberg's "external OAuth
 * provider"): the providers' table and /v1/identity-providers, their provisioning section, and the
 * sign-in pages, plugged into the login page through `services.oauth.signInOptions`.
 */
export const externalSigninModule: Module = {
  name: 'external-signin',
  migrations: { '0016_identity_providers': m0016 },
  provisioning: [identityProvidersSection],
  async register(app, services) {
    const secrets = serverSecretBox(services.config.env.SECRETS_KEY, services.config.dataDir);
    registerIdentityProviderRoutes(app, services, secrets);
    await registerExternalSigninRoutes(app, services, { secrets, relyingParty: new RelyingParty(PROVIDER_TIMEOUT_SECONDS) });
  },
};
