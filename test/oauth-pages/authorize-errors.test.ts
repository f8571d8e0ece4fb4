import { describe, expect, it } from 'vitest';
import { ADMIN_TOOL, Browser, SPA, WEB, authorizeUrl, locationParams, usePagesServer } from './support.js';

/**
 * RFC 6749 §4.1.2.1: problems with the client or its redirect URI are shown to the user (never
 * redirected); every other problem is redirected to the client with `error` and the untouched
 * `state`.
 */

const server = usePagesServer();

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const STATE = 'st/=&+ é?x y';
const valid = {
  response_type: 'code',
  client_id: WEB.clientId,
  redirect_uri: WEB.redirectUri,
  scope: 'devices:read',
  state: STATE,
  code_challenge: CHALLENGE,
  code_challenge_method: 'S256',
};

async function expectErrorPage(path: string, text: RegExp) {
  const response = await new Browser(server.url).request(path);
  expect(response.status).toBe(400);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('content-type')).toMatch(/text\/html/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(await response.text()).toMatch(text);
}

async function expectRedirectError(path: string, error: string, redirectBase = WEB.redirectUri) {
  const response = await new Browser(server.url).request(path);
  expect(response.status).toBe(302);
  const { base, params } = locationParams(response);
  expect(base).toBe(redirectBase.split('?')[0]);
  expect(params.get('error')).toBe(error);
  expect(params.get('error_description')).toBeTruthy();
  expect(params.get('state')).toBe(STATE);
  expect(params.get('iss')).toBe(server.url);
  expect(params.get('code')).toBeNull();
  return params;
}

describe('errors shown on a page (client or redirect URI not established)', () => {
  it('missing client_id', () => expectErrorPage(authorizeUrl({ ...valid, client_id: undefined }), /client_id is missing/));
  it('unknown client_id', () => expectErrorPage(authorizeUrl({ ...valid, client_id: 'nope' }), /not registered/));
  it('redirect_uri not registered', () =>
    expectErrorPage(authorizeUrl({ ...valid, redirect_uri: 'https://evil.example/cb' }), /not one it registered/));
  it('redirect_uri differing only by a trailing slash or case is not a match', async () => {
    await expectErrorPage(authorizeUrl({ ...valid, redirect_uri: `${WEB.redirectUri}/` }), /not one it registered/);
    await expectErrorPage(
      authorizeUrl({ ...valid, redirect_uri: WEB.redirectUri.replace('callback', 'Callback') }),
      /not one it registered/,
    );
    await expectErrorPage(authorizeUrl({ ...valid, redirect_uri: `${WEB.redirectUri}?x=1` }), /not one it registered/);
  });
  it('duplicated client_id or redirect_uri', async () => {
    await expectErrorPage(`${authorizeUrl(valid)}&client_id=${WEB.clientId}`, /more than once/);
    await expectErrorPage(`${authorizeUrl(valid)}&redirect_uri=${encodeURIComponent(WEB.redirectUri)}`, /more than once/);
  });
  it('client without any redirect URI', () =>
    expectErrorPage(authorizeUrl({ ...valid, client_id: 'acme-password', redirect_uri: undefined }), /no registered redirect URI/));
  it('missing redirect_uri with several registered', () =>
    expectErrorPage(authorizeUrl({ ...valid, client_id: ADMIN_TOOL.clientId, redirect_uri: undefined }), /redirect_uri is missing/));
  it('the error page escapes what it shows', async () => {
    const response = await new Browser(server.url).request(authorizeUrl({ ...valid, client_id: '<script>alert(1)</script>' }));
    expect(await response.text()).not.toContain('<script>alert(1)');
  });
});

describe('errors redirected to the client with error and state', () => {
  it('invalid_request: response_type missing', () =>
    expectRedirectError(authorizeUrl({ ...valid, response_type: undefined }), 'invalid_request'));
  it('unsupported_response_type: token (implicit) and others', async () => {
    await expectRedirectError(authorizeUrl({ ...valid, response_type: 'token' }), 'unsupported_response_type');
    await expectRedirectError(authorizeUrl({ ...valid, response_type: 'code id_token' }), 'unsupported_response_type');
  });
  it('unauthorized_client: client not allowed the authorization_code grant', () =>
    expectRedirectError(
      authorizeUrl({ ...valid, client_id: 'acme-m2m', redirect_uri: 'http://127.0.0.1:9876/m2m' }),
      'unauthorized_client',
      'http://127.0.0.1:9876/m2m',
    ));
  it('invalid_scope: unknown scope, and a scope the client may not have', async () => {
    await expectRedirectError(authorizeUrl({ ...valid, scope: 'devices:read bogus' }), 'invalid_scope');
    await expectRedirectError(authorizeUrl({ ...valid, scope: 'devices:write' }), 'invalid_scope');
    await expectRedirectError(authorizeUrl({ ...valid, scope: 'app' }), 'invalid_scope');
  });
  it('invalid_request: PKCE plain, unknown method, method without challenge, malformed challenge', async () => {
    await expectRedirectError(authorizeUrl({ ...valid, code_challenge_method: 'plain' }), 'invalid_request');
    await expectRedirectError(authorizeUrl({ ...valid, code_challenge_method: 'S512' }), 'invalid_request');
    await expectRedirectError(authorizeUrl({ ...valid, code_challenge: undefined }), 'invalid_request');
    await expectRedirectError(authorizeUrl({ ...valid, code_challenge: 'short' }), 'invalid_request');
    // code_challenge without a method means "plain" (RFC 7636 §4.3): refused.
    await expectRedirectError(authorizeUrl({ ...valid, code_challenge_method: undefined }), 'invalid_request');
  });
  it('invalid_request: public client without PKCE', async () => {
    const params = await expectRedirectError(
      authorizeUrl({
        ...valid,
        client_id: SPA.clientId,
        redirect_uri: SPA.redirectUri,
        scope: 'readings:read',
        code_challenge: undefined,
        code_challenge_method: undefined,
      }),
      'invalid_request',
      SPA.redirectUri,
    );
    expect(params.get('error_description')).toMatch(/PKCE/);
  });
  it('invalid_request: a parameter repeated', () => expectRedirectError(`${authorizeUrl(valid)}&scope=readings:read`, 'invalid_request'));
  it('access_denied from prompt=none when the user must still consent is not sent without a session: login_required', () =>
    expectRedirectError(authorizeUrl({ ...valid, prompt: 'none' }), 'login_required'));
  it('keeps the registered redirect URI query and returns the state byte for byte', async () => {
    const response = await new Browser(server.url).request(
      authorizeUrl({ ...valid, client_id: ADMIN_TOOL.clientId, redirect_uri: ADMIN_TOOL.redirectUri, response_type: 'token' }),
    );
    const location = response.headers.get('location')!;
    expect(location.startsWith(`${ADMIN_TOOL.redirectUri}&`)).toBe(true);
    const url = new URL(location);
    expect(url.searchParams.get('tenant')).toBe('acme');
    expect(url.searchParams.get('state')).toBe(STATE);
  });
  it('no state in, no state out', async () => {
    const response = await new Browser(server.url).request(authorizeUrl({ ...valid, state: undefined, response_type: 'token' }));
    expect(locationParams(response).params.has('state')).toBe(false);
  });
  it('a valid request without a session shows the login form, not a redirect', async () => {
    const response = await new Browser(server.url).request(authorizeUrl(valid));
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('name="email"');
    expect(html).toContain('name="password"');
    expect(html).toContain('Acme Dashboard');
  });
  it('the Bluesonde alias /oauth2/auth behaves the same', async () => {
    const response = await new Browser(server.url).request(authorizeUrl({ ...valid, response_type: 'token' }, '/oauth2/auth'));
    expect(response.status).toBe(302);
    expect(locationParams(response).params.get('error')).toBe('unsupported_response_type');
    const page = await new Browser(server.url).request(authorizeUrl({ ...valid, client_id: 'nope' }, '/oauth2/auth'));
    expect(page.status).toBe(400);
  });
});
