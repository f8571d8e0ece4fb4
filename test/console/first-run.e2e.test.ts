import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * A fresh installation, as its first user meets it in a browser, with no command line and no
 * provisioning file: the setup link printed at start → the organization and its owner → "Sign in to
 * the console" → a first API key → the API answers it.
 */

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startTestServer({ exactPublicUrl: true });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

it('the setup link leads to the console, where the owner creates an API key that the API accepts', async () => {
  expect(server.setupLink, server.stdout).toBeDefined();
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.setupLink!);
  await page.fill('input[name=organization_name]', 'Fresh Labs');
  await page.fill('input[name=organization_slug]', 'fresh');
  await page.fill('input[name=name]', 'Fran Owner');
  await page.fill('input[name=email]', 'fran@fresh.test');
  await page.fill('input[name=password]', 'Fresh-0wner-pass');
  await page.click('button:has-text("Create organization")');
  await expect(page.locator('h1').textContent()).resolves.toBe('sensorcloud is ready');

  await page.click('#sign-in');
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('input[name=email]', 'fran@fresh.test');
  await page.fill('input[name=password]', 'Fresh-0wner-pass');
  await Promise.all([page.waitForURL(`${server.url}/console`), page.click('button[type=submit]')]);
  await expect(page.locator('h1').textContent()).resolves.toBe('Fresh Labs');

  await page.click('a:has-text("Create an API key")');
  await page.fill('#key-name', 'first script');
  await page.check('input[name=scopes][value="users:read"]');
  await page.click('button:has-text("Create API key")');
  const key = await page.locator('[data-new-secret]').inputValue();
  expect(key).toMatch(/^sk_live_/);

  const me = await server.fetch('/v1/users', { headers: { authorization: `Bearer ${key}` } });
  expect(me.status).toBe(200);
  const body = (await me.json()) as { data: { email: string; role: string }[] };
  expect(body.data.map((u) => [u.email, u.role])).toEqual([['fran@fresh.test', 'owner']]);
  await page.context().close();
}, 120_000);
