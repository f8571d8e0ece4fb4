import YAML from 'yaml';
import { type SpecExampleAdditions, specExampleYaml } from '../../support/files.js';
import * as oauth from 'oauth4webapi';
import { Browser } from '../../support/browser.js';
import { type TestServer, type TestServerOptions, startTestServer } from '../../support/server.js';

/**
 * A real sensorcloud server on 127.0.0.1 (PUBLIC_URL equal to the bound URL so the issuer is
 * exact), on the embedded database or a throwaway PostgreSQL database, provisioned with the
 * SPEC §7 example plus a few clients the OAuth tests need.
 */

/** Clients beyond the SPEC example (same organization, plus a second one for isolation). */
const EXTRA_CLIENTS = `
acme:
  clients:
    - client_id: acme-jwt
      client_secret: "acme-jwt-secret"
      grant_types: [client_credentials, password, refresh_token]
      scopes: [app, devices:read, readings:read, "*"]
      token_format: jwt
      access_token_ttl: 600
    - client_id: acme-device
      public: true
      grant_types: ["urn:ietf:params:oauth:grant-type:device_code", refresh_token]
      scopes: [devices:read, readings:read, offline_access]
    - client_id: acme-rs
      client_secret: "acme-rs-secret"
      grant_types: [client_credentials]
      scopes: [app]
      resource_server: true
    - client_id: "acme:odd%id"
      client_secret: "s3cr%t+with:colon"
      grant_types: [client_credentials]
      scopes: [devices:read]
    - client_id: acme-other
      client_secret: "acme-other-secret"
      grant_types: [client_credentials, password, refresh_token]
      scopes: [devices:read, readings:read, api_keys:write, "*"]
organizations:
  - slug: globex
    name: Globex
    users:
      - { email: admin@globex.test, password: "Adm1n-pass-globex", role: admin }
    clients:
      - client_id: globex-rs
        client_secret: "globex-rs-secret"
        grant_types: [client_credentials]
        scopes: [app]
        resource_server: true
      - client_id: globex-password
        client_secret: "globex-password-secret"
        grant_types: [password]
        scopes: ["*"]
`;

/**
 * The OAuth suite's provisioning: the SPEC §7 example with EXTRA_CLIENTS, and a suite's own
 * additions (more users and clients of acme, more organizations) after them.
 */
export function provisioningYaml(more: SpecExampleAdditions = {}): string {
  const extra = YAML.parse(EXTRA_CLIENTS) as Required<SpecExampleAdditions> & { acme: { clients: Record<string, unknown>[] } };
  return specExampleYaml({
    acme: {
      users: [...(extra.acme.users ?? []), ...(more.acme?.users ?? [])],
      clients: [...extra.acme.clients, ...(more.acme?.clients ?? [])],
    },
    organizations: [...extra.organizations, ...(more.organizations ?? [])],
  });
}

export type OAuthTestServer = TestServer;

/**
 * A test server with the OAuth suite's provisioning (unless `provisioning` says otherwise) and an
 * exact issuer. `backend` picks its own storage; `databaseUrl` joins another server's database.
 */
export function startOAuthServer(
  options: Pick<TestServerOptions, 'backend' | 'env' | 'provisioning' | 'databaseUrl'> = {},
): Promise<OAuthTestServer> {
  return startTestServer({ ...options, provisioning: options.provisioning ?? provisioningYaml(), exactPublicUrl: true });
}

/** Basic credentials per RFC 6749 §2.3.1 (form-encoded id and secret). */
export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

export function form(params: Record<string, string>): { body: string; headers: Record<string, string> } {
  return { body: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}

export async function postForm(
  server: OAuthTestServer,
  pathname: string,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  const f = form(params);
  return server.fetch(pathname, { method: 'POST', body: f.body, headers: { ...f.headers, ...headers } });
}

export async function passwordToken(
  server: OAuthTestServer,
  clientId = 'acme-password',
  secret = 'acme-password-secret',
  username = 'admin@acme.test',
  password = 'Adm1n-pass-acme',
  scope?: string,
): Promise<Record<string, any>> {
  const res = await postForm(
    server,
    '/oauth/token',
    { grant_type: 'password', username, password, ...(scope && { scope }) },
    { authorization: basic(clientId, secret) },
  );
  if (res.status !== 200) throw new Error(`password grant failed: ${res.status} ${await res.text()}`);
  return res.json() as Promise<Record<string, any>>;
}

export interface PublicClientFlow {
  clientId: string;
  redirectUri: string;
  scope: string;
  email: string;
  password: string;
}

/**
 * A public client's authorization code flow, driven by oauth4webapi (client authentication
 * `none`): PKCE S256, the person signs in and allows on the real pages, the code is exchanged.
 */
export async function publicClientFlow(
  server: OAuthTestServer,
  authServer: oauth.AuthorizationServer,
  flow: PublicClientFlow,
): Promise<oauth.TokenEndpointResponse> {
  const c: oauth.Client = { client_id: flow.clientId, token_endpoint_auth_method: 'none' };
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(authServer.authorization_endpoint as string);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: flow.clientId,
    redirect_uri: flow.redirectUri,
    scope: flow.scope,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  const callback = await new Browser(server.url).authorize(url.href, flow.email, flow.password);
  const params = oauth.validateAuthResponse(authServer, c, callback, oauth.expectNoState);
  const response = await oauth.authorizationCodeGrantRequest(authServer, c, oauth.None(), params, flow.redirectUri, verifier, {
    [oauth.allowInsecureRequests]: true,
  });
  return oauth.processAuthorizationCodeResponse(authServer, c, response);
}
