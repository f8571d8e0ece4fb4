import fs from 'node:fs';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertUser } from '../../src/identity/users.repo.js';
import { hashPassword } from '../../src/security/passwords.js';
import { type OAuthTestServer, passwordToken, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * The console in headless Chromium, as a person uses it: sign in, create an API key and call the
 * API with it, revoke it and see the API refuse it, a sensor's chart with readings in it, the
 * alarms; an axe scan of every page (no serious or critical violations), a phone-width check, and
 * a screenshot of each page in test-results/console/.
 */

const SHOTS = path.resolve('test-results/console');
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';

let server: OAuthTestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startOAuthServer();
  browser = await launchChromium();
  const now = Date.now();
  const readings = Array.from({ length: 30 }, (_, i) => ({
    sensor: 'temp',
    ts: new Date(now - (30 - i) * 60_000).toISOString(),
    value: 4 + Math.sin(i / 5),
  }));
  const ingest = await server.fetch('/v1/ingest', {
    method: 'POST',
    headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(readings),
  });
  expect(ingest.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

async function audit(page: Page, name: string) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

async function signedIn(email = 'admin@acme.test', password = 'Adm1n-pass-acme', width = 1100): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${server.url}/console`), page.click('button[type=submit]')]);
  return page;
}

describe('the console', () => {
  it('/ answers an API client with a JSON index of the entry points', async () => {
    const res = await server.fetch('/', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { links: Record<string, string> };
    expect(body.links).toMatchObject({ console: `${server.url}/console`, openapi: `${server.url}/openapi.json` });
    expect(res.headers.get('vary')).toMatch(/accept/i);
    // A browser goes to the console, which asks it to sign in first.
    const browserish = await server.fetch('/', { headers: { accept: 'text/html' }, redirect: 'manual' });
    expect(browserish.status).toBe(303);
    expect(browserish.headers.get('location')).toBe('/console');
    const console = await server.fetch('/console', { redirect: 'manual' });
    expect(console.headers.get('location')).toBe('/login?return_to=%2Fconsole');
  });

  it('an admin creates an API key, calls the API with it, revokes it and the API refuses it', async () => {
    const page = await signedIn();
    await expect(page.locator('h1').textContent()).resolves.toBe('Acme Labs');
    await audit(page, 'overview');
    await page.click('a:has-text("Create an API key")');
    await audit(page, 'api-keys');

    // Inline validation: nothing is sent while the form is incomplete.
    await page.click('button:has-text("Create API key")');
    await expect(page.locator('#key-name-error').textContent()).resolves.toMatch(/required/);
    expect(new URL(page.url()).pathname).toBe('/console/developer/api-keys');

    await page.fill('#key-name', 'ci script');
    await page.check('input[name=scopes][value="devices:read"]');
    await page.click('button:has-text("Create API key")');
    const key = await page.locator('[data-new-secret]').inputValue();
    expect(key).toMatch(/^sk_live_/);
    await audit(page, 'api-key-created');

    const devices = await server.fetch('/v1/devices', { headers: { authorization: `Bearer ${key}` } });
    expect(devices.status).toBe(200);
    // Shown once: the list shows the prefix only.
    await page.goto(`${server.url}/console/developer/api-keys`);
    expect(await page.content()).not.toContain(key);

    await page.click('tr[data-api-key="ci script"] summary');
    await Promise.all([page.waitForURL(/revoked=1/), page.click('tr[data-api-key="ci script"] button:has-text("Revoke")')]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toMatch(/revoked/);
    const refused = await server.fetch('/v1/devices', { headers: { authorization: `Bearer ${key}` } });
    expect(refused.status).toBe(401);
    // Audited like the API's own: the person, their address, never the key.
    const entries = await server.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', 'like', 'api_key.%')
      .where('actor_kind', '=', 'user')
      .orderBy('at')
      .execute();
    expect(entries.map((e) => [e.action, e.actor_kind, e.source_address])).toEqual([
      ['api_key.created', 'user', '127.0.0.1'],
      ['api_key.revoked', 'user', '127.0.0.1'],
    ]);
    expect(JSON.stringify(entries)).not.toContain(key);
    await page.context().close();
  });

  it("a sensor's chart draws its readings, and the list shows the latest value", async () => {
    const page = await signedIn();
    await page.click('header nav a:has-text("Sensors")');
    const row = page.locator('tr', { hasText: 'temp' }).first();
    await expect(row.locator('[data-field=status]').textContent()).resolves.toBe('reporting');
    await audit(page, 'sensors');
    await row.locator('a').click();
    await page.waitForSelector('#chart canvas');
    await expect.poll(async () => Number(await page.locator('#chart').getAttribute('data-points'))).toBe(30);
    await audit(page, 'sensor');
    // The range picker is a plain form.
    await page.selectOption('#range', '1h');
    await page.click('button:has-text("Show")');
    await expect.poll(async () => Number(await page.locator('#chart').getAttribute('data-points'))).toBe(30);
    await page.context().close();
  });

  it('alarms: an out-of-range reading shows up, is acknowledged with a note and resolved', async () => {
    const token = (await passwordToken(server)).access_token;
    const call = (method: string, url: string, body?: unknown) =>
      server.fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const sensors = (await (await call('GET', '/v1/sensors?key=temp')).json()) as { data: { id: string }[] };
    const threshold = await call('POST', '/v1/alarm-thresholds', { sensor_id: sensors.data[0]!.id, max: 8, severity: 'critical' });
    expect(threshold.status).toBe(201);
    const ingest = await server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify([{ sensor: 'temp', ts: new Date().toISOString(), value: 12.5 }]),
    });
    expect(ingest.status).toBe(200);

    const admin = await signedIn();
    await admin.click('header nav a:has-text("Alarms")');
    await audit(admin, 'alarms');
    await admin.click('td a');
    await expect(admin.locator('[data-alarm-status]').textContent()).resolves.toBe('active');
    await audit(admin, 'alarm');
    await admin.fill('#note', 'door left open, closed it');
    await Promise.all([admin.waitForURL(/done=acknowledged/), admin.click('button:has-text("Acknowledge")')]);
    await expect(admin.locator('[data-alarm-status]').textContent()).resolves.toBe('acknowledged');
    await expect(admin.locator('.history').textContent()).resolves.toContain('door left open, closed it');
    await Promise.all([admin.waitForURL(/done=resolved/), admin.click('button:has-text("Resolve")')]);
    await expect(admin.locator('[data-alarm-status]').textContent()).resolves.toBe('resolved');
    // The API sees what the console did.
    const alarms = (await (await call('GET', '/v1/alarms?status=resolved')).json()) as { data: { status: string }[] };
    expect(alarms.data).toHaveLength(1);
    await admin.context().close();
  });

  it('a viewer sees sensors but not the developer settings; the console fits a phone', async () => {
    const page = await signedIn('viewer@acme.test', 'V1ewer-pass-acme', 375);
    const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
    expect(width).toBeLessThanOrEqual(375);
    await audit(page, 'overview-phone');
    const res = await page.goto(`${server.url}/console/developer/api-keys`);
    expect(res?.status()).toBe(403);
    await page.goto(`${server.url}/console/sensors`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Sensors');
    await page.context().close();
  });

  it('a person who belongs to no organization gets a page saying so, not a loop back to the login page', async () => {
    await upsertUser(server.db, { email: 'nomad@acme.test', passwordHash: await hashPassword('N0mad-password') });
    const page = await signedIn('nomad@acme.test', 'N0mad-password');
    const res = await page.reload();
    expect(res?.status()).toBe(403);
    await expect(page.content()).resolves.toContain('not an active member of any organization');
    await page.context().close();
  });

  it('a form without its CSRF token is refused; sign out ends the session', async () => {
    const page = await signedIn();
    const forged = await page.request.post(`${server.url}/console/developer/api-keys`, {
      form: { name: 'forged', scopes: 'devices:read' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    await Promise.all([page.waitForURL(/\/login/), page.click('button:has-text("Sign out")')]);
    const after = await page.goto(`${server.url}/console`);
    expect(new URL(after!.url()).pathname).toBe('/login');
    await page.context().close();
  });
});
