import { ClientError, GraphQLClient, gql } from 'graphql-request';
import * as kitsu from 'kitsu-core';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.js';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, postForm, provisioningYaml, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * Sensorberg's document (seeds/001) replayed against the SPEC §7 example, host and credentials
 * substituted, with the clients docs/migrating/sensorberg.md registers (acme-m2m with Sensorberg's
 * 1209600 s tokens, acme-users for user and password, acme-ext for external authentication
 * tokens):
 *
 * - every OAuth endpoint it lists: `$base_url/oauth/token` (POST, DELETE), `/oauth/authorize`
 *   (GET, and Doorkeeper's POST to approve and DELETE to deny), `/oauth/revoke` (RFC 7009),
 *   `/oauth/introspect` (RFC 7662), `/oauth/token/info`;
 * - its scopes: `me` (a user token), `app` (an app token), `basic` (an app token with the basic
 *   right), and an endpoint for people refusing an app token;
 * - the curl examples: the app token by client_credentials (and `user_credentials`, the name its
 *   prose gives that grant), and the login with an external authentication token in the query
 *   string;
 * - its sign-in ways for users: Sensorberg web (the login page of the authorization code flow),
 *   user and password, external_authentication_token;
 * - GraphQL as the app role with a client_credentials token;
 * - the JSON:API format, with `application/vnd.api+json` as Content-Type on POST and PUT.
 *
 * "$username, $password, $client_id and $client_secret must be stored … only via encrypted
 * transport": on the server's side, secrets and external authentication tokens are stored hashed
 * only (test/provisioning/provisioning.test.ts searches the whole database for them).
 *
 * The document's remaining sign-in way, "an external OAuth provider (OpenID, Cobot, etc ..)", is
 * replayed end to end against a real OpenID provider in headless Chromium by
 * test/external-signin/external-signin.test.ts ("authorization request → provider button →
 * sign-in at the provider → consent → code exchanged", and its refusals).
 */

const SENSORBERG_TTL = 1_209_600;
const M2M = { id: 'acme-m2m', secret: 'acme-m2m-secret' };
const USERS = { id: 'acme-users', secret: 'acme-users-secret' };
const REDIRECT_URI = 'http://127.0.0.1:9876/callback';
const JSON_API = 'application/vnd.api+json';

const ADDITIONS = {
  acme: {
    clients: [
      // docs/migrating/sensorberg.md: the app-scope client with Sensorberg's 14-day tokens …
      { client_id: M2M.id, access_token_ttl: SENSORBERG_TTL },
      // … and one for user and password.
      { client_id: USERS.id, client_secret: USERS.secret, grant_types: ['password', 'refresh_token'], scopes: ['me'] },
    ],
  },
};

type Doc = Record<string, any>;
// kitsu-core's declarations re-export without file extensions, which NodeNext cannot follow; its
// runtime module exports deserialise as documented. It links the document in place: given a copy.
const deserialise = (document: Doc) =>
  (kitsu as unknown as { deserialise(document: Doc): { data: Doc } }).deserialise(structuredClone(document));

describe.each(backends)('Sensorberg profile ($name)', (backend) => {
  let server: OAuthTestServer;
  let viewerId: string;
  const insecure = { execute: [client.allowInsecureRequests] };

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, provisioning: provisioningYaml(ADDITIONS) });
    viewerId = (await server.db.selectFrom('users').select('id').where('email', '=', 'viewer@acme.test').executeTakeFirstOrThrow()).id;
  });
  afterAll(async () => server?.stop());

  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any });
  const bearer = (token: string, headers: Record<string, string> = {}) => ({ headers: { authorization: `Bearer ${token}`, ...headers } });
  const tokenInfo = (token: string) => server.fetch('/oauth/token/info', bearer(token));
  /** The curl example's request: form-urlencoded body, client id and secret in it. */
  const appToken = async (scope = 'app', grantType = 'client_credentials') => {
    const answer = await json(
      await postForm(server, '/oauth/token', { grant_type: grantType, client_id: M2M.id, client_secret: M2M.secret, scope }),
    );
    expect(answer.status).toBe(200);
    return answer.body as Record<string, any>;
  };
  const userToken = async (username = 'admin@acme.test', password = 'Adm1n-pass-acme', scope = 'me') => {
    const answer = await json(
      await postForm(server, '/oauth/token', {
        grant_type: 'password',
        client_id: USERS.id,
        client_secret: USERS.secret,
        username,
        password,
        scope,
      }),
    );
    expect(answer.status).toBe(200);
    return answer.body as Record<string, any>;
  };
  const expectOAuthError = async (response: Response, status: number, error: string) => {
    const answer = await json(response);
    expect(answer.status).toBe(status);
    expect(answer.body).toEqual({ error, error_description: expect.any(String) });
    return answer;
  };

  describe('app tokens (machine to machine)', () => {
    it('the curl example: client_credentials posted as a form with scope=app → the documented response', async () => {
      const response = await server.fetch('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: M2M.id,
          client_secret: M2M.secret,
          scope: 'app',
        }).toString(),
      });
      const answer = await json(response);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      // The document's sample: access_token, token_type bearer (case-insensitive, RFC 6749 §7.1),
      // expires_in 1209600, scope app, created_at. No refresh_token: SPEC §3 issues one with the
      // password and authorization code grants only, as RFC 6749 §4.4.3 advises.
      expect(answer.body).toEqual({
        access_token: expect.stringMatching(/^sc_at_/),
        token_type: 'Bearer',
        expires_in: SENSORBERG_TTL,
        scope: 'app',
        created_at: expect.any(Number),
      });
      expect(answer.body.token_type.toLowerCase()).toBe('bearer');
      expect(Number.isInteger(answer.body.created_at)).toBe(true);
      expect(Math.abs(answer.body.created_at - Date.now() / 1000)).toBeLessThan(60);
      const me = await json(await server.fetch('/v1/me', bearer(answer.body.access_token)));
      expect(me.body.data).toMatchObject({ kind: 'app_token', client_id: M2M.id });
    });

    it('grant_type=user_credentials, as its prose names the machine-to-machine grant, is client_credentials', async () => {
      const body = await appToken('app', 'user_credentials');
      expect(body).toMatchObject({ token_type: 'Bearer', scope: 'app', expires_in: SENSORBERG_TTL, created_at: expect.any(Number) });
      expect(body.refresh_token).toBeUndefined();
      const info = (await json(await tokenInfo(body.access_token))).body;
      expect(info).toMatchObject({ scope: ['app'], application: { uid: M2M.id } });
      // Still only for clients allowed client_credentials, and not advertised.
      await expectOAuthError(
        await postForm(server, '/oauth/token', { grant_type: 'user_credentials', client_id: USERS.id, client_secret: USERS.secret }),
        400,
        'unauthorized_client',
      );
      const metadata = (await json(await server.fetch('/.well-known/oauth-authorization-server'))).body;
      expect(metadata.grant_types_supported).not.toContain('user_credentials');
      // Names inherited by every object are not aliases.
      await expectOAuthError(
        await postForm(server, '/oauth/token', { grant_type: 'toString', client_id: M2M.id, client_secret: M2M.secret }),
        400,
        'unsupported_grant_type',
      );
    });

    it('errors of the app token request: wrong secret, unknown client, no grant type', async () => {
      const wrong = await expectOAuthError(
        await postForm(server, '/oauth/token', { grant_type: 'client_credentials', client_id: M2M.id, client_secret: 'xxx', scope: 'app' }),
        401,
        'invalid_client',
      );
      expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic /);
      await expectOAuthError(
        await postForm(server, '/oauth/token', { grant_type: 'client_credentials', client_id: 'xxx', client_secret: 'xxx', scope: 'app' }),
        401,
        'invalid_client',
      );
      await expectOAuthError(
        await postForm(server, '/oauth/token', { client_id: M2M.id, client_secret: M2M.secret, scope: 'app' }),
        400,
        'invalid_request',
      );
    });
  });

  describe('scopes me, app and basic', () => {
    it('app: an app access token, with every scope the client is allowed; never a user token', async () => {
      const app = await appToken('app');
      const details = (
        await json(await postForm(server, '/oauth/introspect', { token: app.access_token }, { authorization: basic(M2M.id, M2M.secret) }))
      ).body;
      expect(details).toMatchObject({ active: true, client_id: M2M.id, sub: M2M.id });
      expect(details.username).toBeUndefined();
      expect((await server.fetch('/v1/devices', bearer(app.access_token))).status).toBe(200);
      // `app` on a user grant is refused.
      await expectOAuthError(
        await postForm(server, '/oauth/token', {
          grant_type: 'password',
          client_id: 'acme-password',
          client_secret: 'acme-password-secret',
          username: 'admin@acme.test',
          password: 'Adm1n-pass-acme',
          scope: 'app',
        }),
        400,
        'invalid_scope',
      );
    });

    it("me: a user access token with the person's role scopes; never an app token", async () => {
      const admin = await userToken();
      expect(admin.scope).toBe('me');
      expect(admin.refresh_token).toMatch(/^sc_rt_/);
      const me = (await json(await server.fetch('/v1/me', bearer(admin.access_token)))).body.data;
      expect(me).toMatchObject({ kind: 'user_token', email: 'admin@acme.test', role: 'admin' });
      expect(me.scopes).toContain('devices:write');
      const viewer = await userToken('viewer@acme.test', 'V1ewer-pass-acme');
      const viewerMe = (await json(await server.fetch('/v1/me', bearer(viewer.access_token)))).body.data;
      expect(viewerMe).toMatchObject({ kind: 'user_token', email: 'viewer@acme.test', role: 'viewer' });
      expect(viewerMe.scopes).not.toContain('devices:write');
      // `me` on client_credentials is refused.
      await expectOAuthError(
        await postForm(server, '/oauth/token', {
          grant_type: 'client_credentials',
          client_id: M2M.id,
          client_secret: M2M.secret,
          scope: 'me',
        }),
        400,
        'invalid_scope',
      );
      // An endpoint that requires a user token (a person's authorized applications) refuses an app token.
      expect((await server.fetch('/v1/authorized-applications', bearer(admin.access_token))).status).toBe(200);
      const refused = await json(await server.fetch('/v1/authorized-applications', bearer((await appToken('app')).access_token)));
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toMatch(/person/);
    });

    it('basic: an app access token with the basic right reads devices and readings, nothing else', async () => {
      const app = await appToken('basic');
      expect(app.scope).toBe('basic');
      const details = (
        await json(await postForm(server, '/oauth/introspect', { token: app.access_token }, { authorization: basic(M2M.id, M2M.secret) }))
      ).body;
      expect(details.scope).toBe('devices:read readings:read');
      expect((await server.fetch('/v1/devices', bearer(app.access_token))).status).toBe(200);
      expect((await server.fetch('/v1/readings?latest=true', bearer(app.access_token))).status).toBe(200);
      const alarms = await server.fetch('/v1/alarms', bearer(app.access_token));
      expect(alarms.status).toBe(403);
      expect(alarms.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
      // A client without the basic right cannot have it.
      await expectOAuthError(
        await postForm(
          server,
          '/oauth/token',
          { grant_type: 'client_credentials', scope: 'basic' },
          { authorization: basic('acme-rs', 'acme-rs-secret') },
        ),
        400,
        'invalid_scope',
      );
    });
  });

  describe('users', () => {
    it('the curl example: password grant with external_authentication_token in the query string, no secret', async () => {
      const query = new URLSearchParams({
        external_authentication_token: 'ext-acme-viewer',
        client_id: 'acme-ext',
        scope: 'me',
        grant_type: 'password',
      });
      const documented = await json(await server.fetch(`/oauth/token?${query}`, { method: 'POST' }));
      expect(documented.status).toBe(200);
      // The document shows the request's parameters as its "response"; the answer is a token response.
      expect(documented.body).toMatchObject({ token_type: 'Bearer', scope: 'me', access_token: expect.stringMatching(/^sc_at_/) });
      const info = (await json(await tokenInfo(documented.body.access_token))).body;
      expect(info).toMatchObject({ resource_owner_id: viewerId, application: { uid: 'acme-ext' } });

      // The same parameters in a form or JSON body; the secret may be sent, and must then be right.
      const inForm = await postForm(server, '/oauth/token', Object.fromEntries(query));
      expect(inForm.status).toBe(200);
      const inJson = await server.fetch('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(Object.fromEntries(query)),
      });
      expect(inJson.status).toBe(200);
      expect((await server.fetch(`/oauth/token?${query}&client_secret=acme-ext-secret`, { method: 'POST' })).status).toBe(200);
      await expectOAuthError(await server.fetch(`/oauth/token?${query}&client_secret=nope`, { method: 'POST' }), 401, 'invalid_client');
      const wrongToken = new URLSearchParams({ external_authentication_token: 'nope', client_id: 'acme-ext', grant_type: 'password' });
      await expectOAuthError(await server.fetch(`/oauth/token?${wrongToken}`, { method: 'POST' }), 400, 'invalid_grant');
      // Username and password do not work for a client in external-token mode.
      const userPass = await postForm(
        server,
        '/oauth/token',
        { grant_type: 'password', username: 'viewer@acme.test', password: 'V1ewer-pass-acme' },
        { authorization: basic('acme-ext', 'acme-ext-secret') },
      );
      expect(userPass.status).toBe(400);
      // Nor does a token without a client in that mode, or with a secret-less client that is not.
      await expectOAuthError(
        await server.fetch(`/oauth/token?${new URLSearchParams({ ...Object.fromEntries(query), client_id: USERS.id })}`, {
          method: 'POST',
        }),
        401,
        'invalid_client',
      );
    });

    it('Sensorberg web (user and password): /oauth/authorize with the login and consent pages; POST approves and DELETE denies', async () => {
      const browser = new Browser(server.url);
      const authorize = (state: string, extra: Record<string, string> = {}) =>
        `/oauth/authorize?${new URLSearchParams({ response_type: 'code', client_id: 'acme-web', redirect_uri: REDIRECT_URI, scope: 'devices:read', state, ...extra })}`;
      const consentForm = async (path: string) => {
        const { response, forms } = await browser.page(path);
        expect(response.status).toBe(200);
        const form = forms.find((f) => f.buttons.some((b) => b.name === 'decision'));
        if (!form) throw new Error('no consent form');
        return form;
      };

      // GET: the login page, then the consent page.
      const signedIn = await browser.login(authorize('s-1'), 'admin@acme.test', 'Adm1n-pass-acme');
      expect(signedIn.status).toBe(303);
      const approve = await consentForm(authorize('s-1'));
      expect(approve.action).toBe('/oauth/authorize');
      // POST /oauth/authorize: approve (Doorkeeper's "authorize"), with the form's fields.
      const approved = await browser.request('/oauth/authorize', { method: 'POST', form: { ...approve.fields, decision: 'allow' } });
      expect(approved.status).toBe(303);
      const callback = new URL(approved.headers.get('location') as string);
      expect(callback.origin + callback.pathname).toBe(REDIRECT_URI);
      expect(callback.searchParams.get('state')).toBe('s-1');
      const code = callback.searchParams.get('code') as string;
      const exchanged = await json(
        await postForm(
          server,
          '/oauth/token',
          { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI },
          { authorization: basic('acme-web', 'acme-web-secret') },
        ),
      );
      expect(exchanged.status).toBe(200);
      expect(exchanged.body).toMatchObject({ scope: 'devices:read', access_token: expect.stringMatching(/^sc_at_/) });

      // DELETE /oauth/authorize: deny (Doorkeeper's "deny"); the client hears access_denied.
      const deny = await consentForm(authorize('s-2', { prompt: 'consent' }));
      const denied = await browser.request('/oauth/authorize', { method: 'DELETE', form: deny.fields });
      expect(denied.status).toBe(303);
      const refusal = new URL(denied.headers.get('location') as string);
      expect(refusal.searchParams.get('error')).toBe('access_denied');
      expect(refusal.searchParams.get('state')).toBe('s-2');
      expect(refusal.searchParams.get('code')).toBeNull();
      // Neither is possible without the consent page's CSRF token (a form posted from elsewhere).
      const { csrf_token: _csrf, ...forged } = deny.fields;
      expect((await browser.request('/oauth/authorize', { method: 'POST', form: { ...forged, decision: 'allow' } })).status).toBe(403);
    });
  });

  describe('OAuth 2.0 endpoints', () => {
    it('GET /oauth/token/info: details of the token used for authentication (Doorkeeper shape)', async () => {
      const app = await appToken('app');
      const info = await json(await tokenInfo(app.access_token));
      expect(info.status).toBe(200);
      expect(info.body).toEqual({
        resource_owner_id: viewerId, // acme-m2m is bound to the viewer (SPEC §7)
        scope: ['app'],
        expires_in: expect.any(Number),
        application: { uid: M2M.id },
        created_at: app.created_at,
      });
      expect(info.body.expires_in).toBeGreaterThan(SENSORBERG_TTL - 60);
      const user = await userToken();
      expect((await json(await tokenInfo(user.access_token))).body).toMatchObject({ scope: ['me'], application: { uid: USERS.id } });
      const anonymous = await tokenInfo('sc_at_not-a-token');
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    });

    it('DELETE /oauth/token revokes the bearer token presented', async () => {
      const app = await appToken('app');
      const deleted = await server.fetch('/oauth/token', { method: 'DELETE', ...bearer(app.access_token) });
      expect(deleted.status).toBe(200);
      expect((await tokenInfo(app.access_token)).status).toBe(401);
      expect((await server.fetch('/v1/devices', bearer(app.access_token))).status).toBe(401);
      // Without a (valid) bearer token there is nothing to revoke.
      expect((await server.fetch('/oauth/token', { method: 'DELETE' })).status).toBe(401);
      expect((await server.fetch('/oauth/token', { method: 'DELETE', ...bearer(app.access_token) })).status).toBe(401);
    });

    it('POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662), with openid-client', async () => {
      const config = await client.discovery(new URL(server.url), USERS.id, USERS.secret, client.ClientSecretBasic(USERS.secret), insecure);
      expect(config.serverMetadata()).toMatchObject({
        token_endpoint: `${server.url}/oauth/token`,
        authorization_endpoint: `${server.url}/oauth/authorize`,
        revocation_endpoint: `${server.url}/oauth/revoke`,
        introspection_endpoint: `${server.url}/oauth/introspect`,
      });
      const tokens = await client.genericGrantRequest(config, 'password', {
        username: 'admin@acme.test',
        password: 'Adm1n-pass-acme',
        scope: 'me',
      });
      const active = await client.tokenIntrospection(config, tokens.access_token);
      expect(active).toMatchObject({
        active: true,
        client_id: USERS.id,
        username: 'admin@acme.test',
        token_type: 'Bearer',
        scope: expect.any(String),
      });
      expect(active.exp! - active.iat!).toBe(3600);
      expect((await client.tokenIntrospection(config, tokens.refresh_token as string, { token_type_hint: 'refresh_token' })).active).toBe(
        true,
      );
      // Revoking the refresh token ends the grant: both tokens are inactive.
      await client.tokenRevocation(config, tokens.refresh_token as string, { token_type_hint: 'refresh_token' });
      expect(await client.tokenIntrospection(config, tokens.access_token)).toEqual({ active: false });
      expect(await client.tokenIntrospection(config, tokens.refresh_token as string)).toEqual({ active: false });
      // An access token is revoked alone; unknown tokens are "revoked" too (RFC 7009 §2.2).
      const second = await userToken();
      await client.tokenRevocation(config, second.access_token);
      expect((await tokenInfo(second.access_token)).status).toBe(401);
      await client.tokenRevocation(config, 'sc_at_doesnotexist');
      // Both need the client's authentication; another client cannot revoke or see the token.
      await expectOAuthError(await postForm(server, '/oauth/revoke', { token: second.refresh_token }), 401, 'invalid_client');
      await expectOAuthError(await postForm(server, '/oauth/introspect', { token: second.refresh_token }), 401, 'invalid_client');
      const third = await userToken();
      expect(
        (
          await json(
            await postForm(server, '/oauth/introspect', { token: third.access_token }, { authorization: basic(M2M.id, M2M.secret) }),
          )
        ).body,
      ).toEqual({ active: false });
      await expectOAuthError(
        await postForm(server, '/oauth/revoke', { token: third.access_token }, { authorization: basic(M2M.id, M2M.secret) }),
        400,
        'unauthorized_client',
      );
      expect((await tokenInfo(third.access_token)).status).toBe(200);
    });
  });

  it('documentation: Swagger UI over the OpenAPI document of every API, the OAuth endpoints included', async () => {
    const openapi = await json(await server.fetch('/openapi.json'));
    expect(openapi.status).toBe(200);
    expect(Object.keys(openapi.body.paths)).toEqual(
      expect.arrayContaining(['/oauth/token', '/oauth/revoke', '/oauth/introspect', '/oauth/token/info', '/v1/devices', '/v1/locations']),
    );
    const ui = await server.fetch('/docs/');
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('GraphQL as the app role, with a client_credentials token', async () => {
    const app = await appToken('app');
    const graphql = (token?: string) =>
      new GraphQLClient(`${server.url}/graphql`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const data = await graphql(app.access_token).request<any>(gql`
      {
        me {
          kind
          clientId
        }
        devices(first: 10) {
          edges {
            node {
              serial
              sensors {
                key
              }
            }
          }
        }
      }
    `);
    expect(data.me).toEqual({ kind: 'app_token', clientId: M2M.id });
    const device = data.devices.edges.find((e: any) => e.node.serial === 'ACME-0001').node;
    expect(device.sensors.map((s: { key: string }) => s.key).sort()).toEqual(['hum', 'temp']);
    // The app token's scopes apply (basic: no alarms), and no token is no access.
    const codes = async (request: Promise<unknown>) => {
      const error = await request.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ClientError);
      return (error as ClientError).response.errors?.map((e) => e.extensions?.code);
    };
    const basicToken = (await appToken('basic')).access_token;
    expect(await codes(graphql(basicToken).request(gql`{ alarms { edges { node { id } } } }`))).toEqual(['FORBIDDEN']);
    expect(await codes(graphql().request(gql`{ me { kind } }`))).toEqual(['UNAUTHENTICATED']);
  });

  it('JSON:API: POST and PUT with Content-Type application/vnd.api+json; 415 for a media type the API does not take', async () => {
    const { access_token: token } = await userToken();
    const send = (method: string, path: string, body: unknown, contentType = JSON_API) =>
      server.fetch(path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': contentType, accept: JSON_API },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    const document = (response: { headers: Headers; body: Doc }) => {
      expect(response.headers.get('content-type')).toBe(JSON_API);
      expect(response.body.jsonapi).toEqual({ version: '1.1' });
      return response.body;
    };

    const created = await json(
      await send('POST', '/v1/locations', { data: { type: 'locations', attributes: { slug: 'sb-1', name: 'Sensorberg hall' } } }),
    );
    expect(created.status).toBe(201);
    const location = deserialise(document(created)).data;
    expect(location).toMatchObject({ type: 'locations', slug: 'sb-1', name: 'Sensorberg hall' });
    expect(created.headers.get('location')).toBe(`${server.url}/v1/locations/${location.id}`);

    const put = await json(
      await send('PUT', `/v1/locations/${location.id}`, { data: { type: 'locations', id: location.id, attributes: { name: 'Hall B' } } }),
    );
    expect(put.status).toBe(200);
    expect(deserialise(document(put)).data).toMatchObject({ id: location.id, slug: 'sb-1', name: 'Hall B' });
    const read = await json(await server.fetch(`/v1/locations/${location.id}`, bearer(token, { accept: JSON_API })));
    expect(deserialise(document(read)).data).toMatchObject({ name: 'Hall B' });

    // A device created in JSON:API form, its location as a relationship.
    const device = await json(
      await send('POST', '/v1/devices', {
        data: {
          type: 'devices',
          attributes: { serial: 'SB-0001', name: 'Sensorberg gateway' },
          relationships: { location: { data: { type: 'locations', id: location.id } } },
        },
      }),
    );
    expect(device.status).toBe(201);
    expect(deserialise(document(device)).data).toMatchObject({
      serial: 'SB-0001',
      location: { data: { type: 'locations', id: location.id } },
    });

    // JSON:API's content negotiation: 415 for its media type with parameters, and for a media type
    // the API does not take; 409 for a document of another type. Errors are JSON:API error objects.
    const expectErrors = (answer: { status: number; headers: Headers; body: Doc }, status: number) => {
      expect(answer.status).toBe(status);
      expect(document(answer).errors[0]).toMatchObject({ status: String(status) });
    };
    const body = { data: { type: 'locations', attributes: { slug: 'sb-2', name: 'Refused' } } };
    expectErrors(await json(await send('POST', '/v1/locations', body, `${JSON_API}; charset=utf-8`)), 415);
    expectErrors(await json(await send('PUT', `/v1/locations/${location.id}`, body, `${JSON_API}; version=1`)), 415);
    expectErrors(await json(await send('POST', '/v1/locations', '<location/>', 'application/xml')), 415);
    expectErrors(await json(await send('POST', '/v1/locations', { data: { ...body.data, type: 'devices' } })), 409);
    const notAcceptable = await server.fetch('/v1/locations', bearer(token, { accept: `${JSON_API}; charset=utf-8` }));
    expect(notAcceptable.status).toBe(406);
  });
});
