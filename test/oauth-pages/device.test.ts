import { describe, expect, it } from 'vitest';
import { findClientByClientId } from '../../src/oauth/clients.repo.js';
import { createDeviceAuthorization, normalizeUserCode } from '../../src/oauth/device-codes.js';
import { Browser, parseForms, usePagesServer } from './support.js';

/** The RFC 8628 verification page: enter (or prefill) the user code, sign in, approve or deny. */

const server = usePagesServer();

async function newDeviceCode(scope: string | null = 'devices:read readings:read') {
  const client = (await findClientByClientId(server.db, 'acme-cli'))!;
  return createDeviceAuthorization(server.db, {
    clientPk: client.id,
    organizationId: client.organization_id,
    requestedScope: scope,
    ttlSeconds: 600,
    intervalSeconds: 5,
  });
}

async function status(userCode: string) {
  return server.db
    .selectFrom('oauth_device_codes')
    .select(['status', 'scopes', 'scope_display', 'user_id'])
    .where('user_code', '=', normalizeUserCode(userCode))
    .executeTakeFirstOrThrow();
}

const consentForm = (html: string) => parseForms(html).find((f) => f.buttons.some((b) => b.name === 'decision'));

describe('/device', () => {
  it('asks to sign in first, then for the code; a typed code (any case, no dash) leads to the consent page; allow approves', async () => {
    const { userCode } = await newDeviceCode();
    const browser = new Browser(server.url);
    const first = await browser.page('/device');
    expect(first.response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(first.forms.some((f) => 'password' in f.fields)).toBe(true);
    const login = await browser.login('/device', 'viewer@acme.test');
    expect(login.headers.get('location')).toBe('/device');

    const entry = await browser.page('/device');
    const codeForm = entry.forms.find((f) => 'user_code' in f.fields)!;
    expect(codeForm.method).toBe('get');
    const typed = await browser.submit(codeForm, { user_code: normalizeUserCode(userCode).toLowerCase() });
    expect(typed.status).toBe(200);
    const html = await typed.text();
    expect(html).toContain('Acme CLI');
    expect(html).toContain(userCode);
    expect(html).toContain('data-scope="devices:read"');
    const form = consentForm(html)!;
    expect(form.buttons.map((b) => b.value).sort()).toEqual(['allow', 'deny']);

    const done = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Device connected');
    const viewer = await server.db.selectFrom('users').select('id').where('email', '=', 'viewer@acme.test').executeTakeFirstOrThrow();
    expect(await status(userCode)).toEqual({
      status: 'approved',
      scopes: ['devices:read', 'readings:read'],
      scope_display: 'devices:read readings:read',
      user_id: viewer.id,
    });

    // The code is spent: entering it again is an error.
    const again = await browser.request(`/device?user_code=${encodeURIComponent(userCode)}`);
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('not valid');
  });

  it('verification_uri_complete (?user_code=) survives the login and denial is recorded', async () => {
    const { userCode } = await newDeviceCode();
    const browser = new Browser(server.url);
    const url = `/device?user_code=${encodeURIComponent(userCode)}`;
    const login = await browser.login(url, 'member@acme.test');
    expect(login.headers.get('location')).toBe(url);
    const { html } = await browser.page(url);
    const denied = await browser.submit(consentForm(html)!, {}, { name: 'decision', value: 'deny' });
    expect(denied.status).toBe(200);
    expect(await denied.text()).toContain('Access denied');
    expect((await status(userCode)).status).toBe('denied');
  });

  it('refuses a decision without the CSRF token', async () => {
    const { userCode } = await newDeviceCode();
    const browser = new Browser(server.url);
    const url = `/device?user_code=${encodeURIComponent(userCode)}`;
    await browser.login(url, 'viewer@acme.test');
    const response = await browser.request('/device', { form: { user_code: userCode, decision: 'allow' } });
    expect(response.status).toBe(403);
    expect((await status(userCode)).status).toBe('pending');
  });

  it('a role lacking a requested scope only gets deny, and a forced allow changes nothing', async () => {
    const { userCode } = await newDeviceCode('devices:read devices:write');
    const browser = new Browser(server.url);
    const url = `/device?user_code=${encodeURIComponent(userCode)}`;
    await browser.login(url, 'viewer@acme.test');
    const { html } = await browser.page(url);
    expect(html).toContain('<code>devices:write</code>');
    const form = consentForm(html)!;
    expect(form.buttons.map((b) => b.value)).toEqual(['deny']);
    const forced = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
    expect(forced.status).toBe(403);
    expect((await status(userCode)).status).toBe('pending');
  });

  it('a user of another organization cannot approve', async () => {
    const { userCode } = await newDeviceCode();
    const browser = new Browser(server.url);
    const url = `/device?user_code=${encodeURIComponent(userCode)}`;
    await browser.login(url, 'owner@globex.test');
    const { html } = await browser.page(url);
    expect(html).toContain('not a member of');
    const forced = await browser.submit(consentForm(html)!, {}, { name: 'decision', value: 'allow' });
    expect(forced.status).toBe(403);
    expect((await status(userCode)).status).toBe('pending');
  });

  it('limits wrong codes per IP (429)', async () => {
    const browser = new Browser(server.url);
    await browser.login('/device', 'admin@acme.test');
    let last: Response | undefined;
    for (let i = 0; i < 11; i++) last = await browser.request(`/device?user_code=BBBB-BBB${'BCDFGHJKLMN'[i]}`);
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even a valid code is refused while throttled.
    const { userCode } = await newDeviceCode();
    expect((await browser.request(`/device?user_code=${encodeURIComponent(userCode)}`)).status).toBe(429);
  });
});
