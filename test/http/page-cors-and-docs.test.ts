import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectApp } from '../oauth/support/inject-app.js';
import { type RawResponse, rawRequest } from '../support/http.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * Pages are never CORS-readable (RFC 9700 §2.6: no CORS at the authorization endpoint), while the
 * API keeps CORS for browser clients; Swagger UI works over plain http, where its CSP must not ask
 * the browser to upgrade requests to https.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ORIGIN = 'https://dashboard.example';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

const send = (request: Parameters<typeof rawRequest>[1]) => rawRequest(server.url, request);
const corsHeaders = (response: RawResponse) => Object.keys(response.headers).filter((name) => name.startsWith('access-control-'));
const preflight = (path: string, method = 'GET') =>
  send({
    method: 'OPTIONS',
    path,
    headers: { origin: ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' },
  });

const PAGES = [
  '/oauth/authorize?client_id=x',
  '/oauth2/auth',
  '/login',
  '/login/',
  '//login',
  '/device',
  '/account/authorized-applications',
  '/setup',
  '/docs',
  '/docs/static/index.html',
  '/docs/json',
];

describe('CORS', () => {
  it('pages answer a cross-origin request without any Access-Control-* header', async () => {
    for (const path of PAGES) {
      const response = await send({ path, headers: { origin: ORIGIN } });
      expect(response.status, path).toBeLessThan(500);
      expect(corsHeaders(response), path).toEqual([]);
    }
    for (const path of ['/logout', '/oauth/authorize', '/account/authorized-applications/revoke']) {
      const response = await send({
        method: 'POST',
        path,
        headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'a=b',
      });
      expect(corsHeaders(response), path).toEqual([]);
    }
  });

  it('a preflight to a page is answered as a plain OPTIONS: Allow, no Access-Control-* header', async () => {
    for (const [path, allow] of [
      ['/oauth/authorize', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
      ['/oauth2/auth', ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST']],
      ['/login', ['GET', 'HEAD', 'OPTIONS', 'POST']],
      ['/setup', ['GET', 'HEAD', 'OPTIONS', 'POST']],
    ] as const) {
      const response = await preflight(path, 'POST');
      expect(response.status, path).toBe(204);
      expect(corsHeaders(response), path).toEqual([]);
      expect(response.headers.allow?.split(/,\s*/).sort(), path).toEqual(allow);
    }
  });

  it('the API keeps CORS: token endpoint, /v1, metadata, JWKS, OpenAPI, device authorization', async () => {
    for (const path of [
      '/oauth/token',
      '/oauth/revoke',
      '/oauth/introspect',
      '/oauth/token/info',
      '/oauth/device_authorization',
      '/v1/me',
      '/.well-known/oauth-authorization-server',
      '/oauth/jwks',
      '/openapi.json',
    ]) {
      const response = await preflight(path, 'POST');
      expect(response.status, path).toBe(204);
      expect(response.headers['access-control-allow-origin'], path).toBe(ORIGIN);
      expect(response.headers['access-control-allow-headers']?.toLowerCase(), path).toMatch(/authorization/);
    }
    for (const [method, path] of [
      ['POST', '/oauth/token'],
      ['GET', '/v1/me'],
      ['GET', '/.well-known/openid-configuration'],
      ['GET', '/openapi.json'],
    ] as const) {
      const response = await send({
        method,
        path,
        headers: { origin: ORIGIN, ...(method === 'POST' && { 'content-type': 'application/x-www-form-urlencoded' }) },
        ...(method === 'POST' && { body: 'grant_type=client_credentials' }),
      });
      expect(response.headers['access-control-allow-origin'], path).toBe(ORIGIN);
      expect(response.headers['access-control-expose-headers'], path).toMatch(/x-request-id/);
    }
  });
});

describe('/docs over plain http', () => {
  it('its CSP does not upgrade requests to https', async () => {
    for (const path of ['/docs', '/docs/static/index.html']) {
      const csp = (await server.fetch(path)).headers.get('content-security-policy') ?? '';
      expect(csp, path).toMatch(/script-src 'self'/);
      expect(csp, path).not.toMatch(/upgrade-insecure-requests/);
    }
  });

  it('behind https the directive stays', async () => {
    const { app, close } = await injectApp({}, { publicUrl: 'https://sensors.example.com' });
    try {
      const response = await app.inject('/docs');
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-security-policy']).toMatch(/upgrade-insecure-requests/);
    } finally {
      await close();
    }
  });

  it('Swagger UI renders in Chromium, nothing blocked, on an address that is not loopback', async () => {
    // Chromium never upgrades requests to 127.0.0.1 itself, so the page is opened under a LAN-like
    // name resolved to it, as a self-host on a plain-http LAN address is.
    const port = new URL(server.url).port;
    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--host-resolver-rules=MAP sensorcloud.lan 127.0.0.1',
      ],
    });
    try {
      const page = await browser.newPage();
      const failed: string[] = [];
      const violations: string[] = [];
      page.on('requestfailed', (request) => failed.push(`${request.url()} ${request.failure()?.errorText ?? ''}`));
      // Loads the CSP refused (scripts, styles, fonts, images, the API document). Swagger UI also sets
      // one inline style attribute its own CSP refuses; that blocks no request and the UI renders.
      page.on('console', (message) => {
        if (/Refused to (load|connect|execute|apply a stylesheet)/i.test(message.text())) violations.push(message.text());
      });
      const response = await page.goto(`http://sensorcloud.lan:${port}/docs`, { waitUntil: 'networkidle' });
      expect(response?.status()).toBe(200);
      await page.locator('.swagger-ui .info .title').waitFor({ timeout: 15_000 });
      expect(await page.locator('.swagger-ui .info .title').textContent()).toMatch(/sensorcloud API/);
      expect(await page.locator('.opblock').count()).toBeGreaterThan(0);
      expect(failed).toEqual([]);
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
