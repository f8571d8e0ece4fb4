import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisioningSections } from '../../src/modules.js';
import { applyProvisioning } from '../../src/provisioning/provision.js';
import { parseProvisioning } from '../../src/provisioning/load.js';
import { NO_SERVER_KEY, type ProvisioningContext } from '../../src/provisioning/section.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { Browser as FormClient } from '../support/browser.js';
import { backends, useDatabase } from '../support/databases.js';
import { type TestServer, startTestServer } from '../support/server.js';
import { basic, passwordToken, postForm } from '../oauth/support/oauth-server.js';

/**
 * Sign-in with an organization's external OpenID provider, end to end: a real OpenID provider
 * (oidc-provider, its development login and consent pages) configured for Acme through
 * /v1/identity-providers, and headless Chromium walking an authorization request of Acme's client
 * through the provider's button, the provider's login, consent here, and the code exchange.
 */

const IDP_CLIENT = { id: 'sensorcloud', secret: 'idp-client-secret-0123456789' };

interface IdP {
  issuer: string;
  /** Emails the provider says it has not verified. */
  unverified: Set<string>;
  close(): Promise<void>;
}

/** A real OpenID provider on 127.0.0.1: any login is accepted, the login is the account's email. */
async function startIdP(redirectUri: string): Promise<IdP> {
  const unverified = new Set<string>();
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: IDP_CLIENT.id,
        client_secret: IDP_CLIENT.secret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    cookies: { keys: ['external-signin-test-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, email: id, email_verified: !unverified.has(id) }),
    }),
  });
  // oidc-provider ships no type declarations: its Koa app's request listener, typed by hand.
  server.on('request', (provider as unknown as { callback(): http.RequestListener }).callback());
  return {
    issuer,
    unverified,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The id of a resource answered in either representation (plain JSON, or JSON:API's `data`). */
async function idOf(res: Response): Promise<string> {
  const body = (await res.json()) as { id?: string; data?: { id?: string } };
  return (body.data?.id ?? body.id) as string;
}

function provisioning(clientSite: string): string {
  return `
organizations:
  - slug: acme
    name: Acme Labs
    users:
      - { email: admin@acme.test, password: "Adm1n-pass-acme", role: admin }
      - { email: viewer@acme.test, password: "V1ewer-pass-acme", role: viewer }
      - { email: outsider@other.test, password: "0utsider-pass-other", role: viewer }
    clients:
      - client_id: acme-web
        client_secret: "acme-web-secret"
        name: Acme Dashboard
        redirect_uris: ["${clientSite}/callback"]
        grant_types: [authorization_code]
        scopes: [devices:read, readings:read]
      - client_id: acme-password
        client_secret: "acme-password-secret"
        grant_types: [password]
        scopes: ["*"]
  - slug: globex
    name: Globex
    users:
      - { email: admin@globex.test, password: "Adm1n-pass-globex", role: admin }
    clients:
      - client_id: globex-password
        client_secret: "globex-password-secret"
        grant_types: [password]
        scopes: ["*"]
`;
}

let chromiumBrowser: Browser;
beforeAll(async () => {
  chromiumBrowser = await launchChromium();
}, 60_000);
afterAll(async () => chromiumBrowser?.close());

describe.each(backends)('external sign-in on $name', (backend) => {
  let server: TestServer;
  let idp: IdP;
  let clientSite: http.Server;
  let clientUrl: string;
  let arrivals: string[] = [];
  let acmeAdmin: string;
  let acmeViewer: string;
  let globexAdmin: string;
  let providerId: string;
  let globexProviderId: string;

  const api = (path: string, token: string, init: { method?: string; body?: unknown } = {}) =>
    server.fetch(path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined && { 'content-type': 'application/json' }) },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });

  beforeAll(async () => {
    clientSite = http.createServer((request, response) => {
      if (request.url !== '/favicon.ico') arrivals.push(`${clientUrl}${request.url}`);
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title><p>back at the client</p>');
    });
    await new Promise<void>((resolve) => clientSite.listen(0, '127.0.0.1', resolve));
    clientUrl = `http://127.0.0.1:${(clientSite.address() as AddressInfo).port}`;
    server = await startTestServer({ backend: backend.name, provisioning: provisioning(clientUrl), exactPublicUrl: true });
    idp = await startIdP(`${server.url}/login/external/callback`);
    acmeAdmin = (await passwordToken(server, 'acme-password', 'acme-password-secret', 'admin@acme.test', 'Adm1n-pass-acme')).access_token;
    acmeViewer = (await passwordToken(server, 'acme-password', 'acme-password-secret', 'viewer@acme.test', 'V1ewer-pass-acme'))
      .access_token;
    globexAdmin = (await passwordToken(server, 'globex-password', 'globex-password-secret', 'admin@globex.test', 'Adm1n-pass-globex'))
      .access_token;
    // Configured through the API, as an organization's admin would.
    const add = async (token: string, name: string) => {
      const res = await api('/v1/identity-providers', token, {
        method: 'POST',
        body: { name, issuer: idp.issuer, client_id: IDP_CLIENT.id, client_secret: IDP_CLIENT.secret },
      });
      const text = await res.text();
      if (res.status !== 201 || text.includes(IDP_CLIENT.secret)) throw new Error(`adding ${name}: ${res.status} ${text}`);
      return idOf(new Response(text));
    };
    providerId = await add(acmeAdmin, 'Acme SSO');
    globexProviderId = await add(globexAdmin, 'Globex SSO');
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await idp?.close();
    await new Promise((resolve) => clientSite?.close(resolve));
  });

  describe('/v1/identity-providers', () => {
    it('an added provider: the secret is write-only and stored sealed, the change audited without it', async () => {
      const res = await api(`/v1/identity-providers/${providerId}`, acmeViewer);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain(IDP_CLIENT.secret);
      const body = JSON.parse(text) as Record<string, any>;
      const provider = body.data;
      expect(provider).toMatchObject({
        name: 'Acme SSO',
        issuer: idp.issuer,
        client_id: IDP_CLIENT.id,
        allowed_email_domains: [],
        enabled: true,
        redirect_uri: `${server.url}/login/external/callback`,
      });
      expect(provider.client_secret).toBeUndefined();

      const row = await server.db.selectFrom('identity_providers').selectAll().where('id', '=', providerId).executeTakeFirstOrThrow();
      expect(row.client_secret_sealed).not.toContain(IDP_CLIENT.secret);
      expect(row.client_secret_sealed).toMatch(/^v1\./);

      const audit = await server.db.selectFrom('audit_events').selectAll().where('target_id', '=', providerId).execute();
      expect(audit.map((a) => a.action)).toEqual(['identity_provider.created']);
      expect(audit[0]?.actor_kind).toBe('user');
      expect(audit[0]?.actor_id).toEqual(expect.any(String));
      expect(audit[0]?.source_address).toBe('127.0.0.1');
      expect(JSON.stringify(audit)).not.toContain(IDP_CLIENT.secret);

      const listed = await (await api('/v1/identity-providers', acmeViewer)).text();
      expect(listed).toContain('Acme SSO');
      expect(listed).not.toContain(IDP_CLIENT.secret);
    });

    it('a viewer cannot create one (403), an invalid issuer is 422, a duplicate name 409', async () => {
      const body = { name: 'Viewer SSO', issuer: idp.issuer, client_id: 'x', client_secret: 'y' };
      expect((await api('/v1/identity-providers', acmeViewer, { method: 'POST', body })).status).toBe(403);
      const insecure = await api('/v1/identity-providers', acmeAdmin, {
        method: 'POST',
        body: { ...body, issuer: 'http://idp.example.com' },
      });
      expect(insecure.status).toBe(422);
      const twice = await api('/v1/identity-providers', acmeAdmin, { method: 'POST', body: { ...body, name: 'Acme SSO' } });
      expect(twice.status).toBe(409);
    });

    it("another organization's provider is a 404 for every route", async () => {
      const path = `/v1/identity-providers/${globexProviderId}`;
      expect((await api(path, acmeAdmin)).status).toBe(404);
      expect((await api(path, acmeAdmin, { method: 'PATCH', body: { enabled: false } })).status).toBe(404);
      expect((await api(path, acmeAdmin, { method: 'DELETE' })).status).toBe(404);
      const list = (await (await api('/v1/identity-providers', acmeAdmin)).json()) as Record<string, any>;
      expect(JSON.stringify(list)).not.toContain(globexProviderId);
    });

    it('updates and deletes are audited', async () => {
      const res = await api('/v1/identity-providers', acmeAdmin, {
        method: 'POST',
        body: { name: 'Temporary', issuer: 'https://idp.example.com', client_id: 'c', client_secret: 's3cret-temporary' },
      });
      const id = await idOf(res);
      expect(
        (await api(`/v1/identity-providers/${id}`, acmeAdmin, { method: 'PATCH', body: { client_secret: 'n3w-secret' } })).status,
      ).toBe(200);
      expect((await api(`/v1/identity-providers/${id}`, acmeAdmin, { method: 'DELETE' })).status).toBe(204);
      const audit = await server.db.selectFrom('audit_events').selectAll().where('target_id', '=', id).orderBy('at').execute();
      expect(audit.map((a) => a.action)).toEqual(['identity_provider.created', 'identity_provider.updated', 'identity_provider.deleted']);
      expect(audit[1]?.details).toEqual({ changed: ['client_secret'] });
      expect(JSON.stringify(audit)).not.toMatch(/s3cret-temporary|n3w-secret/);
    });
  });

  // ---- the flow in Chromium ----------------------------------------------------------------------

  async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
    arrivals = [];
    const context = await chromiumBrowser.newContext();
    return { context, page: await context.newPage() };
  }

  /** At the provider's development pages: log in as `email`, then continue on its consent page. */
  async function signInAtIdP(page: Page, email: string): Promise<void> {
    await page.waitForURL(`${idp.issuer}/**`);
    await page.fill('input[name="login"]', email);
    await page.fill('input[name="password"]', 'anything');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
    if (page.url().startsWith(idp.issuer)) {
      await Promise.all([page.waitForURL(`${server.url}/**`), page.click('button[type="submit"]')]);
    }
    await page.waitForLoadState('load');
  }

  it('authorization request → provider button → sign-in at the provider → consent → code exchanged', async () => {
    const verifier = 'v'.repeat(50);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const url = new URL('/oauth/authorize', server.url);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'acme-web',
      redirect_uri: `${clientUrl}/callback`,
      scope: 'devices:read readings:read',
      state: 'client-state-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();

    const { context, page } = await newPage();
    let callbackUrl: string | undefined;
    let authorizationUrl: string | undefined;
    page.on('request', (request) => {
      if (request.url().startsWith(`${server.url}/login/external/callback`)) callbackUrl = request.url();
      if (request.url().startsWith(`${idp.issuer}/auth?`)) authorizationUrl = request.url();
    });
    await page.goto(url.toString());
    // Only the client's organization's providers, without the organization's name.
    const buttons = await page.locator('a[data-sign-in-option]').allTextContents();
    expect(buttons).toEqual(['Sign in with Acme SSO']);
    await Promise.all([page.waitForURL(`${idp.issuer}/**`), page.click('a[data-sign-in-option]')]);
    await signInAtIdP(page, 'viewer@acme.test');

    // Back here, signed in: the consent page of the same authorization request.
    expect(page.url()).toBe(url.toString());
    await expect(page.locator('h1').first().textContent()).resolves.toBe('Acme Dashboard');
    await expect(page.locator('.who strong').textContent()).resolves.toBe('viewer@acme.test');
    await Promise.all([page.waitForURL(`${clientUrl}/**`), page.click('button[name="decision"][value="allow"]')]);
    const back = new URL(arrivals.at(-1)!);
    expect(back.searchParams.get('state')).toBe('client-state-1');
    const code = back.searchParams.get('code')!;
    expect(code).toMatch(/^sc_ac_/);

    const token = await postForm(
      server,
      '/oauth/token',
      { grant_type: 'authorization_code', code, redirect_uri: `${clientUrl}/callback`, code_verifier: verifier },
      { authorization: basic('acme-web', 'acme-web-secret') },
    );
    expect(token.status).toBe(200);
    const tokens = (await token.json()) as Record<string, any>;
    expect(tokens.access_token).toMatch(/^sc_at_/);
    expect(tokens.scope).toBe('devices:read readings:read');

    // What went to the provider: PKCE S256, state, nonce, openid email, our callback.
    const authorization = new URL(authorizationUrl!);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('nonce')).toEqual(expect.any(String));
    expect(authorization.searchParams.get('scope')).toBe('openid email');
    expect(authorization.searchParams.get('redirect_uri')).toBe(`${server.url}/login/external/callback`);
    expect(callbackUrl).toBeDefined();
    const callback = new URL(callbackUrl!);
    expect(callback.searchParams.get('iss')).toBe(idp.issuer);

    // The same answer again: its state was used, so it is refused (and signs nobody in).
    const replay = await page.goto(callbackUrl!);
    expect(replay?.status()).toBe(400);
    await expect(page.locator('h1').textContent()).resolves.toBe('Sign-in expired');
    await context.close();
  });

  it('plain /login offers every enabled provider with its organization', async () => {
    const { context, page } = await newPage();
    await page.goto(`${server.url}/login`);
    const buttons = await page.locator('a[data-sign-in-option]').allTextContents();
    expect(buttons).toEqual(['Sign in with Acme SSO (Acme Labs)', 'Sign in with Globex SSO (Globex)']);
    // The sign-in of the invitations page offers them too.
    await page.goto(`${server.url}/account/invitations`);
    expect(await page.locator('a[data-sign-in-option]').allTextContents()).toEqual(buttons);
    await context.close();
  });

  /** Plain /login → Acme's button → the provider as `email`: the page we land on. */
  async function externalSignIn(email: string): Promise<{ status: number | undefined; title: string | null; html: string }> {
    const { context, page } = await newPage();
    let status: number | undefined;
    page.on('response', (response) => {
      if (response.url().startsWith(`${server.url}/login/external/callback`)) status = response.status();
    });
    await page.goto(`${server.url}/login`);
    await Promise.all([page.waitForURL(`${idp.issuer}/**`), page.click('a[data-sign-in-option]:has-text("Acme SSO")')]);
    await signInAtIdP(page, email);
    const result = { status, title: await page.locator('h1').first().textContent(), html: await page.content() };
    await context.close();
    return result;
  }

  it('a verified member lands signed in on their account page', async () => {
    const result = await externalSignIn('viewer@acme.test');
    expect(result.status).toBe(303);
    expect(result.title).toBe('Authorized applications');
  });

  it('an unverified email is refused', async () => {
    idp.unverified.add('viewer@acme.test');
    try {
      const result = await externalSignIn('viewer@acme.test');
      expect(result.status).toBe(403);
      expect(result.title).toBe('Email address not verified');
    } finally {
      idp.unverified.delete('viewer@acme.test');
    }
  });

  it('an email outside allowed_email_domains is refused', async () => {
    const patch = (domains: string[]) =>
      api(`/v1/identity-providers/${providerId}`, acmeAdmin, { method: 'PATCH', body: { allowed_email_domains: domains } });
    expect((await patch(['ACME.test'])).status).toBe(200);
    try {
      const result = await externalSignIn('outsider@other.test');
      expect(result.status).toBe(403);
      expect(result.title).toBe('Email address not allowed');
      expect((await externalSignIn('viewer@acme.test')).status).toBe(303);
    } finally {
      await patch([]);
    }
  });

  it('an email with no membership is refused and nobody is created', async () => {
    const users = async () => (await server.db.selectFrom('users').select('email').execute()).length;
    const before = await users();
    for (const email of ['stranger@acme.test', 'admin@globex.test']) {
      const result = await externalSignIn(email);
      expect(result.status).toBe(403);
      expect(result.title).toBe('No account for this address');
      expect(result.html).toContain('must invite you');
    }
    expect(await users()).toBe(before);
    expect(await server.db.selectFrom('users').select('id').where('email', '=', 'stranger@acme.test').executeTakeFirst()).toBeUndefined();
  });

  // ---- the callback refusing without Chromium ----------------------------------------------------

  /** Starts a sign-in with the form client: the state the provider was sent. */
  async function started(client: FormClient): Promise<string> {
    await client.request('/login');
    const res = await client.request(`/login/external/${providerId}?return_to=${encodeURIComponent('/account/authorized-applications')}`);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin).toBe(idp.issuer);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('scope')).toBe('openid email');
    expect(location.searchParams.get('nonce')).toEqual(expect.any(String));
    expect(location.searchParams.get('redirect_uri')).toBe(`${server.url}/login/external/callback`);
    return location.searchParams.get('state')!;
  }

  it('a wrong iss is refused (RFC 9207), and the state is spent by it', async () => {
    const client = new FormClient(server.url);
    const state = await started(client);
    const wrong = await client.request(
      `/login/external/callback?code=abc&state=${state}&iss=${encodeURIComponent('https://evil.example')}`,
    );
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('content-type')).toMatch(/text\/html/);
    expect(await wrong.text()).toContain('did not come from Acme SSO');
    const again = await client.request(`/login/external/callback?code=abc&state=${state}&iss=${encodeURIComponent(idp.issuer)}`);
    expect(again.status).toBe(400);
  });

  it('an unknown state, or a state from another browser, is refused', async () => {
    const client = new FormClient(server.url);
    expect((await client.request('/login/external/callback?code=abc&state=unknown')).status).toBe(400);
    expect((await client.request('/login/external/callback')).status).toBe(400);
    const state = await started(client);
    const other = new FormClient(server.url);
    await other.request('/login');
    const res = await other.request(`/login/external/callback?code=abc&state=${state}&iss=${encodeURIComponent(idp.issuer)}`);
    expect(res.status).toBe(400);
  });

  it('an unknown or disabled provider is a 404 page; a provider that cannot be reached is a 502 page', async () => {
    const client = new FormClient(server.url);
    expect((await client.request('/login/external/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await client.request('/login/external/not-a-uuid')).status).toBe(404);
    const res = await api('/v1/identity-providers', acmeAdmin, {
      method: 'POST',
      body: { name: 'Down', issuer: 'http://127.0.0.1:9', client_id: 'c', client_secret: 's' },
    });
    const id = await idOf(res);
    const down = await client.request(`/login/external/${id}`);
    expect(down.status).toBe(502);
    expect(await down.text()).toContain('Down is not reachable');
    await api(`/v1/identity-providers/${id}`, acmeAdmin, { method: 'PATCH', body: { enabled: false } });
    expect((await client.request(`/login/external/${id}`)).status).toBe(404);
  });

  it("a provider of another organization cannot sign in for this organization's application", async () => {
    const client = new FormClient(server.url);
    await client.request('/login');
    const returnTo = `/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'acme-web', redirect_uri: `${clientUrl}/callback` })}`;
    const res = await client.request(`/login/external/${globexProviderId}?return_to=${encodeURIComponent(returnTo)}`);
    expect(res.status).toBe(400);
  });
});

describe.each(backends)('identity_providers provisioning on $name', (backend) => {
  const database = useDatabase(backend);
  const box = new SecretBox(Buffer.alloc(32, 7));
  const context: ProvisioningContext = { secrets: () => box };
  const file = (secret: string) =>
    parseProvisioning(
      `
organizations:
  - slug: acme
    name: Acme Labs
    identity_providers:
      - name: Acme SSO
        issuer: https://login.acme.test
        client_id: sensorcloud
        client_secret: "${secret}"
        allowed_email_domains: [Acme.test]
`,
      'idp.yaml',
    );

  it('seals the secret, and applying the same file again writes nothing', async () => {
    await applyProvisioning(database.db, file('first-secret'), provisioningSections(), 'idp.yaml', context);
    const first = await database.db.selectFrom('identity_providers').selectAll().executeTakeFirstOrThrow();
    expect(first).toMatchObject({
      name: 'Acme SSO',
      issuer: 'https://login.acme.test',
      allowed_email_domains: ['acme.test'],
      enabled: true,
    });
    expect(first.client_secret_sealed).not.toContain('first-secret');
    expect(box.open(first.client_secret_sealed, first.id)).toBe('first-secret');

    await applyProvisioning(database.db, file('first-secret'), provisioningSections(), 'idp.yaml', context);
    const again = await database.db.selectFrom('identity_providers').selectAll().executeTakeFirstOrThrow();
    expect(again).toEqual(first);

    await applyProvisioning(database.db, file('second-secret'), provisioningSections(), 'idp.yaml', context);
    const changed = await database.db.selectFrom('identity_providers').selectAll().execute();
    expect(changed).toHaveLength(1);
    expect(box.open(changed[0]!.client_secret_sealed, first.id)).toBe('second-secret');
  });

  it('refuses an insecure issuer, and needs the server key', async () => {
    const insecure = () =>
      parseProvisioning(
        'organizations:\n  - slug: x\n    name: X\n    identity_providers:\n      - { name: a, issuer: "http://idp.example.com", client_id: c, client_secret: s }\n',
        'bad.yaml',
      );
    expect(insecure).toThrow(/https/);
    await expect(applyProvisioning(database.db, file('x'), provisioningSections(), 'idp.yaml', NO_SERVER_KEY)).rejects.toThrow(
      /server key/,
    );
  });
});
