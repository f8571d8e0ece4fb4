import fs from 'node:fs';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'oauth4webapi';
import type { AuditAction } from '../../src/audit/actions.js';
import { type AuditEntry, recordAuditEvent } from '../../src/audit/audit.repo.js';
import { findOrganizationBySlug } from '../../src/identity/organizations.repo.js';
import { setMembership, upsertUser } from '../../src/identity/users.repo.js';
import { hashPassword } from '../../src/security/passwords.js';
import { type OAuthTestServer, basic, passwordToken, postForm, provisioningYaml, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * The console in headless Chromium, as a person uses it: sign in, create an API key and call the
 * API with it, revoke it and see the API refuse it, a sensor's chart with readings in it, the
 * alarms; register an OAuth application and sign in through it (authorization code with PKCE),
 * revoke it under Authorized applications; the audit log and the members page of an admin, both
 * refused to the others; an axe scan of every page (no serious or critical violations),
 * phone-width checks, and a screenshot of each page in test-results/console/.
 */

const SHOTS = path.resolve('test-results/console');
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';

let server: OAuthTestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startOAuthServer({
    provisioning: provisioningYaml({ acme: { users: [{ email: 'member@acme.test', password: 'Memb3r-pass-acme', role: 'member' }] } }),
  });
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

/** An admin on a page of the navigation, scanned and shot as `shot`. */
async function adminOn(navLabel: string, shot: string): Promise<Page> {
  const page = await signedIn();
  await page.click(`header nav a:has-text("${navLabel}")`);
  await audit(page, shot);
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
    for (const [path, form] of [
      ['/console/developer/api-keys', { name: 'forged', scopes: 'devices:read' }],
      ['/console/developer/applications', { name: 'forged', scopes: 'devices:read', redirect_uris: 'https://evil.example/cb' }],
      ['/console/members/invite', { email: 'forged@evil.example', role: 'admin' }],
      ['/console/authorized-applications/revoke', { client_id: 'acme-web' }],
    ] as const) {
      const forged = await page.request.post(`${server.url}${path}`, { form, maxRedirects: 0 });
      expect(forged.status(), path).toBe(403);
    }
    expect(
      await server.db.selectFrom('organization_invitations').select('id').where('email', '=', 'forged@evil.example').execute(),
    ).toEqual([]);
    expect(await server.db.selectFrom('oauth_clients').select('id').where('name', '=', 'forged').execute()).toEqual([]);
    await Promise.all([page.waitForURL(/\/login/), page.click('button:has-text("Sign out")')]);
    const after = await page.goto(`${server.url}/console`);
    expect(new URL(after!.url()).pathname).toBe('/login');
    await page.context().close();
  });
});

describe('developer settings: OAuth applications', () => {
  const REDIRECT = 'https://app.example/callback';

  it('an admin registers an application, signs in through it with PKCE, calls /v1, revokes it under Authorized applications and the token is refused', async () => {
    const page = await adminOn('Developer settings', 'developer-settings');
    await page.click('nav.tabs a:has-text("OAuth applications")');
    await audit(page, 'applications');

    // The service's refusal shows beside the field it names: plain http only on a loopback host.
    await page.fill('#app-name', 'Fridge dashboard');
    await page.fill('#app-redirect_uris', 'http://app.example/callback');
    await page.fill('#app-privacy_policy_url', 'https://app.example/privacy');
    await page.check('input[name=scopes][value="devices:read"]');
    const refused = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.click('button:has-text("Create application")'),
    ]);
    expect(refused[0].status()).toBe(422);
    await expect(page.locator('#app-redirect_uris-error').textContent()).resolves.toMatch(/redirect_uris\[0\]: must use https/);
    await expect(page.locator('#app-redirect_uris').getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.locator('#app-name').inputValue()).resolves.toBe('Fridge dashboard'); // what was typed is kept
    await audit(page, 'application-refused');

    await page.fill('#app-redirect_uris', REDIRECT);
    await page.click('button:has-text("Create application")');
    const clientId = (await page.locator('[data-client-id]').textContent())!;
    const secret = await page.locator('[data-new-secret]').inputValue();
    expect(clientId).toMatch(/^app_/);
    expect(secret).toMatch(/^sc_cs_/);
    await audit(page, 'application-created');
    // Shown once.
    await page.goto(`${server.url}/console/developer/applications`);
    expect(await page.content()).not.toContain(secret);

    // The authorization-code flow with PKCE: the browser signs in (already) and consents, oauth4webapi exchanges the code.
    const issuer = new URL(server.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }),
    );
    const client: oauth.Client = { client_id: clientId };
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorize = new URL(as.authorization_endpoint!);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT,
      scope: 'devices:read',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    // The application's side of the redirect, answered in the browser (nothing listens at app.example).
    await page.route('https://app.example/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' }));
    await page.goto(authorize.href);
    await expect(page.locator('h1').textContent()).resolves.toContain('Fridge dashboard');
    const [redirected] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(REDIRECT)),
      page.click('button[name=decision][value=allow]'),
    ]);
    const callback = new URL(redirected.url());
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.ClientSecretBasic(secret), params, REDIRECT, verifier, {
        [oauth.allowInsecureRequests]: true,
      }),
    );
    const bearer = { headers: { authorization: `Bearer ${tokens.access_token}` } };
    expect((await server.fetch('/v1/devices', bearer)).status).toBe(200);

    // Revoked under Authorized applications, inside the console: the token is refused on the next request.
    await page.goto(`${server.url}/console`);
    await page.click('header nav a:has-text("Authorized applications")');
    await audit(page, 'authorized-applications');
    const row = page.locator(`tr[data-client-id="${clientId}"]`);
    await row.locator('summary').click();
    await Promise.all([page.waitForURL(/revoked=/), row.locator('button:has-text("Revoke")').click()]);
    await expect(page.locator('[role=status]').first().textContent()).resolves.toBe('Access for Fridge dashboard has been revoked.');
    await expect(page.locator('#no-applications').count()).resolves.toBe(1);
    expect((await server.fetch('/v1/devices', bearer)).status).toBe(401);
    // The account page outside the console reads the same consents.
    await page.goto(`${server.url}/account/authorized-applications`);
    expect(await page.content()).not.toContain(clientId);

    // Edit, then rotate the secret behind its confirmation: the old secret stops authenticating at once.
    await page.goto(`${server.url}/console/developer/applications`);
    await page.click('a:has-text("Fridge dashboard")');
    await audit(page, 'application');
    await page.fill('#app-name', 'Fridge dashboard 2');
    await Promise.all([page.waitForURL(/updated=1/), page.click('button:has-text("Save changes")')]);
    await expect(page.locator('h1').textContent()).resolves.toBe('Fridge dashboard 2');
    await page.click('summary:has-text("Rotate the client secret")');
    await page.click('button:has-text("Rotate the secret of")');
    const rotated = await page.locator('[data-new-secret]').inputValue();
    expect(rotated).toMatch(/^sc_cs_/);
    expect(rotated).not.toBe(secret);
    await audit(page, 'application-rotated');
    const exchange = (withSecret: string) =>
      postForm(
        server,
        '/oauth/token',
        { grant_type: 'authorization_code', code: 'sc_ac_unknown', redirect_uri: REDIRECT },
        {
          authorization: basic(clientId, withSecret),
        },
      );
    expect((await exchange(secret)).status).toBe(401); // invalid_client
    expect((await exchange(rotated)).status).toBe(400); // authenticated; the code is what is wrong

    await page.click('summary:has-text("Delete")');
    await Promise.all([page.waitForURL(/deleted=1/), page.click('button:has-text("Delete Fridge dashboard 2")')]);
    expect(await page.locator(`tr[data-application="Fridge dashboard 2"]`).count()).toBe(0);
    expect((await exchange(rotated)).status).toBe(401);

    // Audited as the person, and never a secret.
    const entries = await server.db.selectFrom('audit_events').selectAll().where('target_type', '=', 'application').orderBy('at').execute();
    expect(entries.map((e) => e.action)).toEqual([
      'application.created',
      'consent.granted',
      'consent.revoked',
      'application.updated',
      'application.secret_rotated',
      'application.deleted',
    ]);
    expect(JSON.stringify(entries)).not.toContain(secret);
    expect(JSON.stringify(entries)).not.toContain(rotated);
    await page.context().close();
  }, 120_000);

  it('provisioned applications are shown read-only', async () => {
    const page = await signedIn();
    await page.goto(`${server.url}/console/developer/applications`);
    await page.click('tr[data-application="Acme Dashboard"] a');
    await expect(page.locator('[role=note]').textContent()).resolves.toMatch(/managed by the provisioning file/);
    expect(await page.locator('main form').count()).toBe(0);
    await page.context().close();
  });
});

describe('admin pages: audit log and members', () => {
  it('the audit log filters by action, actor and time, pages with a cursor and never shows a secret', async () => {
    const organization = (await findOrganizationBySlug(server.db, 'acme'))!;
    const admin = await server.db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
    const record = (actor: AuditEntry['actor'], action: AuditAction, type: string) =>
      recordAuditEvent(server.db, { organizationId: organization.id, actor, action, target: { type, id: crypto.randomUUID() } });
    await record({ kind: 'user', id: admin.id }, 'api_key.created', 'api_key');
    await record({ kind: 'user', id: admin.id }, 'api_key.revoked', 'api_key');
    // More entries than a page holds.
    for (let i = 0; i < 60; i++) await record({ kind: 'system', id: null }, 'webhook.disabled', 'webhook');
    const page = await adminOn('Audit log', 'audit');
    await page.selectOption('#f-action', 'webhook.disabled');
    await page.fill('#f-actor', 'system');
    await page.click('button:has-text("Filter")');
    const shown = async () => page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.textContent));
    const first = await shown();
    expect(first).toHaveLength(50);
    await page.click('a[rel=next]');
    const second = await shown();
    expect(second).toHaveLength(10);
    expect(second.filter((r) => first.includes(r))).toEqual([]);
    await expect(page.locator('#f-action').inputValue()).resolves.toBe('webhook.disabled'); // filters kept across pages
    await audit(page, 'audit-page-2');

    // A person as actor, by email, and every action of a resource.
    await page.goto(`${server.url}/console/audit?actor=${encodeURIComponent('admin@acme.test')}&action=api_key.`);
    const mine = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(mine.length).toBeGreaterThan(0);
    expect(new Set(mine)).toEqual(new Set(['api_key.created', 'api_key.revoked']));
    // A time range that ends before anything happened.
    await page.goto(`${server.url}/console/audit?to=2001-01-01T00:00`);
    await expect(page.locator('#no-entries').count()).resolves.toBe(1);
    await page.context().close();
  }, 120_000);

  it('an admin invites a person, changes a role and removes a member; each change is audited', async () => {
    const organization = (await findOrganizationBySlug(server.db, 'acme'))!;
    const leaving = await upsertUser(server.db, { email: 'leaving@acme.test', passwordHash: await hashPassword('Leav1ng-password') });
    await setMembership(server.db, organization.id, leaving.id, 'viewer');
    const page = await adminOn('Members', 'members');

    await page.fill('#invite-email', 'new.person@acme.test');
    await page.selectOption('#invite-role', 'viewer');
    await page.click('button:has-text("Invite")');
    const link = await page.locator('[data-new-secret]').inputValue();
    expect(link).toMatch(new RegExp(`^${server.url}/invitations\\?token=sc_inv_`));
    await expect(page.locator('[data-invitation="new.person@acme.test"]').count()).resolves.toBe(1);
    await audit(page, 'member-invited');
    // The same email again: the service's refusal beside the field.
    await page.fill('#invite-email', 'new.person@acme.test');
    await page.click('button:has-text("Invite")');
    await expect(page.locator('#invite-email-error').textContent()).resolves.toMatch(/pending invitation/);

    const row = page.locator('tr[data-member="leaving@acme.test"]');
    await row.locator('select').selectOption('member');
    await Promise.all([page.waitForURL(/done=role/), row.locator('button:has-text("Change role")').click()]);
    await expect(page.locator('tr[data-member="leaving@acme.test"] select').inputValue()).resolves.toBe('member');
    await page.locator('tr[data-member="leaving@acme.test"] summary').click();
    await Promise.all([page.waitForURL(/done=removed/), page.click('button:has-text("Remove leaving@acme.test")')]);
    expect(await page.locator('tr[data-member="leaving@acme.test"]').count()).toBe(0);

    const entries = await server.db
      .selectFrom('audit_events')
      .select(['action', 'actor_kind', 'details'])
      .where('target_type', 'in', ['user', 'invitation'])
      .where('actor_kind', '=', 'user')
      .orderBy('at')
      .execute();
    expect(entries.map((e) => e.action)).toEqual(['invitation.created', 'member.role_changed', 'member.removed']);
    expect(JSON.stringify(entries)).not.toContain(new URL(link).searchParams.get('token'));
    await page.context().close();
  });

  it('people without users:write get the 403 page on the audit log and members pages, and no link to them', async () => {
    for (const [email, password] of [
      ['member@acme.test', 'Memb3r-pass-acme'],
      ['viewer@acme.test', 'V1ewer-pass-acme'],
    ] as const) {
      const page = await signedIn(email, password);
      expect(await page.locator('header nav a:has-text("Audit log")').count()).toBe(0);
      for (const path of ['/console/audit', '/console/members', '/console/developer/applications']) {
        const res = await page.goto(`${server.url}${path}`);
        expect(res?.status(), `${email} ${path}`).toBe(403);
        await expect(page.locator('h1').textContent()).resolves.toBe('Not allowed');
      }
      await page.context().close();
    }
    const page = await signedIn('member@acme.test', 'Memb3r-pass-acme');
    await page.goto(`${server.url}/console/audit`);
    await audit(page, 'forbidden');
    await page.context().close();
  });

  it('the new pages fit a phone', async () => {
    const page = await signedIn('admin@acme.test', 'Adm1n-pass-acme', 375);
    for (const [path, name] of [
      ['/console/developer/applications', 'applications-phone'],
      ['/console/members', 'members-phone'],
      ['/console/audit', 'audit-phone'],
      ['/console/authorized-applications', 'authorized-applications-phone'],
    ] as const) {
      await page.goto(`${server.url}${path}`);
      expect(Number(await page.evaluate('document.documentElement.scrollWidth')), path).toBeLessThanOrEqual(375);
      await audit(page, name);
    }
    await page.context().close();
  });
});
