import { describe, expect, it } from 'vitest';
import { findClientByClientId } from '../../src/oauth/clients.repo.js';
import { insertAccessToken, insertGrant, insertRefreshToken } from '../../src/oauth/tokens/tokens.repo.js';
import { generateToken, sha256 } from '../../src/security/tokens.js';
import { Browser, WEB, authorizeUrl, parseForms, usePagesServer } from './support.js';

/** "Authorized applications": remembered consents listed per user, revocable with a CSRF-protected POST. */

const server = usePagesServer();

const request = (state: string) =>
  authorizeUrl({
    response_type: 'code',
    client_id: WEB.clientId,
    redirect_uri: WEB.redirectUri,
    scope: 'devices:read readings:read',
    state,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });

/** A live grant with an access and a refresh token, as the token endpoint would leave it. */
async function liveGrant(email: string) {
  const client = (await findClientByClientId(server.db, WEB.clientId))!;
  const user = await server.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow();
  const grantId = await insertGrant(server.db, {
    organizationId: client.organization_id,
    clientPk: client.id,
    userId: user.id,
    grantType: 'authorization_code',
    scopes: ['devices:read'],
    scopeDisplay: 'devices:read',
  });
  const access = sha256(generateToken('sc_at_'));
  const refresh = sha256(generateToken('sc_rt_'));
  const now = new Date();
  await insertAccessToken(server.db, {
    tokenHash: access,
    grantId,
    organizationId: client.organization_id,
    clientPk: client.id,
    userId: user.id,
    scopes: ['devices:read'],
    scopeDisplay: 'devices:read',
    createdAt: now,
    expiresAt: new Date(now.getTime() + 3600_000),
  });
  await insertRefreshToken(server.db, {
    tokenHash: refresh,
    grantId,
    organizationId: client.organization_id,
    createdAt: now,
    expiresAt: null,
  });
  return { grantId, access, refresh };
}

describe('/account/authorized-applications', () => {
  it('asks to sign in, then lists approved applications with their scopes', async () => {
    const browser = new Browser(server.url);
    const first = await browser.page('/account/authorized-applications');
    expect(first.forms.some((f) => 'password' in f.fields)).toBe(true);
    await browser.login('/account/authorized-applications', 'viewer@acme.test');
    const empty = await browser.page('/account/authorized-applications');
    expect(empty.html).toContain('id="no-applications"');
    expect(empty.response.headers.get('cache-control')).toBe('no-store');

    const consent = await browser.page(request('a'));
    const form = consent.forms.find((f) => f.buttons.some((b) => b.name === 'decision'))!;
    await browser.submit(form, {}, { name: 'decision', value: 'allow' });

    const listed = await browser.page('/account/authorized-applications');
    expect(listed.html).toContain('Acme Dashboard');
    expect(listed.html).toContain('<code>devices:read</code>');
    expect(listed.html).toContain('<code>readings:read</code>');
    expect(listed.forms.find((f) => f.action === '/account/authorized-applications/revoke')?.fields.client_id).toBe(WEB.clientId);
    // Another user sees nothing of it.
    const other = new Browser(server.url);
    await other.login('/account/authorized-applications', 'member@acme.test');
    expect((await other.page('/account/authorized-applications')).html).toContain('id="no-applications"');
  });

  it('revoking deletes the consent, revokes the grants and tokens, and the next request asks again', async () => {
    const browser = new Browser(server.url);
    await browser.login(request('b'), 'admin@acme.test');
    const consent = await browser.page(request('b'));
    await browser.submit(
      consent.forms.find((f) => f.buttons.some((b) => b.name === 'decision'))!,
      {},
      { name: 'decision', value: 'allow' },
    );
    expect((await browser.request(request('skip'))).status).toBe(302); // remembered
    const grant = await liveGrant('admin@acme.test');
    const untouched = await liveGrant('viewer@acme.test');

    const listed = await browser.page('/account/authorized-applications');
    const revokeForm = listed.forms.find(
      (f) => f.action === '/account/authorized-applications/revoke' && f.fields.client_id === WEB.clientId,
    )!;

    // Without the CSRF token: refused, nothing changes.
    const { csrf_token: _t, ...noToken } = revokeForm.fields;
    expect((await browser.request(revokeForm.action, { form: noToken })).status).toBe(403);
    expect(await server.db.selectFrom('oauth_consents').select('client_pk').execute()).not.toHaveLength(0);

    const revoked = await browser.submit(revokeForm);
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get('location')).toBe(`/account/authorized-applications?revoked=${WEB.clientId}`);
    const after = await browser.page(revoked.headers.get('location')!);
    expect(after.html).toContain('Access for Acme Dashboard has been revoked.');
    expect(after.html).toContain('id="no-applications"');

    const grantRow = await server.db
      .selectFrom('oauth_grants')
      .select('revoked_at')
      .where('id', '=', grant.grantId)
      .executeTakeFirstOrThrow();
    expect(grantRow.revoked_at).not.toBeNull();
    const access = await server.db
      .selectFrom('oauth_access_tokens')
      .select('revoked_at')
      .where('token_hash', '=', grant.access)
      .executeTakeFirstOrThrow();
    expect(access.revoked_at).not.toBeNull();
    const refresh = await server.db
      .selectFrom('oauth_refresh_tokens')
      .select('revoked_at')
      .where('token_hash', '=', grant.refresh)
      .executeTakeFirstOrThrow();
    expect(refresh.revoked_at).not.toBeNull();
    // Another user's grant for the same client is not touched.
    const other = await server.db
      .selectFrom('oauth_grants')
      .select('revoked_at')
      .where('id', '=', untouched.grantId)
      .executeTakeFirstOrThrow();
    expect(other.revoked_at).toBeNull();

    // Consent is gone: the page is shown again.
    const again = await browser.request(request('c'));
    expect(again.status).toBe(200);
    expect(parseForms(await again.text()).some((f) => f.buttons.some((b) => b.name === 'decision'))).toBe(true);
  });

  it('revoking an unknown application is a 404 page', async () => {
    const browser = new Browser(server.url);
    await browser.login('/account/authorized-applications', 'member@acme.test');
    const { forms } = await browser.page('/account/authorized-applications');
    const signOut = forms.find((f) => f.action === '/logout')!;
    const response = await browser.request('/account/authorized-applications/revoke', {
      form: { csrf_token: signOut.fields.csrf_token!, client_id: 'nope' },
    });
    expect(response.status).toBe(404);
  });
});

describe('/v1/authorized-applications (bearer)', () => {
  /** Consents through the pages and exchanges the code at the token endpoint. */
  async function userTokens(email: string) {
    const { createHash, randomBytes } = await import('node:crypto');
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const url = authorizeUrl({
      response_type: 'code',
      client_id: WEB.clientId,
      redirect_uri: WEB.redirectUri,
      scope: 'devices:read offline_access',
      state: 't',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      prompt: 'consent',
    });
    const browser = new Browser(server.url);
    await browser.login(url, email);
    const consent = await browser.page(url);
    const allowed = await browser.submit(
      consent.forms.find((f) => f.buttons.some((b) => b.name === 'decision'))!,
      {},
      { name: 'decision', value: 'allow' },
    );
    const code = new URL(allowed.headers.get('location')!).searchParams.get('code')!;
    const response = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${WEB.clientId}:${WEB.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: WEB.redirectUri, code_verifier: verifier }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as { access_token: string; refresh_token: string };
  }

  it('lists the caller’s applications and DELETE revokes them, killing the token at once', async () => {
    const tokens = await userTokens('member@acme.test');
    const auth = { authorization: `Bearer ${tokens.access_token}` };
    const list = await fetch(`${server.url}/v1/authorized-applications`, { headers: auth });
    expect(list.status).toBe(200);
    const body = (await list.json()) as { data: { id: string; name: string; scopes: string[]; links: { self: string } }[] };
    expect(body.data.map((a) => a.id)).toEqual([WEB.clientId]);
    expect(body.data[0]).toMatchObject({ name: 'Acme Dashboard', scopes: ['devices:read', 'offline_access'] });
    expect(body.data[0]!.links.self).toBe(`${server.url}/v1/authorized-applications/${WEB.clientId}`);

    const jsonApi = await fetch(`${server.url}/v1/authorized-applications`, { headers: { ...auth, accept: 'application/vnd.api+json' } });
    expect(((await jsonApi.json()) as { data: { type: string }[] }).data[0]!.type).toBe('authorized-applications');

    expect((await fetch(`${server.url}/v1/authorized-applications/nope`, { method: 'DELETE', headers: auth })).status).toBe(404);
    const revoked = await fetch(`${server.url}/v1/authorized-applications/${WEB.clientId}`, { method: 'DELETE', headers: auth });
    expect(revoked.status).toBe(204);
    // The revoked grant's access token stops working immediately, and its refresh token too.
    expect((await fetch(`${server.url}/v1/authorized-applications`, { headers: auth })).status).toBe(401);
    const refresh = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${WEB.clientId}:${WEB.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    });
    expect(refresh.status).toBe(400);
    expect(((await refresh.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('a token without a person (client credentials) is refused with 403; no token is 401', async () => {
    const response = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'acme-m2m',
        client_secret: 'acme-m2m-secret',
        scope: 'app',
      }),
    });
    expect(response.status).toBe(200);
    const { access_token } = (await response.json()) as { access_token: string };
    // acme-m2m is bound to viewer@acme.test (SmartSense): its tokens act for that person, but are not them.
    const bound = await fetch(`${server.url}/v1/authorized-applications`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(bound.status).toBe(403);
    const revoke = await fetch(`${server.url}/v1/authorized-applications/${WEB.clientId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(revoke.status).toBe(403);
    expect((await fetch(`${server.url}/v1/authorized-applications`)).status).toBe(401);
  });
});
