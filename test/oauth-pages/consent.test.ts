import { describe, expect, it } from 'vitest';
import { ADMIN_TOOL, Browser, WEB, authorizeUrl, locationParams, parseForms, usePagesServer } from './support.js';

/** Login and consent pages driven like a browser without JavaScript (forms, cookies, redirects). */

const server = usePagesServer();

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const STATE = 'xyz ABC/+=&é';
const webRequest = (extra: Record<string, string | undefined> = {}) =>
  authorizeUrl({
    response_type: 'code',
    client_id: WEB.clientId,
    redirect_uri: WEB.redirectUri,
    scope: 'devices:read readings:read',
    state: STATE,
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    ...extra,
  });

/** Signs in at the authorization URL and returns the consent page it leads to. */
async function consentPageFor(browser: Browser, url: string, email: string) {
  const login = await browser.login(url, email);
  expect(login.status).toBe(303);
  expect(login.headers.get('location')).toBe(url);
  return browser.page(url);
}

const consentForm = (html: string) => parseForms(html).find((f) => f.buttons.some((b) => b.name === 'decision'));

describe('login form', () => {
  it('follows the SPEC §3 contract: email, password, one submit button, a CSRF token', async () => {
    const { html, forms, response } = await new Browser(server.url).page(webRequest());
    expect(response.status).toBe(200);
    expect(forms).toHaveLength(1);
    const [form] = forms;
    expect(Object.keys(form!.fields)).toEqual(expect.arrayContaining(['email', 'password', 'csrf_token', 'return_to']));
    expect(form!.buttons).toHaveLength(1);
    expect(html).toMatch(/<input[^>]*name="email"/);
    expect(html).toMatch(/<input[^>]*name="password"[^>]*type="password"/);
  });

  it('sets a signed HttpOnly SameSite=Lax session cookie, and forbids caching and framing', async () => {
    const response = await new Browser(server.url).request(webRequest());
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith('sc_session='));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(response.headers.get('x-frame-options')).toBe('DENY');
  });

  it('rejects a wrong password without revealing whether the account exists', async () => {
    const browser = new Browser(server.url);
    const wrong = await browser.login(webRequest(), 'viewer@acme.test', 'not-the-password');
    expect(wrong.status).toBe(400);
    const wrongText = await wrong.text();
    expect(wrongText).toContain('The email or password is incorrect.');
    const unknown = await browser.login(webRequest(), 'nobody@acme.test', 'whatever-password');
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain('The email or password is incorrect.');
  });

  it('refuses a login post without a valid CSRF token (403)', async () => {
    const browser = new Browser(server.url);
    const { forms } = await browser.page(webRequest());
    const form = forms[0]!;
    const missing = await browser.request('/login', {
      form: { email: 'viewer@acme.test', password: 'V1ewer-pass-acme', return_to: form.fields.return_to! },
    });
    expect(missing.status).toBe(403);
    const forged = await browser.submit(form, { email: 'viewer@acme.test', password: 'V1ewer-pass-acme', csrf_token: 'forged' });
    expect(forged.status).toBe(403);
    // A token from another browser's session does not work either.
    const other = new Browser(server.url);
    const otherForm = (await other.page(webRequest())).forms[0]!;
    const crossed = await browser.submit(form, {
      email: 'viewer@acme.test',
      password: 'V1ewer-pass-acme',
      csrf_token: otherForm.fields.csrf_token!,
    });
    expect(crossed.status).toBe(403);
    expect(browser.cookies.size).toBe(1);
  });

  it('never redirects to a foreign return_to after login', async () => {
    const browser = new Browser(server.url);
    const form = (await browser.page(webRequest())).forms[0]!;
    const response = await browser.submit(form, {
      email: 'viewer@acme.test',
      password: 'V1ewer-pass-acme',
      return_to: 'https://evil.example/',
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/account/authorized-applications');
  });
});

describe('consent', () => {
  it('shows the application, its privacy policy, each scope, and allow/deny buttons', async () => {
    const browser = new Browser(server.url);
    const { html, response } = await consentPageFor(
      browser,
      webRequest({ scope: 'devices:read readings:read offline_access' }),
      'viewer@acme.test',
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(html).toContain('Acme Dashboard');
    expect(html).toContain('Acme Labs');
    expect(html).toContain('href="https://acme.test/privacy"');
    for (const scope of ['devices:read', 'readings:read', 'offline_access']) expect(html).toContain(`data-scope="${scope}"`);
    expect(html).not.toContain('data-scope="alarms:read"');
    const form = consentForm(html)!;
    expect(
      form.buttons
        .filter((b) => b.name === 'decision')
        .map((b) => b.value)
        .sort(),
    ).toEqual(['allow', 'deny']);
    expect(form.fields.csrf_token).toBeTruthy();
  });

  it('allow → redirect with a code and the untouched state; deny → access_denied', async () => {
    const browser = new Browser(server.url);
    const { html } = await consentPageFor(browser, webRequest({ prompt: 'consent' }), 'member@acme.test');
    const form = consentForm(html)!;
    const allowed = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
    expect(allowed.status).toBe(303);
    const { base, params } = locationParams(allowed);
    expect(base).toBe(WEB.redirectUri);
    expect(params.get('code')).toMatch(/^sc_ac_/);
    expect(params.get('state')).toBe(STATE);
    expect(params.get('iss')).toBe(server.url);
    expect(allowed.headers.get('cache-control')).toBe('no-store');

    const second = await browser.page(webRequest({ prompt: 'consent', state: 'deny-state' }));
    const denied = await browser.submit(consentForm(second.html)!, {}, { name: 'decision', value: 'deny' });
    expect(denied.status).toBe(303);
    const deniedParams = locationParams(denied).params;
    expect(deniedParams.get('error')).toBe('access_denied');
    expect(deniedParams.get('state')).toBe('deny-state');
    expect(deniedParams.get('code')).toBeNull();
  });

  it('stores the code with the PKCE challenge, redirect URI, user and granted scopes', async () => {
    const browser = new Browser(server.url);
    const { html } = await consentPageFor(browser, webRequest({ prompt: 'consent', scope: 'readings:read' }), 'admin@acme.test');
    const allowed = await browser.submit(consentForm(html)!, {}, { name: 'decision', value: 'allow' });
    const code = locationParams(allowed).params.get('code')!;
    const { sha256 } = await import('../../src/security/tokens.js');
    const row = await server.db
      .selectFrom('oauth_authorization_codes')
      .selectAll()
      .where('code_hash', '=', sha256(code))
      .executeTakeFirstOrThrow();
    const admin = await server.db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      redirect_uri: WEB.redirectUri,
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
      user_id: admin.id,
      scopes: ['readings:read'],
      scope_display: 'readings:read',
    });
  });

  it('a consent post without a valid CSRF token is refused with 403 and no code', async () => {
    const browser = new Browser(server.url);
    const { html } = await consentPageFor(browser, webRequest({ prompt: 'consent' }), 'viewer@acme.test');
    const form = consentForm(html)!;
    const { csrf_token: _token, ...withoutToken } = form.fields;
    const missing = await browser.request(form.action, { form: { ...withoutToken, decision: 'allow' } });
    expect(missing.status).toBe(403);
    expect(missing.headers.get('location')).toBeNull();
    const wrong = await browser.submit(form, { csrf_token: 'AAAA' }, { name: 'decision', value: 'allow' });
    expect(wrong.status).toBe(403);
    // Another signed-in browser's token is bound to that browser's session.
    const other = new Browser(server.url);
    const otherPage = await consentPageFor(other, webRequest({ prompt: 'consent' }), 'viewer@acme.test');
    const crossed = await browser.submit(
      form,
      { csrf_token: consentForm(otherPage.html)!.fields.csrf_token! },
      { name: 'decision', value: 'allow' },
    );
    expect(crossed.status).toBe(403);
  });

  it('tampered hidden fields are validated again (redirect_uri swapped on the consent post → error page)', async () => {
    const browser = new Browser(server.url);
    const { html } = await consentPageFor(browser, webRequest({ prompt: 'consent' }), 'viewer@acme.test');
    const response = await browser.submit(
      consentForm(html)!,
      { redirect_uri: 'https://evil.example/cb' },
      { name: 'decision', value: 'allow' },
    );
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });

  it('a role lacking a requested scope cannot approve: the page says why and only offers deny', async () => {
    const browser = new Browser(server.url);
    const url = authorizeUrl({
      response_type: 'code',
      client_id: ADMIN_TOOL.clientId,
      redirect_uri: ADMIN_TOOL.redirectUri,
      scope: 'devices:read devices:write',
      state: 's1',
    });
    const { html } = await consentPageFor(browser, url, 'viewer@acme.test');
    const form = consentForm(html)!;
    expect(form.buttons.map((b) => b.value)).toEqual(['deny']);
    expect(html).toMatch(/your role in Acme Labs \(<strong>viewer<\/strong>\) does not include <code>devices:write<\/code>/);
    // Forcing allow anyway is refused.
    const forced = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
    expect(forced.status).toBe(303);
    const params = locationParams(forced).params;
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('code')).toBeNull();
    expect(params.get('state')).toBe('s1');
    // An admin may approve the same request.
    const admin = new Browser(server.url);
    const adminPage = await consentPageFor(admin, url, 'admin@acme.test');
    expect(
      consentForm(adminPage.html)!
        .buttons.map((b) => b.value)
        .sort(),
    ).toEqual(['allow', 'deny']);
  });

  it('the default scope (no scope parameter) is the client registration, all of which the role must hold', async () => {
    const browser = new Browser(server.url);
    const url = authorizeUrl({ response_type: 'code', client_id: ADMIN_TOOL.clientId, redirect_uri: ADMIN_TOOL.redirectUri, state: 's2' });
    const { html } = await consentPageFor(browser, url, 'member@acme.test');
    expect(consentForm(html)!.buttons.map((b) => b.value)).toEqual(['deny']);
    expect(html).toContain('<code>devices:write</code>, <code>users:write</code>');
  });

  it('a user of another organization cannot approve (access_denied)', async () => {
    const browser = new Browser(server.url);
    const { html } = await consentPageFor(browser, webRequest({ state: 'other-org' }), 'owner@globex.test');
    expect(html).toContain('not a member of <strong>Acme Labs</strong>');
    const form = consentForm(html)!;
    expect(form.buttons.map((b) => b.value)).toEqual(['deny']);
    const forced = await browser.submit(form, {}, { name: 'decision', value: 'allow' });
    expect(locationParams(forced).params.get('error')).toBe('access_denied');
  });

  it('remembers consent: the next request for the same or fewer scopes skips the page', async () => {
    const browser = new Browser(server.url);
    const first = await consentPageFor(browser, webRequest({ scope: 'devices:read readings:read alarms:read' }), 'viewer@acme.test');
    await browser.submit(consentForm(first.html)!, {}, { name: 'decision', value: 'allow' });

    const again = await browser.request(webRequest({ scope: 'readings:read devices:read', state: 'again' }));
    expect(again.status).toBe(302);
    const params = locationParams(again).params;
    expect(params.get('code')).toMatch(/^sc_ac_/);
    expect(params.get('state')).toBe('again');

    // More than was approved: the page is shown again.
    const more = await browser.request(webRequest({ scope: 'readings:read offline_access' }));
    expect(more.status).toBe(200);
    expect(consentForm(await more.text())).toBeDefined();
    // prompt=consent forces it.
    const forced = await browser.request(webRequest({ scope: 'readings:read', prompt: 'consent' }));
    expect(forced.status).toBe(200);
    // prompt=none with consent on file: straight back with a code; without: consent_required.
    const silent = await browser.request(webRequest({ scope: 'readings:read', prompt: 'none' }));
    expect(locationParams(silent).params.get('code')).toBeTruthy();
    const needed = await browser.request(webRequest({ scope: 'offline_access', prompt: 'none' }));
    expect(locationParams(needed).params.get('error')).toBe('consent_required');
  });

  it('redirect_uri may be omitted when the client registered exactly one; the code goes there', async () => {
    const browser = new Browser(server.url);
    const url = webRequest({ redirect_uri: undefined, prompt: 'consent' });
    const { html } = await consentPageFor(browser, url, 'admin@acme.test');
    expect(consentForm(html)!.fields.redirect_uri).toBe(WEB.redirectUri);
    const allowed = await browser.submit(consentForm(html)!, {}, { name: 'decision', value: 'allow' });
    expect(locationParams(allowed).base).toBe(WEB.redirectUri);
    expect(locationParams(allowed).params.get('code')).toMatch(/^sc_ac_/);
  });

  it('a tampered session cookie is no session: the login form is shown again', async () => {
    const browser = new Browser(server.url);
    const url = webRequest({ prompt: 'consent' });
    await browser.login(url, 'viewer@acme.test');
    const signedIn = await browser.page(url);
    expect(consentForm(signedIn.html)).toBeDefined();
    const cookie = browser.cookies.get('sc_session')!;
    const admin = new Browser(server.url);
    await admin.login(url, 'admin@acme.test');
    const adminSessionId = /^s2\.[^.]+\.([^.]+)\./.exec(decodeURIComponent(admin.cookies.get('sc_session')!))![1]!;
    // Swap in the admin's session id while keeping the viewer's signature.
    const decoded = decodeURIComponent(cookie);
    const forged = decoded.replace(/^(s2\.[^.]+\.)[^.]+/, `$1${adminSessionId}`);
    expect(forged).not.toBe(decoded);
    browser.cookies.set('sc_session', encodeURIComponent(forged));
    const after = await browser.page(url);
    expect(after.forms.some((f) => 'password' in f.fields)).toBe(true);
    expect(after.html).not.toContain('admin@acme.test');
  });

  it('use another account: signing out needs the CSRF token and returns to the login form', async () => {
    const browser = new Browser(server.url);
    const url = webRequest({ prompt: 'consent' });
    const { forms } = await consentPageFor(browser, url, 'viewer@acme.test');
    const logout = forms.find((f) => f.action === '/logout')!;
    const forged = await browser.request('/logout', { form: { return_to: url } });
    expect(forged.status).toBe(403);
    const response = await browser.submit(logout);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`/login?return_to=${encodeURIComponent(url)}`);
    const after = await browser.page(url);
    expect(after.forms.some((f) => 'password' in f.fields)).toBe(true);
  });
});

describe('brute-force protection', () => {
  it('backs off an account after 5 failures (429 with Retry-After), even for the right password', async () => {
    const browser = new Browser(server.url);
    const url = webRequest();
    for (let i = 0; i < 5; i++) {
      const response = await browser.login(url, 'member@acme.test', `wrong-${i}`);
      expect(response.status).toBe(400);
    }
    const blocked = await browser.login(url, 'member@acme.test');
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.headers.get('ratelimit')).toMatch(/r=0/);
    const html = await blocked.text();
    expect(html).toContain('Too many failed sign-in attempts');
    expect(parseForms(html).some((f) => 'password' in f.fields)).toBe(true);
    // Other accounts are unaffected.
    const other = await new Browser(server.url).login(url, 'admin@acme.test');
    expect(other.status).toBe(303);
  });
});
