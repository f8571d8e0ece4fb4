import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/security/passwords.js';
import { Browser } from '../support/browser.js';
import { backends } from '../support/databases.js';
import { specExampleYaml } from '../support/files.js';
import { type OAuthTestServer, basic, passwordToken, postForm, publicClientFlow, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * `/v1/applications` over real HTTP on a provisioned server: who may manage applications, the
 * secret shown once and stored as argon2id, the redirect-URI rules, applications that work with
 * strict client libraries (openid-client, oauth4webapi) through the real login and consent pages,
 * rotation and deletion taking effect on the very next request, tenancy, audit entries and
 * JSON:API.
 */

const JSON_API = 'application/vnd.api+json';
const CALLBACK = 'http://127.0.0.1:9876/app-callback';

const PROVISIONING = specExampleYaml({
  acme: { users: [{ email: 'member@acme.test', password: 'M3mber-pass-acme', role: 'member' }] },
  organizations: [
    {
      slug: 'globex',
      name: 'Globex',
      users: [{ email: 'admin@globex.test', password: 'Adm1n-pass-globex', role: 'admin' }],
      clients: [{ client_id: 'globex-password', client_secret: 'globex-password-secret', grant_types: ['password'], scopes: ['*'] }],
    },
  ],
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  data: any;
}

describe.each(backends)('/v1/applications on $name', (backend) => {
  let server: OAuthTestServer;
  let authServer: oauth.AuthorizationServer;
  let admin: string;
  let viewer: string;
  let member: string;
  let globex: string;
  const insecure = { execute: [client.allowInsecureRequests] };
  const as = () => ({ [oauth.allowInsecureRequests]: true }) as const;
  /** Every secret the API handed out: none may appear in the audit log or a later answer. */
  const secrets: string[] = [];

  async function api(method: string, path: string, token: string, body?: unknown, media = 'application/json'): Promise<Answer> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: media };
    if (body !== undefined) headers['content-type'] = media;
    const res = await server.fetch(path, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, data: text ? JSON.parse(text) : undefined };
  }

  async function create(body: Record<string, unknown>, token = admin): Promise<Record<string, any>> {
    const res = await api('POST', '/v1/applications', token, body);
    expect(res.status, res.text).toBe(201);
    if (res.data.data.client_secret) secrets.push(res.data.data.client_secret);
    return res.data.data;
  }

  const clientCredentials = (clientId: string, secret: string, scope?: string) =>
    postForm(
      server,
      '/oauth/token',
      { grant_type: 'client_credentials', ...(scope && { scope }) },
      { authorization: basic(clientId, secret) },
    );

  async function appToken(clientId: string, secret: string, scope?: string): Promise<string> {
    const res = await clientCredentials(clientId, secret, scope);
    expect(res.status, await res.clone().text()).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  /** openid-client's view of an application registered here (client_secret_basic). */
  const discover = (app: Record<string, any>) =>
    client.discovery(new URL(server.url), app.client_id, app.client_secret, client.ClientSecretBasic(app.client_secret), insecure);

  /** An authorization request with PKCE and state, and the code exchange of its callback. */
  async function authorizationRequest(app: Record<string, any>, scope: string) {
    const config = await discover(app);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const exchange = (callback: URL) =>
      client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    return { config, url, exchange };
  }

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, provisioning: PROVISIONING });
    const issuer = new URL(server.url);
    authServer = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...as() }));
    const token = async (email: string, password: string, clientId = 'acme-password', secret = 'acme-password-secret') =>
      (await passwordToken(server, clientId, secret, email, password, '*')).access_token as string;
    admin = await token('admin@acme.test', 'Adm1n-pass-acme');
    viewer = await token('viewer@acme.test', 'V1ewer-pass-acme');
    member = await token('member@acme.test', 'M3mber-pass-acme');
    globex = await token('admin@globex.test', 'Adm1n-pass-globex', 'globex-password', 'globex-password-secret');
  });
  afterAll(async () => server?.stop());

  it('is for owners and admins: viewers and members are refused (403), reading included', async () => {
    const body = { name: 'Denied', scopes: ['devices:read'], redirect_uris: [CALLBACK] };
    for (const token of [viewer, member]) {
      const created = await api('POST', '/v1/applications', token, body);
      expect(created.status).toBe(403);
      expect(created.headers.get('content-type')).toContain('application/problem+json');
      expect(created.headers.get('www-authenticate')).toContain('insufficient_scope');
      expect((await api('GET', '/v1/applications', token)).status).toBe(403);
    }
    expect((await api('GET', '/v1/applications', admin)).status).toBe(200);
    expect((await api('POST', '/v1/applications', admin, body)).status).toBe(201);
  });

  it('shows a confidential application its secret once; it is stored as an argon2id hash and never shown again', async () => {
    const res = await api('POST', '/v1/applications', admin, {
      name: 'Reporting dashboard',
      redirect_uris: [CALLBACK, 'https://dashboard.example.com/callback'],
      scopes: ['devices:read', 'readings:read', 'offline_access'],
      privacy_policy_url: 'https://dashboard.example.com/privacy',
    });
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const app = res.data.data;
    secrets.push(app.client_secret);
    expect(res.headers.get('location')).toBe(`${server.url}/v1/applications/${app.id}`);
    expect(app).toMatchObject({
      name: 'Reporting dashboard',
      public: false,
      grant_types: ['authorization_code', 'refresh_token'],
      token_format: 'opaque',
      access_token_ttl: 3600,
      refresh_token_ttl: null,
      enabled: true,
      provisioned: false,
      managed_by: null,
      privacy_policy_url: 'https://dashboard.example.com/privacy',
      created_by: { email: 'admin@acme.test' },
    });
    expect(app.client_id).toMatch(/^app_[A-Za-z0-9_-]{22}$/);
    expect(app.client_secret).toMatch(/^sc_cs_[A-Za-z0-9_-]{43}$/);
    expect(res.data.meta).toMatchObject({ client_secret_shown_once: true });

    const shown = await api('GET', `/v1/applications/${app.id}`, admin);
    expect(shown.status).toBe(200);
    expect(shown.data.data.client_id).toBe(app.client_id);
    expect(shown.data.data).not.toHaveProperty('client_secret');
    expect(shown.text).not.toContain(app.client_secret);
    const listed = await api('GET', '/v1/applications?limit=1000', admin);
    expect(listed.data.data.map((a: any) => a.id)).toContain(app.id);
    expect(listed.text).not.toContain(app.client_secret);
    expect(listed.data.data.every((a: any) => !('client_secret' in a))).toBe(true);

    const row = await server.db.selectFrom('oauth_clients').selectAll().where('id', '=', app.id).executeTakeFirstOrThrow();
    expect(row.secret_hash).toMatch(/^\$argon2id\$/);
    expect(row.secret_hash).not.toContain(app.client_secret);
    expect(await verifyPassword(row.secret_hash, app.client_secret)).toBe(true);
  });

  it('takes redirect URIs over https, or http on a loopback host only, and says which one is wrong', async () => {
    const app = await create({
      name: 'Loopback',
      scopes: ['devices:read'],
      redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1:8123/cb', 'http://[::1]:8123/cb', 'http://localhost/cb'],
    });
    expect(app.redirect_uris).toHaveLength(4);
    for (const [uri, message] of [
      ['http://app.example.com/cb', /must use https/],
      ['https://app.example.com/cb#fragment', /fragment/],
      ['com.example.app:/callback', /scheme is not allowed/],
      ['/relative/callback', /not an absolute URI/],
      ['javascript:alert(1)', /scheme is not allowed/],
    ] as const) {
      const res = await api('POST', '/v1/applications', admin, {
        name: 'Bad redirect',
        scopes: ['devices:read'],
        redirect_uris: ['https://ok.example.com/cb', uri],
      });
      expect(res.status, uri).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.data.errors).toEqual([{ pointer: '/body/redirect_uris/1', detail: expect.stringMatching(message) }]);
    }
    const none = await api('POST', '/v1/applications', admin, { name: 'No redirect', scopes: ['devices:read'] });
    expect(none.status).toBe(422);
    expect(none.data.errors[0]).toMatchObject({ pointer: '/body/redirect_uris', detail: expect.stringMatching(/authorization_code/) });
    // Changing them follows the same rules.
    const patched = await api('PATCH', `/v1/applications/${app.id}`, admin, { redirect_uris: ['http://evil.example.com/cb'] });
    expect(patched.status).toBe(422);
    expect(patched.data.errors[0].pointer).toBe('/body/redirect_uris/0');
  });

  it('refuses unknown scopes, aliases, the password grant, secrets for public clients and out-of-range lifetimes', async () => {
    const base = { name: 'Rules', redirect_uris: [CALLBACK] };
    const refused = async (body: Record<string, unknown>, status: number, pointer: string, detail?: RegExp) => {
      const res = await api('POST', '/v1/applications', admin, { ...base, ...body });
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.data.errors?.[0]?.pointer, res.text).toBe(pointer);
      if (detail) expect(res.data.errors[0].detail).toMatch(detail);
    };
    await refused({ scopes: ['devices:read', 'telepathy'] }, 422, '/body/scopes/1', /unknown scope "telepathy"/);
    await refused({ scopes: ['*'] }, 422, '/body/scopes/0', /alias/);
    await refused({ scopes: ['devices:read'], grant_types: ['password'] }, 422, '/body/grant_types/0', /password grant/);
    await refused({ scopes: ['devices:read'], grant_types: ['implicit'] }, 422, '/body/grant_types/0', /unknown grant type/);
    await refused(
      { scopes: ['devices:read'], public: true, grant_types: ['client_credentials'] },
      422,
      '/body/grant_types/0',
      /public client/,
    );
    await refused({ scopes: ['devices:read'], privacy_policy_url: 'http://example.com/privacy' }, 422, '/body/privacy_policy_url', /https/);
    await refused({ scopes: ['devices:read'], access_token_ttl: 10 }, 400, '/body/access_token_ttl');
    await refused({ scopes: ['devices:read'], access_token_ttl: 400 * 86_400 }, 400, '/body/access_token_ttl');
    await refused({ scopes: ['devices:read'], client_secret: 'mine' }, 400, '/body/client_secret');
    // A credential cannot register an application wider than itself.
    const keyRes = await api('POST', '/v1/api-keys', admin, { name: 'apps only', scopes: ['applications:write'] });
    expect(keyRes.status).toBe(201);
    const narrow = await api('POST', '/v1/applications', keyRes.data.data.key, { ...base, scopes: ['devices:read'] });
    expect(narrow.status).toBe(403);
    expect(narrow.data.detail).toMatch(/devices:read/);
    // Nor change or take the secret of a wider one; it may still disable or delete it.
    const wide = await create({ ...base, scopes: ['devices:read'], grant_types: ['client_credentials'], redirect_uris: [] });
    const key = keyRes.data.data.key as string;
    expect((await api('PATCH', `/v1/applications/${wide.id}`, key, { name: 'Taken' })).status).toBe(403);
    expect((await api('POST', `/v1/applications/${wide.id}/rotate-secret`, key)).status).toBe(403);
    expect((await api('PATCH', `/v1/applications/${wide.id}`, key, { enabled: false })).status).toBe(200);
    expect((await api('DELETE', `/v1/applications/${wide.id}`, key)).status).toBe(204);
  });

  it('a confidential application gets tokens by client_credentials (openid-client) that work on /v1', async () => {
    const app = await create({ name: 'Machine', scopes: ['devices:read', 'readings:read'], grant_types: ['client_credentials'] });
    const tokens = await client.clientCredentialsGrant(await discover(app), { scope: 'devices:read' });
    expect(tokens.access_token).toMatch(/^sc_at_/);
    expect(tokens.scope).toBe('devices:read');
    expect((await api('GET', '/v1/devices', tokens.access_token)).status).toBe(200);
    expect((await api('GET', '/v1/users', tokens.access_token)).status).toBe(403);
    const tooMuch = await clientCredentials(app.client_id, app.client_secret, 'users:read');
    expect(((await tooMuch.json()) as { error: string }).error).toBe('invalid_scope');
  });

  it('a confidential application signs people in: authorization code with PKCE through the login and consent pages (openid-client)', async () => {
    const app = await create({
      name: 'Consent app',
      scopes: ['devices:read', 'offline_access'],
      redirect_uris: [CALLBACK],
      privacy_policy_url: 'https://consent.example.com/privacy',
      token_format: 'jwt',
    });
    const { config, url, exchange } = await authorizationRequest(app, 'devices:read offline_access');
    // The consent page names the application and links its privacy policy (SPEC §3).
    const browser = new Browser(server.url);
    await browser.login('/login', 'admin@acme.test', 'Adm1n-pass-acme');
    const consent = await browser.page(url.pathname + url.search);
    expect(consent.html).toContain('Consent app');
    expect(consent.html).toContain('href="https://consent.example.com/privacy"');
    const form = consent.forms.find((f) => f.buttons.some((b) => b.name === 'decision' && b.value === 'allow'));
    const allowed = await browser.submit(form!, {}, { name: 'decision', value: 'allow' });
    const callback = new URL(allowed.headers.get('location') as string);
    expect(callback.origin + callback.pathname).toBe(CALLBACK);
    const tokens = await exchange(callback);
    expect(tokens.access_token.startsWith('eyJ')).toBe(true);
    expect(tokens.refresh_token).toMatch(/^sc_rt_/);
    expect((await api('GET', '/v1/devices', tokens.access_token)).status).toBe(200);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token as string);
    expect(refreshed.access_token.startsWith('eyJ')).toBe(true);
  });

  it('a public application has no secret and must use PKCE (oauth4webapi)', async () => {
    const res = await api('POST', '/v1/applications', admin, {
      name: 'Single-page app',
      public: true,
      scopes: ['readings:read'],
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code'],
    });
    expect(res.status, res.text).toBe(201);
    const app = res.data.data;
    expect(app.public).toBe(true);
    expect(app).not.toHaveProperty('client_secret');
    expect(res.data.meta?.client_secret_shown_once).toBeUndefined();
    const row = await server.db.selectFrom('oauth_clients').select('secret_hash').where('id', '=', app.id).executeTakeFirstOrThrow();
    expect(row.secret_hash).toBeNull();
    expect((await api('POST', `/v1/applications/${app.id}/rotate-secret`, admin)).status).toBe(409);

    // Without PKCE the authorization is refused (back at the redirect URI).
    const browser = new Browser(server.url);
    await browser.login('/login', 'viewer@acme.test', 'V1ewer-pass-acme');
    const withoutPkce = await browser.request(
      `/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: app.client_id, redirect_uri: CALLBACK, scope: 'readings:read' })}`,
    );
    const refusal = new URL(withoutPkce.headers.get('location') as string);
    expect(refusal.searchParams.get('error')).toBe('invalid_request');
    expect(refusal.searchParams.get('error_description')).toMatch(/PKCE/);

    const result = await publicClientFlow(server, authServer, {
      clientId: app.client_id,
      redirectUri: CALLBACK,
      scope: 'readings:read',
      email: 'viewer@acme.test',
      password: 'V1ewer-pass-acme',
    });
    expect(result.access_token).toMatch(/^sc_at_/);
    expect(result.scope).toBe('readings:read');
    // It cannot act as an application by itself.
    const m2m = await postForm(server, '/oauth/token', { grant_type: 'client_credentials', client_id: app.client_id });
    expect(m2m.status).toBeGreaterThanOrEqual(400);
  });

  it('rotating the secret: the new one is shown once, the old one is refused at the very next request', async () => {
    const app = await create({ name: 'Rotating', scopes: ['devices:read'], grant_types: ['client_credentials'] });
    // The old secret has been verified (and remembered by client authentication) before the rotation.
    const before = await appToken(app.client_id, app.client_secret);
    await appToken(app.client_id, app.client_secret);
    const rotated = await api('POST', `/v1/applications/${app.id}/rotate-secret`, admin);
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    const secret = rotated.data.data.client_secret as string;
    secrets.push(secret);
    expect(secret).toMatch(/^sc_cs_/);
    expect(secret).not.toBe(app.client_secret);
    expect(rotated.data.meta).toMatchObject({ client_secret_shown_once: true });

    const old = await clientCredentials(app.client_id, app.client_secret);
    expect(old.status).toBe(401);
    expect(((await old.json()) as { error: string }).error).toBe('invalid_client');
    await appToken(app.client_id, secret);
    const shown = await api('GET', `/v1/applications/${app.id}`, admin);
    expect(shown.text).not.toContain(secret);
    // Tokens issued before the rotation are not revoked by it.
    expect((await api('GET', '/v1/me', before)).status).toBe(200);
  });

  it('deleting an application revokes its tokens at the next request, with its refresh tokens, codes and consents', async () => {
    const m2m = await create({ name: 'Doomed machine', scopes: ['devices:read'], grant_types: ['client_credentials'] });
    const token = await appToken(m2m.client_id, m2m.client_secret);
    expect((await api('GET', '/v1/devices', token)).status).toBe(200);
    expect((await api('DELETE', `/v1/applications/${m2m.id}`, admin)).status).toBe(204);
    const refused = await api('GET', '/v1/devices', token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await clientCredentials(m2m.client_id, m2m.client_secret)).status).toBe(401);
    expect((await api('GET', `/v1/applications/${m2m.id}`, admin)).status).toBe(404);
    expect((await api('DELETE', `/v1/applications/${m2m.id}`, admin)).status).toBe(404);

    // A person's tokens and remembered consent go too.
    const web = await create({ name: 'Doomed web', scopes: ['devices:read', 'offline_access'], redirect_uris: [CALLBACK] });
    const { url, exchange } = await authorizationRequest(web, 'devices:read offline_access');
    const tokens = await exchange(await new Browser(server.url).authorize(url.href, 'admin@acme.test', 'Adm1n-pass-acme'));
    expect((await api('GET', '/v1/devices', tokens.access_token)).status).toBe(200);
    const consents = () => server.db.selectFrom('oauth_consents').select('client_pk').where('client_pk', '=', web.id).execute();
    expect(await consents()).toHaveLength(1);
    expect((await api('DELETE', `/v1/applications/${web.id}`, admin)).status).toBe(204);
    expect((await api('GET', '/v1/devices', tokens.access_token)).status).toBe(401);
    expect(await consents()).toHaveLength(0);
    for (const table of ['oauth_grants', 'oauth_access_tokens', 'oauth_authorization_codes'] as const) {
      const rows = await server.db.selectFrom(table).select('client_pk').where('client_pk', '=', web.id).execute();
      expect(rows, table).toHaveLength(0);
    }
    const refresh = await postForm(
      server,
      '/oauth/token',
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token as string },
      {
        authorization: basic(web.client_id, web.client_secret),
      },
    );
    expect(refresh.status).toBe(401);
  });

  it('updates with PATCH and PUT; disabling refuses the tokens at once and enabling lets the application in again', async () => {
    const app = await create({ name: 'Changing', scopes: ['devices:read'], grant_types: ['client_credentials'] });
    const token = await appToken(app.client_id, app.client_secret);
    const patched = await api('PATCH', `/v1/applications/${app.id}`, admin, {
      name: 'Changed',
      scopes: ['devices:read', 'readings:read'],
      access_token_ttl: 600,
      refresh_token_ttl: 86_400,
      privacy_policy_url: 'https://changed.example.com/privacy',
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.data.data).toMatchObject({
      name: 'Changed',
      scopes: ['devices:read', 'readings:read'],
      access_token_ttl: 600,
      refresh_token_ttl: 86_400,
      privacy_policy_url: 'https://changed.example.com/privacy',
    });
    const put = await api('PUT', `/v1/applications/${app.id}`, admin, { privacy_policy_url: null, token_format: 'jwt' });
    expect(put.status, put.text).toBe(200);
    expect(put.data.data).toMatchObject({ name: 'Changed', privacy_policy_url: null, token_format: 'jwt' });
    const fresh = await clientCredentials(app.client_id, app.client_secret, 'readings:read');
    expect(((await fresh.json()) as { expires_in: number }).expires_in).toBe(600);
    expect((await api('PATCH', `/v1/applications/${app.id}`, admin, { public: true })).status).toBe(400);

    expect((await api('GET', '/v1/devices', token)).status).toBe(200);
    const disabled = await api('PATCH', `/v1/applications/${app.id}`, admin, { enabled: false });
    expect(disabled.data.data.enabled).toBe(false);
    expect((await api('GET', '/v1/devices', token)).status).toBe(401);
    const refused = await clientCredentials(app.client_id, app.client_secret);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error_description: string }).error_description).toMatch(/disabled/);
    expect((await api('GET', '/v1/applications?enabled=false', admin)).data.data.map((a: any) => a.id)).toContain(app.id);
    expect((await api('PATCH', `/v1/applications/${app.id}`, admin, { enabled: true })).data.data.enabled).toBe(true);
    expect((await api('GET', '/v1/devices', await appToken(app.client_id, app.client_secret))).status).toBe(200);
  });

  it('shows provisioned clients, marked, which the provisioning file owns: only enabled and deletion are changed here', async () => {
    const list = await api('GET', '/v1/applications?q=acme-web', admin);
    const web = list.data.data.find((a: any) => a.client_id === 'acme-web');
    expect(web).toMatchObject({ provisioned: true, managed_by: 'provisioning', name: 'Acme Dashboard' });
    const renamed = await api('PATCH', `/v1/applications/${web.id}`, admin, { name: 'Renamed' });
    expect(renamed.status).toBe(409);
    expect(renamed.data.detail).toMatch(/provisioning file/);
    expect((await api('POST', `/v1/applications/${web.id}/rotate-secret`, admin)).status).toBe(409);
    // The same values again change nothing and are accepted (a client PUTting what it read).
    expect((await api('PUT', `/v1/applications/${web.id}`, admin, { name: web.name, scopes: web.scopes })).status).toBe(200);
    expect((await api('PATCH', `/v1/applications/${web.id}`, admin, { enabled: false })).data.data.enabled).toBe(false);
    expect(
      (
        await postForm(
          server,
          '/oauth/token',
          { grant_type: 'client_credentials' },
          { authorization: basic('acme-web', 'acme-web-secret') },
        )
      ).status,
    ).toBe(401);
    expect((await api('PATCH', `/v1/applications/${web.id}`, admin, { enabled: true })).data.data.enabled).toBe(true);
  });

  it('keeps organizations apart: another organization sees, changes and deletes nothing (404)', async () => {
    const app = await create({ name: 'Acme only', scopes: ['devices:read'], grant_types: ['client_credentials'] });
    expect((await api('GET', `/v1/applications/${app.id}`, globex)).status).toBe(404);
    expect((await api('PATCH', `/v1/applications/${app.id}`, globex, { name: 'Stolen' })).status).toBe(404);
    expect((await api('PUT', `/v1/applications/${app.id}`, globex, { enabled: false })).status).toBe(404);
    expect((await api('POST', `/v1/applications/${app.id}/rotate-secret`, globex)).status).toBe(404);
    expect((await api('DELETE', `/v1/applications/${app.id}`, globex)).status).toBe(404);
    const list = await api('GET', '/v1/applications?limit=1000', globex);
    expect(list.data.data.map((a: any) => a.client_id)).toEqual(['globex-password']);
    const still = await api('GET', `/v1/applications/${app.id}`, admin);
    expect(still.data.data).toMatchObject({ name: 'Acme only', enabled: true });
    await appToken(app.client_id, app.client_secret);
  });

  it('pages with cursors and filters', async () => {
    const first = await api('GET', '/v1/applications?limit=2&sort=-created_at', admin);
    expect(first.data.data).toHaveLength(2);
    const next = new URL(first.data.links.next);
    const second = await api('GET', next.pathname + next.search, admin);
    expect(second.status).toBe(200);
    expect(second.data.data[0].id).not.toBe(first.data.data[1].id);
    const publicOnes = await api('GET', '/v1/applications?public=true', admin);
    expect(publicOnes.data.data.length).toBeGreaterThan(0);
    expect(publicOnes.data.data.every((a: any) => a.public)).toBe(true);
  });

  it('speaks JSON:API, secret included once, errors pointing into the document', async () => {
    const res = await api(
      'POST',
      '/v1/applications',
      admin,
      { data: { type: 'applications', attributes: { name: 'JSON:API app', scopes: ['devices:read'], redirect_uris: [CALLBACK] } } },
      JSON_API,
    );
    expect(res.status, res.text).toBe(201);
    expect(res.headers.get('content-type')).toBe(JSON_API);
    expect(res.data.data).toMatchObject({ type: 'applications', attributes: { name: 'JSON:API app' } });
    const secret = res.data.data.attributes.client_secret as string;
    secrets.push(secret);
    expect(secret).toMatch(/^sc_cs_/);
    const shown = await api('GET', `/v1/applications/${res.data.data.id}`, admin, undefined, JSON_API);
    expect(shown.data.data.attributes).not.toHaveProperty('client_secret');
    expect(shown.data.jsonapi).toEqual({ version: '1.1' });
    const bad = await api(
      'POST',
      '/v1/applications',
      admin,
      { data: { type: 'applications', attributes: { name: 'Bad', scopes: ['devices:read'], redirect_uris: ['http://example.com/cb'] } } },
      JSON_API,
    );
    expect(bad.status).toBe(422);
    expect(bad.data.errors[0]).toMatchObject({ status: '422', source: { pointer: '/data/attributes/redirect_uris/0' } });
  });

  it('audits every creation, rotation, change and deletion with the caller and address, never a secret', async () => {
    const app = await create({ name: 'Audited', scopes: ['devices:read'], grant_types: ['client_credentials'] });
    const rotated = await api('POST', `/v1/applications/${app.id}/rotate-secret`, admin);
    secrets.push(rotated.data.data.client_secret);
    await api('PATCH', `/v1/applications/${app.id}`, admin, { name: 'Audited too', enabled: false });
    await api('DELETE', `/v1/applications/${app.id}`, admin);
    const entries = await server.db
      .selectFrom('audit_events')
      .selectAll()
      .where('target_id', '=', app.id)
      .orderBy('at')
      .orderBy('action')
      .execute();
    const adminId = (await server.db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow()).id;
    expect(entries.map((e) => e.action).sort()).toEqual(
      ['application.created', 'application.deleted', 'application.secret_rotated', 'application.updated'].sort(),
    );
    for (const entry of entries) {
      expect(entry).toMatchObject({ actor_kind: 'user', actor_id: adminId, source_address: '127.0.0.1', target_type: 'application' });
      expect(entry.details).toMatchObject({ client_id: app.client_id });
    }
    expect(entries.find((e) => e.action === 'application.updated')?.details).toMatchObject({
      changed: ['name', 'enabled'],
      enabled: false,
    });
    // Not one secret handed out in this suite is anywhere in the audit log.
    const everything = JSON.stringify(await server.db.selectFrom('audit_events').selectAll().execute());
    expect(secrets.length).toBeGreaterThan(5);
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });

  it('is documented in /openapi.json with the scope it needs', async () => {
    const doc = (await (await server.fetch('/openapi.json')).json()) as any;
    expect(Object.keys(doc.paths['/v1/applications']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/applications/{id}']).sort()).toEqual(['delete', 'get', 'patch', 'put']);
    expect(doc.paths['/v1/applications/{id}/rotate-secret'].post.security).toEqual([{ bearer: ['applications:write'] }]);
    expect(doc.paths['/v1/applications'].get.security).toEqual([{ bearer: ['applications:write'] }]);
    expect(doc.paths['/v1/applications'].get.summary).toMatch(/applications:write/);
  });
});
