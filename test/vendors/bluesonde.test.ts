import { createHash, randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, type Form } from '../support/browser.js';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, passwordToken, postForm, provisioningYaml, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * Bluesonde's "Access & Authentication" document (seeds/002) replayed against the SPEC §7
 * example, host and credentials substituted:
 *
 * - API keys: created by an Organization Admin (sensorcloud's Developer Settings are
 *   `POST /v1/api-keys`; the CLI's `api-key create` is test/oauth/cli.test.ts), shown once, used as
 *   `Authorization: Bearer sk_live_…`; members below admin cannot create one.
 * - OAuth2 authorization code: `https://auth.bluesonde.io/oauth2/auth` with the documented query
 *   parameters (response_type, client_id, redirect_uri, scope, state), the login and the consent
 *   page (application name, scopes, privacy policy URL when given), the state round trip, then
 *   `/oauth2/token` with grant_type, code and redirect_uri as query parameters, the form content
 *   type and HTTP Basic; also driven by a client library, as the document recommends.
 * - `offline_access` for refresh tokens; "end users need a role that has every scope listed";
 *   the PKCE option's secret-less flow for a public client.
 * - The errors: a redirect URI not registered, a wrong secret, a reused code, a wrong redirect
 *   URI at the exchange.
 *
 * Clients (SPEC §7 and below): acme-web (confidential, "Acme Dashboard", privacy policy URL, may
 * refresh), acme-spa (public, the PKCE option) and acme-partner (confidential, no privacy policy,
 * not set to refresh, asks for a write scope too).
 */

const WEB = { id: 'acme-web', secret: 'acme-web-secret', redirect: 'http://127.0.0.1:9876/callback' };
const SPA = { id: 'acme-spa', redirect: 'http://127.0.0.1:9876/spa' };
const PARTNER = { id: 'acme-partner', secret: 'acme-partner-secret', redirect: 'http://127.0.0.1:9876/partner' };
const ADMIN = { email: 'admin@acme.test', password: 'Adm1n-pass-acme' };
const VIEWER = { email: 'viewer@acme.test', password: 'V1ewer-pass-acme' };
const MEMBER = { email: 'member@acme.test', password: 'M3mber-pass-acme' };
const CI_KEY = 'sk_live_acmeci0000000000000000000000';

const ADDITIONS = {
  acme: {
    users: [{ email: MEMBER.email, password: MEMBER.password, role: 'member' }],
    clients: [
      {
        client_id: PARTNER.id,
        client_secret: PARTNER.secret,
        name: 'Partner Analytics',
        redirect_uris: [PARTNER.redirect],
        grant_types: ['authorization_code'],
        scopes: ['devices:read', 'devices:write', 'readings:read', 'offline_access'],
      },
    ],
  },
};

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

describe.each(backends)('Bluesonde profile ($name)', (backend) => {
  let server: OAuthTestServer;
  let admin: string;

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, provisioning: provisioningYaml(ADDITIONS) });
    admin = (await passwordToken(server)).access_token;
  });
  afterAll(async () => server?.stop());

  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any });
  const get = (path: string, credential: string) => server.fetch(path, { headers: { authorization: `Bearer ${credential}` } });
  const authUrl = (params: Record<string, string>) => `/oauth2/auth?${new URLSearchParams(params)}`;
  /** The document's request: query parameters, form content type, HTTP Basic. */
  const exchange = (query: Record<string, string>, authorization?: string) =>
    server.fetch(`/oauth2/token?${new URLSearchParams(query)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization && { authorization }) },
    });
  /** A user walking an authorization request: signs in, allows; the redirect back to the client. */
  const codeFor = (params: Record<string, string>, user = ADMIN) =>
    new Browser(server.url).authorize(`${server.url}${authUrl(params)}`, user.email, user.password);
  const consentForm = (forms: Form[]) => forms.find((f) => f.buttons.some((b) => b.name === 'decision'));
  const expectOAuthError = async (response: Response, status: number, error: string) => {
    const answer = await json(response);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ error, error_description: expect.any(String) });
    return answer;
  };

  describe('API keys', () => {
    it('an Organization Admin creates one; it is shown once; Authorization: Bearer sk_live_… reads the account', async () => {
      const created = await json(
        await server.fetch('/v1/api-keys', {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'bluesonde-export', scopes: ['devices:read', 'readings:read'] }),
        }),
      );
      expect(created.status).toBe(201);
      expect(created.headers.get('cache-control')).toBe('no-store');
      const key: string = created.body.data.key;
      expect(key).toMatch(/^sk_live_[A-Za-z0-9_-]{24,}$/);
      expect(created.body.data).toMatchObject({ name: 'bluesonde-export', prefix: key.slice(0, 12), created_by: { email: ADMIN.email } });
      // The single opportunity: never shown again, in the list or alone.
      const shown = await json(await get(`/v1/api-keys/${created.body.data.id}`, admin));
      expect(shown.status).toBe(200);
      expect(shown.body.data.key).toBeUndefined();
      const listed = await json(await get('/v1/api-keys', admin));
      expect(JSON.stringify(listed.body)).not.toContain(key);

      // Used as a Bearer token: the creator's account, within the key's scopes.
      for (const credential of [key, CI_KEY]) {
        const devices = await json(await get('/v1/devices', credential));
        expect(devices.status).toBe(200);
        expect(devices.body.data.map((d: { serial: string }) => d.serial)).toContain('ACME-0001');
        const me = await json(await get('/v1/me', credential));
        expect(me.body.data).toMatchObject({ kind: 'api_key', email: ADMIN.email, scopes: ['devices:read', 'readings:read'] });
        const info = await json(await get('/oauth/token/info', credential));
        expect(info.body.scope.sort()).toEqual(['devices:read', 'readings:read']);
        const beyond = await get('/v1/api-keys', credential);
        expect(beyond.status).toBe(403);
        expect(beyond.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
      }

      // A revoked key, or one that is not a key, is refused.
      expect(
        (await server.fetch(`/v1/api-keys/${created.body.data.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } }))
          .status,
      ).toBe(204);
      for (const credential of [key, 'sk_live_abcxyz0000000000000000000789']) {
        const refused = await get('/v1/devices', credential);
        expect(refused.status).toBe(401);
        expect(refused.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
      }
    });

    it('creating one needs the Organization Admin role at minimum: a member, a viewer or an application cannot', async () => {
      const body = JSON.stringify({ name: 'not-allowed', scopes: ['devices:read'] });
      const attempt = (credential: string) =>
        server.fetch('/v1/api-keys', {
          method: 'POST',
          headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
          body,
        });
      for (const user of [MEMBER, VIEWER]) {
        const token = (await passwordToken(server, 'acme-password', 'acme-password-secret', user.email, user.password)).access_token;
        const refused = await attempt(token);
        expect(refused.status, user.email).toBe(403);
      }
      const app = await json(
        await postForm(
          server,
          '/oauth/token',
          { grant_type: 'client_credentials', scope: 'app' },
          { authorization: basic('acme-m2m', 'acme-m2m-secret') },
        ),
      );
      expect((await attempt(app.body.access_token)).status).toBe(403);
    });

    it('the interactive documentation takes the key as a Bearer credential', async () => {
      const openapi = await json(await server.fetch('/openapi.json'));
      expect(openapi.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(openapi.body.components.securitySchemes.bearer.description).toContain('sk_live_');
      expect((await server.fetch('/docs/')).status).toBe(200);
    });
  });

  describe('OAuth2 authorization code', () => {
    it('the documented flow: /oauth2/auth with its query parameters, login and consent, state back; /oauth2/token with query parameters and HTTP Basic', async () => {
      const browser = new Browser(server.url);
      const start = authUrl({
        response_type: 'code',
        client_id: WEB.id,
        redirect_uri: WEB.redirect,
        scope: 'devices:read offline_access',
        state: 'bluesonde-state-1',
      });
      const login = await browser.page(start);
      expect(login.response.status).toBe(200);
      expect(login.html).toContain('Acme Dashboard');
      const signedIn = await browser.login(start, ADMIN.email, ADMIN.password);
      expect(signedIn.status).toBe(303);

      // The consent page: the application name, each scope, the privacy policy URL.
      const back = new URL(signedIn.headers.get('location') as string, server.url);
      expect(back.pathname).toBe('/oauth2/auth');
      const consent = await browser.page(back.pathname + back.search);
      expect(consent.response.status).toBe(200);
      expect(consent.html).toContain('<h1>Acme Dashboard</h1>');
      expect(consent.html).toMatch(/data-scope="devices:read"/);
      expect(consent.html).toMatch(/data-scope="offline_access"/);
      expect(consent.html).not.toMatch(/data-scope="alarms:read"/);
      expect(consent.html).toMatch(/<a href="https:\/\/acme.test\/privacy"[^>]*id="privacy-policy"/);
      const form = consentForm(consent.forms);
      expect(form?.action).toBe('/oauth2/auth');
      const allowed = await browser.submit(form!, {}, { name: 'decision', value: 'allow' });
      expect(allowed.status).toBe(303);
      const callback = new URL(allowed.headers.get('location') as string);
      expect(callback.origin + callback.pathname).toBe(WEB.redirect);
      expect(callback.searchParams.get('state')).toBe('bluesonde-state-1');
      expect(callback.searchParams.get('iss')).toBe(server.url);

      // The exchange exactly as documented: no body, no PKCE (a confidential client).
      const answer = await json(
        await exchange(
          { grant_type: 'authorization_code', code: callback.searchParams.get('code') as string, redirect_uri: WEB.redirect },
          basic(WEB.id, WEB.secret),
        ),
      );
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.body).toEqual({
        access_token: expect.stringMatching(/^sc_at_/),
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: expect.stringMatching(/^sc_rt_/),
        scope: 'devices:read offline_access',
        created_at: expect.any(Number),
      });
      // The access token is a Bearer credential for the consenting user's data, within the consent.
      const me = await json(await get('/v1/me', answer.body.access_token));
      expect(me.body.data).toMatchObject({ kind: 'user_token', email: ADMIN.email, scopes: ['devices:read', 'offline_access'] });
      expect((await get('/v1/devices', answer.body.access_token)).status).toBe(200);
      expect((await get('/v1/alarms', answer.body.access_token)).status).toBe(403);
      // offline_access: the refresh token keeps access without the user, at the same endpoint.
      const refreshed = await json(
        await exchange({ grant_type: 'refresh_token', refresh_token: answer.body.refresh_token }, basic(WEB.id, WEB.secret)),
      );
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.refresh_token).not.toBe(answer.body.refresh_token);
      expect((await get('/v1/devices', refreshed.body.access_token)).status).toBe(200);
    });

    it('the same flow with a client library (openid-client) at the /oauth2 endpoints, state checked', async () => {
      const config = new client.Configuration(
        { issuer: server.url, authorization_endpoint: `${server.url}/oauth2/auth`, token_endpoint: `${server.url}/oauth2/token` },
        WEB.id,
        WEB.secret,
        client.ClientSecretBasic(WEB.secret),
      );
      client.allowInsecureRequests(config);
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, { redirect_uri: WEB.redirect, scope: 'devices:read readings:read', state });
      expect(url.pathname).toBe('/oauth2/auth');
      const callback = await new Browser(server.url).authorize(url.href, ADMIN.email, ADMIN.password);
      const tokens = await client.authorizationCodeGrant(config, callback, { expectedState: state });
      expect(tokens.scope).toBe('devices:read readings:read');
      expect((await get('/v1/readings?latest=true', tokens.access_token)).status).toBe(200);
      // A callback carrying another state is refused by the client (the CSRF check the state is for).
      const other = await new Browser(server.url).authorize(
        client.buildAuthorizationUrl(config, { redirect_uri: WEB.redirect, scope: 'devices:read', state: 'forged' }).href,
        ADMIN.email,
        ADMIN.password,
      );
      await expect(client.authorizationCodeGrant(config, other, { expectedState: state })).rejects.toMatchObject({
        code: 'OAUTH_INVALID_RESPONSE',
        cause: { message: 'unexpected "state" response parameter value' },
      });
    });

    it('offline_access gives a refresh token: without it, a client not set to refresh gets none', async () => {
      const flow = async (scope: string) => {
        const callback = await codeFor({
          response_type: 'code',
          client_id: PARTNER.id,
          redirect_uri: PARTNER.redirect,
          scope,
          state: scope,
        });
        expect(callback.searchParams.get('state')).toBe(scope);
        const answer = await json(
          await exchange(
            { grant_type: 'authorization_code', code: callback.searchParams.get('code') as string, redirect_uri: PARTNER.redirect },
            basic(PARTNER.id, PARTNER.secret),
          ),
        );
        expect(answer.status).toBe(200);
        return answer.body;
      };
      const online = await flow('devices:read');
      expect(online.refresh_token).toBeUndefined();
      const offline = await flow('devices:read offline_access');
      expect(offline.refresh_token).toMatch(/^sc_rt_/);
      const refreshed = await json(
        await exchange({ grant_type: 'refresh_token', refresh_token: offline.refresh_token }, basic(PARTNER.id, PARTNER.secret)),
      );
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.scope).toBe('devices:read offline_access');
    });

    it('end users need a role that has every scope asked for: a viewer cannot consent to a write scope', async () => {
      const browser = new Browser(server.url);
      let signedIn = false;
      const consentPage = async (params: Record<string, string>) => {
        const path = authUrl(params);
        if (!signedIn) expect((await browser.login(path, VIEWER.email, VIEWER.password)).status).toBe(303);
        signedIn = true;
        return browser.page(path);
      };
      // Asking for devices:write (or for the application's whole list, by leaving scope out).
      for (const scope of ['devices:read devices:write', undefined]) {
        const params = {
          response_type: 'code',
          client_id: PARTNER.id,
          redirect_uri: PARTNER.redirect,
          state: 'role-check',
          ...(scope && { scope }),
        };
        const page = await consentPage(params);
        expect(page.response.status).toBe(200);
        expect(page.html).toContain('Partner Analytics');
        expect(page.html).toMatch(/does not include <code>devices:write<\/code>/);
        expect(page.html).toMatch(/<li class="missing" data-scope="devices:write">/);
        // No privacy policy URL was given: the page says so.
        expect(page.html).toMatch(/id="privacy-policy">none provided/);
        const form = consentForm(page.forms)!;
        expect(form.buttons.map((b) => b.value)).toEqual(['deny']);
        // Allowing anyway (a forged button) is refused: the client hears access_denied, with its state.
        const forced = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
        const callback = new URL(forced.headers.get('location') as string);
        expect(callback.searchParams.get('error')).toBe('access_denied');
        expect(callback.searchParams.get('state')).toBe('role-check');
        expect(callback.searchParams.get('code')).toBeNull();
      }
      // The admin's role holds every scope: the same request is approved.
      const approved = await codeFor({
        response_type: 'code',
        client_id: PARTNER.id,
        redirect_uri: PARTNER.redirect,
        scope: 'devices:read devices:write',
      });
      expect(approved.searchParams.get('code')).toBeTruthy();
      // The viewer can approve what the viewer's role holds (SPEC §3: every requested scope).
      const readOnly = await codeFor(
        { response_type: 'code', client_id: PARTNER.id, redirect_uri: PARTNER.redirect, scope: 'devices:read' },
        VIEWER,
      );
      expect(readOnly.searchParams.get('code')).toBeTruthy();
    });

    it("the PKCE option: a public client's secret-less flow at /oauth2/auth and /oauth2/token", async () => {
      const { verifier, challenge } = pkce();
      const params = { response_type: 'code', client_id: SPA.id, redirect_uri: SPA.redirect, scope: 'readings:read', state: 'spa-state' };
      const callback = await codeFor({ ...params, code_challenge: challenge, code_challenge_method: 'S256' }, VIEWER);
      expect(callback.searchParams.get('state')).toBe('spa-state');
      const answer = await json(
        await exchange({
          grant_type: 'authorization_code',
          code: callback.searchParams.get('code') as string,
          redirect_uri: SPA.redirect,
          client_id: SPA.id,
          code_verifier: verifier,
        }),
      );
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ token_type: 'Bearer', scope: 'readings:read', access_token: expect.stringMatching(/^sc_at_/) });
      expect(answer.body.refresh_token).toBeUndefined();
      expect((await get('/v1/readings?latest=true', answer.body.access_token)).status).toBe(200);

      // Without PKCE the public client is sent back with invalid_request; a wrong verifier spends the code.
      const withoutPkce = await new Browser(server.url).request(authUrl(params));
      const refused = new URL(withoutPkce.headers.get('location') as string);
      expect(refused.searchParams.get('error')).toBe('invalid_request');
      expect(refused.searchParams.get('state')).toBe('spa-state');
      const second = await codeFor({ ...params, code_challenge: challenge, code_challenge_method: 'S256' }, VIEWER);
      const code = second.searchParams.get('code') as string;
      await expectOAuthError(
        await exchange({
          grant_type: 'authorization_code',
          code,
          redirect_uri: SPA.redirect,
          client_id: SPA.id,
          code_verifier: pkce().verifier,
        }),
        400,
        'invalid_grant',
      );
      await expectOAuthError(
        await exchange({ grant_type: 'authorization_code', code, redirect_uri: SPA.redirect, client_id: SPA.id, code_verifier: verifier }),
        400,
        'invalid_grant',
      );
      // A public client has no secret to send.
      await expectOAuthError(
        await exchange({ grant_type: 'authorization_code', code: 'x', redirect_uri: SPA.redirect }, basic(SPA.id, 'a-secret')),
        401,
        'invalid_client',
      );
    });

    it('errors: a redirect URI not registered, a wrong secret, a reused code, a wrong redirect URI at the exchange', async () => {
      const params = { response_type: 'code', client_id: WEB.id, redirect_uri: WEB.redirect, scope: 'devices:read', state: 'err-state' };
      // An unregistered redirect URI is never redirected to: an error page.
      const unregistered = await new Browser(server.url).request(authUrl({ ...params, redirect_uri: 'http://127.0.0.1:9876/elsewhere' }));
      expect(unregistered.status).toBe(400);
      expect(unregistered.headers.get('location')).toBeNull();
      expect(unregistered.headers.get('content-type')).toMatch(/^text\/html/);
      // Other problems of the request go back to the client, with its state.
      for (const [change, error] of [
        [{ response_type: 'token' }, 'unsupported_response_type'],
        [{ scope: 'devices:read telepathy' }, 'invalid_scope'],
        [{ scope: 'users:write' }, 'invalid_scope'],
      ] as const) {
        const response = await new Browser(server.url).request(authUrl({ ...params, ...change }));
        const location = new URL(response.headers.get('location') as string);
        expect(location.origin + location.pathname).toBe(WEB.redirect);
        expect(location.searchParams.get('error')).toBe(error);
        expect(location.searchParams.get('state')).toBe('err-state');
      }

      const first = (await codeFor(params)).searchParams.get('code') as string;
      const query = { grant_type: 'authorization_code', code: first, redirect_uri: WEB.redirect };
      // A wrong secret (or none, or the document's header shorthand sent literally instead of as
      // base64 per RFC 7617) fails client authentication, and leaves the code unspent.
      for (const authorization of [basic(WEB.id, 'wrong-secret'), undefined, `Basic ${WEB.id}:${WEB.secret}`]) {
        const failed = await expectOAuthError(await exchange(query, authorization), 401, 'invalid_client');
        expect(failed.headers.get('www-authenticate')).toMatch(/^Basic /);
      }
      const tokens = await json(await exchange(query, basic(WEB.id, WEB.secret)));
      expect(tokens.status).toBe(200);
      expect((await get('/v1/devices', tokens.body.access_token)).status).toBe(200);
      // Reused: refused, and what the code issued is revoked.
      await expectOAuthError(await exchange(query, basic(WEB.id, WEB.secret)), 400, 'invalid_grant');
      expect((await get('/v1/devices', tokens.body.access_token)).status).toBe(401);
      expect(
        (await exchange({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token }, basic(WEB.id, WEB.secret))).status,
      ).toBe(400);

      // The exchange must name the redirect URI the code was sent to.
      const second = (await codeFor(params)).searchParams.get('code') as string;
      await expectOAuthError(
        await exchange(
          { grant_type: 'authorization_code', code: second, redirect_uri: 'http://127.0.0.1:9876/elsewhere' },
          basic(WEB.id, WEB.secret),
        ),
        400,
        'invalid_grant',
      );
      // A code of one client is nobody else's.
      const third = (await codeFor(params)).searchParams.get('code') as string;
      await expectOAuthError(
        await exchange({ grant_type: 'authorization_code', code: third, redirect_uri: WEB.redirect }, basic(PARTNER.id, PARTNER.secret)),
        400,
        'invalid_grant',
      );
      // A user who denies: access_denied, with the state.
      const denied = await new Browser(server.url).authorize(
        `${server.url}${authUrl({ ...params, prompt: 'consent' })}`,
        ADMIN.email,
        ADMIN.password,
        'deny',
      );
      expect(denied.searchParams.get('error')).toBe('access_denied');
      expect(denied.searchParams.get('state')).toBe('err-state');
    });
  });
});
