import { type Browser as Chromium, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser as FormClient, parseForms } from '../support/browser.js';
import { passwordsOf, specExampleYaml } from '../support/files.js';
import { type TestServer, serverBackends, startTestServer } from '../support/server.js';

/**
 * The invitation flow (issue 11) over real HTTP, on both backends: an admin invites by email
 * through the API, the invited person answers on the pages (driven like a browser without
 * JavaScript: forms and cookies; once in headless Chromium), and only then does the organization
 * see them. Also: a new account made on acceptance, declining, revocation, expiry, a used link, the
 * wrong account signed in, and CSRF.
 */

const PROVISIONING = specExampleYaml(`
organizations:
  - slug: beta
    name: Beta Corp
    users:
      - { email: admin@beta.test, password: "Adm1n-pass-beta", role: admin }
      - { email: viewer@beta.test, password: "V1ewer-pass-beta", role: viewer }
`);
const PASSWORDS = passwordsOf(PROVISIONING);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe.each(serverBackends)('invitations on $name', (backend) => {
  let server: TestServer;
  /** admin@acme.test's token (password grant, every scope of their role). */
  let adminToken: string;
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer({ backend: backend.name, provisioning: PROVISIONING, exactPublicUrl: true });
    adminToken = (await passwordGrant('admin@acme.test', PASSWORDS['admin@acme.test']!)).json.access_token;
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  async function passwordGrant(username: string, password: string): Promise<{ status: number; json: any }> {
    const response = await server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        client_id: 'acme-password',
        client_secret: 'acme-password-secret',
        username,
        password,
        scope: '*',
      }).toString(),
    });
    return { status: response.status, json: await response.json() };
  }

  async function api(
    path: string,
    init: { method?: string; body?: unknown; token?: string } = {},
  ): Promise<{ status: number; headers: Headers; text: string; json: any }> {
    const response = await server.fetch(path, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        authorization: `Bearer ${init.token ?? adminToken}`,
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : undefined };
  }

  /** Invites through the API; answers the invitation and the path of its link. */
  async function invite(email: string, role = 'viewer', name?: string) {
    const response = await api('/v1/users', { body: { email, role, ...(name && { name }) } });
    expect(response.status, response.text).toBe(202);
    const url = new URL(response.json.meta.accept_url);
    expect(url.origin).toBe(server.url);
    return { response, invitation: response.json.data, link: url.pathname + url.search };
  }

  const browser = () => new FormClient(server.url, PASSWORDS);
  const decisionForm = (html: string) => parseForms(html).find((f) => f.buttons.some((b) => b.name === 'decision' && b.value === 'accept'));
  const memberEmails = async () => (await api('/v1/users?limit=1000')).json.data.map((u: any) => u.email);

  it("an admin invites another organization's user; they sign in and accept; only then are they a member, whose token works", async () => {
    const existing = await invite('admin@beta.test', 'viewer');
    const fresh = await invite(`brand-new-${n++}@example.test`, 'viewer');
    // The same answer whether or not the account exists: status, keys, and nothing of the account.
    const keys = (value: any): unknown =>
      value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, keys(v)])) : typeof value;
    expect(keys(existing.response.json)).toEqual(keys(fresh.response.json));
    const betaAdmin = await server.db.selectFrom('users').selectAll().where('email', '=', 'admin@beta.test').executeTakeFirstOrThrow();
    expect(existing.response.text).not.toContain(betaAdmin.id);
    expect(existing.response.text).not.toContain(betaAdmin.created_at.toISOString());
    expect(Object.keys(existing.invitation).sort()).toEqual(Object.keys(fresh.invitation).sort());
    expect(existing.invitation).not.toHaveProperty('created_at', betaAdmin.created_at.toISOString());

    // Nothing of them in acme yet; their password does not open acme.
    expect(await memberEmails()).not.toContain('admin@beta.test');
    expect((await api(`/v1/users/${betaAdmin.id}`)).status).toBe(404);
    expect((await passwordGrant('admin@beta.test', PASSWORDS['admin@beta.test']!)).status).toBe(400);

    // The link shows the organization and the role, and asks them to sign in.
    const person = browser();
    const landing = await person.page(existing.link);
    expect(landing.response.status).toBe(200);
    expect(landing.response.headers.get('cache-control')).toBe('no-store');
    expect(landing.response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(landing.html).toContain('Acme Labs');
    expect(landing.html).toMatch(/id="role">viewer</);
    const signIn = /href="([^"]*)" id="sign-in"/.exec(landing.html)![1]!.replace(/&amp;/g, '&');
    expect(signIn).toBe(`/login?return_to=${encodeURIComponent(existing.link)}`);
    const login = await person.login(signIn, 'admin@beta.test');
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe(existing.link);

    const answer = await person.page(existing.link);
    expect(answer.response.status).toBe(200);
    const accepted = await person.submit(decisionForm(answer.html)!, {}, { name: 'decision', value: 'accept' });
    expect(accepted.status).toBe(200);
    expect(await accepted.text()).toContain('You are now a member of <strong>Acme Labs</strong> as <strong>viewer</strong>');

    // Now a member with the role offered, shown to acme; their own password-grant token works there.
    const members = (await api('/v1/users?limit=1000')).json.data;
    expect(members.find((u: any) => u.email === 'admin@beta.test')).toMatchObject({ id: betaAdmin.id, role: 'viewer', status: 'active' });
    expect((await api(`/v1/invitations/${existing.invitation.id}`)).json.data).toMatchObject({ status: 'accepted', user_id: betaAdmin.id });
    const grant = await passwordGrant('admin@beta.test', PASSWORDS['admin@beta.test']!);
    expect(grant.status).toBe(200);
    const me = await api('/v1/me', { token: grant.json.access_token });
    expect(me.json.data).toMatchObject({ email: 'admin@beta.test', role: 'viewer', organization_id: expect.any(String) });
    expect((await api('/v1/organizations/current', { token: grant.json.access_token })).json.data.slug).toBe('acme');
    expect((await api('/v1/devices', { token: grant.json.access_token })).status).toBe(200);
    expect((await api('/v1/users', { token: grant.json.access_token, body: { email: 'x@example.test' } })).status).toBe(403);

    // The link is spent.
    const reused = await person.page(existing.link);
    expect(reused.response.status).toBe(410);
    expect(reused.html).toContain('already been accepted');
    expect(decisionForm(reused.html)).toBeUndefined();
  });

  it('a new person creates their account on acceptance: password rule, signed in, a member with the role offered', async () => {
    const email = `new-person-${n++}@example.test`;
    const { invitation, link } = await invite(email, 'member', 'Suggested Name');
    const person = browser();
    const form = await person.page(link);
    expect(form.response.status).toBe(200);
    const accountForm = decisionForm(form.html)!;
    expect(Object.keys(accountForm.fields)).toEqual(expect.arrayContaining(['csrf_token', 'token', 'name', 'password']));
    expect(accountForm.fields.name).toBe('Suggested Name');
    expect(form.html).toContain(`value="${email}" readonly`);

    const weak = await person.submit(accountForm, { password: 'short' }, { name: 'decision', value: 'accept' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain('The password must be at least 10 characters.');
    expect(await memberEmails()).not.toContain(email);

    const created = await person.submit(
      accountForm,
      { name: 'New Person', password: 'a-new-long-password' },
      { name: 'decision', value: 'accept' },
    );
    expect(created.status).toBe(200);
    expect(await created.text()).toContain('Welcome to Acme Labs');
    // Signed in: the account page shows their (now empty) invitations, not a login form.
    const account = await person.page('/account/invitations');
    expect(account.html).toContain('id="no-invitations"');
    expect(account.forms.some((f) => 'password' in f.fields)).toBe(false);

    expect((await api(`/v1/users?email=${email}`)).json.data).toMatchObject([
      { email, name: 'New Person', role: 'member', status: 'active' },
    ]);
    expect((await api(`/v1/invitations/${invitation.id}`)).json.data.status).toBe('accepted');
    expect((await passwordGrant(email, 'a-new-long-password')).status).toBe(200);
    expect((await person.page(link)).response.status).toBe(410);
  });

  it('declines: from the account page when signed in, or with the link when the email has no account', async () => {
    const { invitation, link } = await invite('viewer@beta.test', 'member');
    const person = browser();
    expect((await person.login('/login?return_to=/account/invitations', 'viewer@beta.test')).headers.get('location')).toBe(
      '/account/invitations',
    );
    const account = await person.page('/account/invitations');
    expect(account.html).toContain('Acme Labs');
    const row = account.forms.find((f) => f.fields.invitation_id === invitation.id)!;
    const declined = await person.submit(row, {}, { name: 'decision', value: 'decline' });
    expect(declined.status).toBe(200);
    expect(await declined.text()).toContain('You declined the invitation to join <strong>Acme Labs</strong>');
    expect((await api(`/v1/invitations/${invitation.id}`)).json.data).toMatchObject({ status: 'declined', user_id: null });
    expect(await memberEmails()).not.toContain('viewer@beta.test');
    expect((await person.page(link)).response.status).toBe(410);
    // An answered invitation is gone from the list, and another person's invitation is not theirs to answer.
    expect((await person.page('/account/invitations')).html).toContain('id="no-invitations"');
    const someoneElse = await invite(`someone-${n++}@example.test`);
    expect((await person.submit(row, { invitation_id: someoneElse.invitation.id }, { name: 'decision', value: 'accept' })).status).toBe(
      404,
    );

    // Invited again, they accept from the account page.
    const again = await invite('viewer@beta.test', 'member');
    const next = (await person.page('/account/invitations')).forms.find((f) => f.fields.invitation_id === again.invitation.id)!;
    expect((await person.submit(next, {}, { name: 'decision', value: 'accept' })).status).toBe(200);
    expect((await api('/v1/users?email=viewer@beta.test')).json.data).toMatchObject([{ role: 'member' }]);

    // Without an account, the link alone declines (the password field is not needed for that).
    const stranger = await invite(`stranger-${n++}@example.test`);
    const visitor = browser();
    const form = decisionForm((await visitor.page(stranger.link)).html)!;
    const refused = await visitor.submit(form, {}, { name: 'decision', value: 'decline' });
    expect(refused.status).toBe(200);
    expect((await api(`/v1/invitations/${stranger.invitation.id}`)).json.data.status).toBe('declined');
    expect(
      await server.db.selectFrom('users').select('id').where('email', '=', stranger.invitation.email).executeTakeFirst(),
    ).toBeUndefined();
  });

  it('a revoked, expired or unknown link leads to an error page and accepts nothing', async () => {
    const revoked = await invite(`revoked-${n++}@example.test`);
    const person = browser();
    const form = decisionForm((await person.page(revoked.link)).html)!;
    expect((await api(`/v1/invitations/${revoked.invitation.id}`, { method: 'DELETE' })).status).toBe(204);
    const afterRevoke = await person.page(revoked.link);
    expect(afterRevoke.response.status).toBe(410);
    expect(afterRevoke.html).toContain('withdrawn');
    // A form loaded before the revocation is refused too.
    expect((await person.submit(form, { password: 'a-long-enough-password' }, { name: 'decision', value: 'accept' })).status).toBe(410);
    expect(
      await server.db.selectFrom('users').select('id').where('email', '=', revoked.invitation.email).executeTakeFirst(),
    ).toBeUndefined();

    const expiring = await invite(`expiring-${n++}@example.test`);
    await server.db
      .updateTable('organization_invitations')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('id', '=', expiring.invitation.id)
      .execute();
    const expired = await person.page(expiring.link);
    expect(expired.response.status).toBe(410);
    expect(expired.html).toContain('expired');

    for (const path of ['/invitations?token=sc_inv_unknown', '/invitations', `${revoked.link}x`]) {
      const unknown = await person.page(path);
      expect(unknown.response.status, path).toBe(404);
      expect(unknown.html).toContain('not valid');
    }
  });

  it('signed in as another account: says the invitation is for another address, reveals nothing else, and offers to sign out', async () => {
    const email = `intended-${n++}@example.test`;
    const { link, invitation } = await invite(email, 'admin');
    const person = browser();
    await person.login('/login', 'admin@beta.test');
    const wrong = await person.page(link);
    expect(wrong.response.status).toBe(403);
    expect(wrong.html).toContain('different email address');
    for (const secret of ['Acme Labs', email, 'admin<']) expect(wrong.html).not.toContain(secret);
    expect(decisionForm(wrong.html)).toBeUndefined();
    // A forced answer changes nothing.
    const forced = await person.request('/invitations', {
      form: { csrf_token: wrong.forms[0]!.fields.csrf_token!, token: wrong.forms[0]!.fields.token!, decision: 'accept' },
    });
    expect(forced.status).toBe(403);
    expect((await api(`/v1/invitations/${invitation.id}`)).json.data.status).toBe('pending');

    const signOut = wrong.forms.find((f) => f.buttons.some((b) => b.value === 'sign_out'))!;
    const out = await person.submit(signOut, {}, { name: 'decision', value: 'sign_out' });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe(link);
    // Signed out, the same link offers to create the invited email's account.
    expect(decisionForm((await person.page(link)).html)!.fields).toHaveProperty('password');
  });

  it('refuses answers without this browser’s CSRF token (403)', async () => {
    const { link, invitation } = await invite(`csrf-${n++}@example.test`);
    const person = browser();
    const form = decisionForm((await person.page(link)).html)!;
    const fields = { token: form.fields.token!, decision: 'accept', password: 'a-long-enough-password' };
    expect((await person.request('/invitations', { form: fields })).status).toBe(403);
    expect((await person.request('/invitations', { form: { ...fields, csrf_token: 'forged' } })).status).toBe(403);
    const other = browser();
    const otherForm = decisionForm((await other.page(link)).html)!;
    expect((await person.request('/invitations', { form: { ...fields, csrf_token: otherForm.fields.csrf_token! } })).status).toBe(403);
    expect((await browser().request('/account/invitations', { form: { invitation_id: invitation.id, decision: 'accept' } })).status).toBe(
      403,
    );
    expect((await api(`/v1/invitations/${invitation.id}`)).json.data.status).toBe('pending');
  });

  describe('in Chromium', () => {
    let chromiumBrowser: Chromium;
    beforeAll(async () => {
      chromiumBrowser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
      });
    }, 60_000);
    afterAll(async () => {
      await chromiumBrowser?.close();
    });

    it('a new person fills in the form and joins; declining needs no password', async () => {
      const email = `chromium-${n++}@example.test`;
      const { link } = await invite(email, 'member', 'Chrome Person');
      const context = await chromiumBrowser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${server.url}${link}`);
        expect(await page.locator('#organization').textContent()).toBe('Acme Labs');
        expect(await page.inputValue('#name')).toBe('Chrome Person');
        await page.fill('#password', 'chromium-password-1');
        await page.click('button[value="accept"]');
        await page.waitForSelector('text=Welcome to Acme Labs');
        expect((await api(`/v1/users?email=${email}`)).json.data).toMatchObject([{ role: 'member', name: 'Chrome Person' }]);

        const declining = await invite(`chromium-decline-${n++}@example.test`);
        const other = await chromiumBrowser.newContext();
        const second = await other.newPage();
        await second.goto(`${server.url}${declining.link}`);
        await second.click('button[value="decline"]');
        await second.waitForSelector('text=Invitation declined');
        await other.close();
        expect((await api(`/v1/invitations/${declining.invitation.id}`)).json.data.status).toBe('declined');
      } finally {
        await context.close();
      }
    });
  });
});
