import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as oauth from 'oauth4webapi';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PagesServer, SPA, WEB, startPagesServer } from './support.js';

/**
 * The authorization-code + PKCE flow in a real headless Chromium: the login form filled and the
 * Allow button clicked like a person would, then the code exchanged at the token endpoint with
 * oauth4webapi (which validates the authorization response, `iss` and `state` included, strictly).
 * Set SCREENSHOTS=dir to keep screenshots of the pages.
 */

const SHOTS = process.env.SCREENSHOTS;

let server: PagesServer;
let browser: Browser;
/** The clients' side: the registered redirect URIs are on 127.0.0.1:9876; this records each arrival. */
let clientSite: http.Server;
let arrivals: string[] = [];
beforeAll(async () => {
  clientSite = http.createServer((request, response) => {
    if (request.url?.startsWith('/frame')) {
      response.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><iframe id="f" src="${server.url}/login"></iframe>`);
      return;
    }
    if (request.url !== '/favicon.ico') arrivals.push(`http://127.0.0.1:9876${request.url}`);
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>client</title><p>back at the client</p>');
  });
  await new Promise<void>((resolve, reject) => {
    clientSite.once('error', reject);
    clientSite.listen(9876, '127.0.0.1', () => resolve());
  });
  server = await startPagesServer();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((resolve) => clientSite?.close(resolve));
});

async function shot(page: Page, name: string) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function clientContext(): Promise<{ context: BrowserContext; arrivals: string[] }> {
  arrivals = [];
  const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
  return {
    context,
    get arrivals() {
      return arrivals;
    },
  };
}

function authorizationServer(): oauth.AuthorizationServer {
  return {
    issuer: server.url,
    authorization_endpoint: `${server.url}/oauth/authorize`,
    token_endpoint: `${server.url}/oauth/token`,
    authorization_response_iss_parameter_supported: true,
  };
}

describe('authorization code + PKCE in Chromium', () => {
  it('confidential client: login, consent (allow), code exchanged for tokens with client_secret_basic', async () => {
    const as = authorizationServer();
    const client: oauth.Client = { client_id: WEB.clientId };
    const verifier = oauth.generateRandomCodeVerifier();
    const challenge = await oauth.calculatePKCECodeChallenge(verifier);
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: WEB.clientId,
      redirect_uri: WEB.redirectUri,
      scope: 'devices:read readings:read offline_access',
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();

    const { context, arrivals } = await clientContext();
    const page = await context.newPage();
    const first = await page.goto(url.toString());
    expect(first?.status()).toBe(200);
    expect(first?.headers()['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    await expect(page.locator('form input[name="email"]').count()).resolves.toBe(1);
    await shot(page, 'login');
    await page.fill('input[name="email"]', 'viewer@acme.test');
    await page.fill('input[name="password"]', 'V1ewer-pass-acme');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type="submit"]')]);

    // The consent page, at the same authorization URL.
    expect(page.url()).toBe(url.toString());
    await expect(page.locator('h1').first().textContent()).resolves.toBe('Acme Dashboard');
    await expect(page.locator('a#privacy-policy').getAttribute('href')).resolves.toBe('https://acme.test/privacy');
    await expect(page.locator('[data-scope]').evaluateAll((els) => els.map((e) => e.getAttribute('data-scope')))).resolves.toEqual([
      'devices:read',
      'readings:read',
      'offline_access',
    ]);
    await shot(page, 'consent');
    await Promise.all([page.waitForURL('http://127.0.0.1:9876/**'), page.click('button[name="decision"][value="allow"]')]);

    expect(arrivals).toHaveLength(1);
    const callback = new URL(arrivals[0]!);
    expect(`${callback.origin}${callback.pathname}`).toBe(WEB.redirectUri);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('code')).toMatch(/^sc_ac_/);
    await context.close();

    // The client's side, strictly validated by oauth4webapi.
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(WEB.secret),
      params,
      WEB.redirectUri,
      verifier,
      { [oauth.allowInsecureRequests]: true },
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.access_token).toMatch(/^sc_at_/);
    expect(tokens.refresh_token).toMatch(/^sc_rt_/);
    expect(tokens.scope).toBe('devices:read readings:read offline_access');
  });

  it('public client: PKCE without a secret; the remembered consent skips the page on the next visit', async () => {
    const as = authorizationServer();
    const client: oauth.Client = { client_id: SPA.clientId, token_endpoint_auth_method: 'none' };
    const { context, arrivals } = await clientContext();
    const page = await context.newPage();

    const start = async () => {
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: SPA.clientId,
        redirect_uri: SPA.redirectUri,
        scope: 'readings:read',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      return { verifier, state, url: url.toString() };
    };

    const one = await start();
    await page.goto(one.url);
    await page.fill('input[name="email"]', 'member@acme.test');
    await page.fill('input[name="password"]', 'Memb3r-pass-acme');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type="submit"]')]);
    await Promise.all([page.waitForURL('http://127.0.0.1:9876/**'), page.click('button[name="decision"][value="allow"]')]);
    const firstCallback = new URL(arrivals[0]!);
    const params = oauth.validateAuthResponse(as, client, firstCallback, one.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, SPA.redirectUri, one.verifier, {
      [oauth.allowInsecureRequests]: true,
    });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    expect(tokens.scope).toBe('readings:read');

    // Second visit: signed in and consent remembered, so straight back to the client.
    const two = await start();
    await page.goto(two.url).catch(() => undefined);
    await page.waitForURL('http://127.0.0.1:9876/**');
    expect(arrivals).toHaveLength(2);
    const second = new URL(arrivals[1]!);
    expect(second.searchParams.get('state')).toBe(two.state);
    expect(second.searchParams.get('code')).toMatch(/^sc_ac_/);
    await context.close();
  });

  it('deny in the browser brings the user back with error=access_denied and the state', async () => {
    const { context, arrivals } = await clientContext();
    const page = await context.newPage();
    const state = 'deny me';
    const url = `${server.url}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: WEB.clientId, redirect_uri: WEB.redirectUri, scope: 'alarms:read', state, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`;
    await page.goto(url);
    await page.fill('input[name="email"]', 'admin@acme.test');
    await page.fill('input[name="password"]', 'Adm1n-pass-acme');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type="submit"]')]);
    await Promise.all([page.waitForURL('http://127.0.0.1:9876/**'), page.click('button[name="decision"][value="deny"]')]);
    const callback = new URL(arrivals[0]!);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.has('code')).toBe(false);
    await context.close();
  });

  it('a role lacking a requested scope sees why and can only deny', async () => {
    const { context } = await clientContext();
    const page = await context.newPage();
    const url = `${server.url}/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'acme-admin-tool', redirect_uri: 'http://127.0.0.1:9876/admin2', scope: 'devices:read devices:write users:write', state: 'r' })}`;
    await page.goto(url);
    await page.fill('input[name="email"]', 'member@acme.test');
    await page.fill('input[name="password"]', 'Memb3r-pass-acme');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type="submit"]')]);
    await shot(page, 'consent-refused');
    expect(await page.locator('button[name="decision"][value="allow"]').count()).toBe(0);
    expect(await page.locator('[role="alert"]').textContent()).toContain('does not include devices:write, users:write');
    await Promise.all([page.waitForURL('http://127.0.0.1:9876/**'), page.click('button[name="decision"][value="deny"]')]);
    expect(new URL(arrivals[0]!).searchParams.get('error')).toBe('access_denied');
    await context.close();
  });

  it('the login page cannot be framed by another site (frame-ancestors none)', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const messages: string[] = [];
    page.on('console', (message) => messages.push(message.text()));
    await page.goto('http://127.0.0.1:9876/frame');
    await page.waitForLoadState('load');
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    // Chromium replaces a refused frame with its error page: the login form never renders in it.
    expect(frame!.url()).not.toContain('/login');
    expect(await frame!.locator('input[name="password"]').count()).toBe(0);
    // ...whereas the same page loads fine at the top level.
    const top = await context.newPage();
    await top.goto(`${server.url}/login`);
    expect(await top.locator('input[name="password"]').count()).toBe(1);
    await context.close();
  });

  it('device flow in the browser: the prefilled code, sign-in, approve', async () => {
    const { createDeviceAuthorization } = await import('../../src/oauth/device-codes.js');
    const { findClientByClientId } = await import('../../src/oauth/clients.repo.js');
    const cli = (await findClientByClientId(server.db, 'acme-cli'))!;
    const { userCode } = await createDeviceAuthorization(server.db, {
      clientPk: cli.id,
      organizationId: cli.organization_id,
      requestedScope: 'devices:read',
      ttlSeconds: 600,
      intervalSeconds: 5,
    });
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/device?user_code=${encodeURIComponent(userCode)}`);
    await page.fill('input[name="email"]', 'viewer@acme.test');
    await page.fill('input[name="password"]', 'V1ewer-pass-acme');
    await Promise.all([page.waitForLoadState('load'), page.click('form button[type="submit"]')]);
    await expect(page.locator('#user-code').textContent()).resolves.toBe(userCode);
    await shot(page, 'device-consent');
    await Promise.all([page.waitForLoadState('load'), page.click('button[name="decision"][value="allow"]')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Device connected');
    await page.goto(`${server.url}/account/authorized-applications`);
    await shot(page, 'authorized-applications');
    await expect(page.locator('tr[data-client-id="acme-cli"]').count()).resolves.toBe(1);
    await context.close();
  });
});
