/**
 * Reference: oidc-provider (latest), the certified Node.js OAuth 2.0 / OpenID Connect server, with
 * client_credentials and introspection enabled, its default in-memory adapter and opaque access
 * tokens (no resource indicator is sent, so client credentials tokens stay opaque). Issuer
 * http://127.0.0.1:PORT. Token endpoint /token, introspection /token/introspection.
 */
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const clientId = process.env.OIDC_CLIENT_ID ?? 'bench-client';
const clientSecret = process.env.OIDC_CLIENT_SECRET ?? 'bench-client-secret';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  scopes: ['readings:read', 'devices:read'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: 3600 },
});
// Keep oidc-provider's own request errors out of the timing path and out of the way.
provider.on('server_error', (_ctx, error) => console.error('server_error', error));
const server = provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${port}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close(() => process.exit(0)));
