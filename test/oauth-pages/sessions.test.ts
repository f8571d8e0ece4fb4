import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { saveMember } from '../../src/identity/accounts.js';
import { setMemberDeactivated } from '../../src/identity/members.repo.js';
import { purgeExpiredBrowserSessions } from '../../src/identity/sessions.repo.js';
import { sha256 } from '../../src/security/tokens.js';
import { serverBackends } from '../support/server.js';
import { Browser, type PagesServer, WEB, authorizeUrl, startPagesServer, usePagesServer } from './support.js';

/**
 * Browser sessions are rows in the database, and the row is the authority: logout, expiry, a
 * password change and deactivation end a session, even for a copy of the cookie; another node
 * sharing the database honours the same sessions.
 */

const consentRequest = authorizeUrl({
  response_type: 'code',
  client_id: WEB.clientId,
  redirect_uri: WEB.redirectUri,
  scope: 'devices:read',
  state: 's',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
  prompt: 'consent',
});

type Shown = 'login' | 'consent';

async function shown(browser: Browser, path = consentRequest): Promise<Shown> {
  const { forms, response } = await browser.page(path);
  expect(response.status).toBe(200);
  if (forms.some((f) => 'password' in f.fields)) return 'login';
  if (forms.some((f) => f.buttons.some((b) => b.name === 'decision'))) return 'consent';
  throw new Error('neither the login nor the consent page');
}

/** The session id inside the (signed) cookie value. */
const sessionIdOf = (browser: Browser): string =>
  /^s2\.[^.]+\.(bs_[^.]+)\./.exec(decodeURIComponent(browser.cookies.get('sc_session') ?? ''))?.[1] ?? '';

/** A second client holding a copy of the browser's cookie, as a thief would. */
function copyOf(browser: Browser, server: PagesServer): Browser {
  const copy = new Browser(server.url);
  for (const [name, value] of browser.cookies) copy.cookies.set(name, value);
  return copy;
}

async function signedIn(server: PagesServer, email: string): Promise<Browser> {
  const browser = new Browser(server.url);
  expect((await browser.login(consentRequest, email)).status).toBe(303);
  expect(await shown(browser)).toBe('consent');
  return browser;
}

const acmeId = async (server: PagesServer) =>
  (await server.db.selectFrom('organizations').select('id').where('slug', '=', 'acme').executeTakeFirstOrThrow()).id;

describe.each(serverBackends)('browser sessions on $name', (backend) => {
  const server = usePagesServer({ backend: backend.name });

  it('stores only the SHA-256 of the session id, for 12 hours; each sign-in gets a new id and ends the previous one', async () => {
    const browser = await signedIn(server, 'viewer@acme.test');
    const id = sessionIdOf(browser);
    expect(id).toMatch(/^bs_[A-Za-z0-9_-]{43}$/);
    const rows = await server.db
      .selectFrom('browser_sessions')
      .select(['id_hash', sql<number>`date_part('epoch', expires_at - created_at)`.as('lifetime')])
      .where('id_hash', 'in', [id, sha256(id)])
      .execute();
    expect(rows).toEqual([{ id_hash: sha256(id), lifetime: 12 * 3600 }]);

    // Signing in again in the same browser (the consent page's CSRF token) draws a new id and ends the old sign-in.
    const old = copyOf(browser, server);
    const csrf = (await browser.page(consentRequest)).forms.find((f) => f.action === '/logout')!.fields.csrf_token!;
    const again = await browser.request('/login', {
      form: { csrf_token: csrf, email: 'member@acme.test', password: 'Memb3r-pass-acme', return_to: consentRequest },
    });
    expect(again.status).toBe(303);
    expect(sessionIdOf(browser)).not.toBe(id);
    expect(await shown(browser)).toBe('consent');
    expect(await shown(old)).toBe('login');
  });

  it('logout ends the session: replaying the old cookie shows the login page, not the consent page', async () => {
    const browser = await signedIn(server, 'viewer@acme.test');
    const stolen = copyOf(browser, server);
    expect(await shown(stolen)).toBe('consent');
    const { forms } = await browser.page(consentRequest);
    const logout = forms.find((f) => f.action === '/logout')!;
    expect((await browser.submit(logout)).status).toBe(303);
    expect(await shown(browser)).toBe('login');
    expect(await shown(stolen)).toBe('login');
    expect(
      await server.db
        .selectFrom('browser_sessions')
        .select('id_hash')
        .where('id_hash', '=', sha256(sessionIdOf(stolen)))
        .execute(),
    ).toEqual([]);
  });

  it('a session past its lifetime is signed out, and the purge deletes it', async () => {
    const browser = await signedIn(server, 'viewer@acme.test');
    const hash = sha256(sessionIdOf(browser));
    await server.db
      .updateTable('browser_sessions')
      .set({ expires_at: sql<Date>`now() - interval '1 second'` })
      .where('id_hash', '=', hash)
      .execute();
    expect(await shown(browser)).toBe('login');
    expect(await purgeExpiredBrowserSessions(server.db)).toBeGreaterThanOrEqual(1);
    expect(await server.db.selectFrom('browser_sessions').select('id_hash').where('id_hash', '=', hash).execute()).toEqual([]);
    // The expired sign-in kept its nonce, so its login form still works.
    expect((await browser.login(consentRequest, 'viewer@acme.test')).status).toBe(303);
    expect(await shown(browser)).toBe('consent');
  });

  it('a password change ends every session of that user, and only of that user', async () => {
    const first = await signedIn(server, 'member@acme.test');
    const second = await signedIn(server, 'member@acme.test');
    const other = await signedIn(server, 'viewer@acme.test');
    const organizationId = await acmeId(server);
    // Saving the member without a new password (provisioning an unchanged file) keeps the sessions.
    await saveMember(server.db, organizationId, { email: 'member@acme.test', role: 'member' });
    expect(await shown(first)).toBe('consent');
    await saveMember(server.db, organizationId, { email: 'member@acme.test', role: 'member', password: 'Changed-pass-acme' });
    expect(await shown(first)).toBe('login');
    expect(await shown(second)).toBe('login');
    expect(await shown(other)).toBe('consent');
    expect((await first.login(consentRequest, 'member@acme.test', 'Changed-pass-acme')).status).toBe(303);
    expect(await shown(first)).toBe('consent');
  });

  it('deactivating a member ends their sessions', async () => {
    const browser = await signedIn(server, 'admin@acme.test');
    const organizationId = await acmeId(server);
    const admin = await server.db.selectFrom('users').select('id').where('email', '=', 'admin@acme.test').executeTakeFirstOrThrow();
    await setMemberDeactivated(server.db, organizationId, admin.id, new Date());
    try {
      expect(await shown(browser)).toBe('login');
    } finally {
      await setMemberDeactivated(server.db, organizationId, admin.id, null);
    }
  });

  it.runIf(backend.name === 'postgres')(
    'another node sharing the database honours the session, and logout on one ends it on both',
    async () => {
      const nodeB = await startPagesServer({ databaseUrl: server.databaseUrl });
      try {
        const browser = await signedIn(server, 'viewer@acme.test');
        const onB = new Browser(nodeB.url);
        for (const [name, value] of browser.cookies) onB.cookies.set(name, value);
        expect(await shown(onB)).toBe('consent');
        const { forms } = await browser.page(consentRequest);
        await browser.submit(forms.find((f) => f.action === '/logout')!);
        expect(await shown(onB)).toBe('login');
      } finally {
        await nodeB.stop();
      }
    },
  );
});
