import http from 'node:http';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, passwordToken, postForm, provisioningYaml, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * SmartSense's document (seeds/003) replayed against the SPEC §7 example, host and credentials
 * substituted: `POST /auth/oauth` with exactly the headers it lists (Accept, Content-Type,
 * Content-Length, Host), `grant_type=client_credentials` form-encoded and HTTP Basic client
 * authentication (RFC 6749 §4.4.2, also through a client library); credentials bound at creation
 * to an account (organization) and a user, with that user's data, read-only; the token as
 * `Authorization: Bearer …` on API calls; and the refusals: no Basic, a wrong secret, a wrong
 * grant type, an API call without a token.
 *
 * Clients: acme-m2m (SPEC §7, bound to the viewer) and acme-smartsense (bound to the admin, whose
 * role could write: its tokens still only read).
 */

const M2M = { id: 'acme-m2m', secret: 'acme-m2m-secret' };
const FEED = { id: 'acme-smartsense', secret: 'acme-smartsense-secret' };

const ADDITIONS = {
  acme: {
    clients: [
      {
        client_id: FEED.id,
        client_secret: FEED.secret,
        name: 'SmartSense partner feed',
        grant_types: ['client_credentials'],
        scopes: ['devices:read', 'devices:write', 'readings:read', 'alarms:read'],
        bound_user: 'admin@acme.test',
      },
    ],
  },
};

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

describe.each(backends)('SmartSense profile ($name)', (backend) => {
  let server: OAuthTestServer;
  let host: string;

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name, provisioning: provisioningYaml(ADDITIONS) });
    host = new URL(server.url).host;
  });
  afterAll(async () => server?.stop());

  /**
   * The document's request, with its headers set by hand (Host and Content-Length included, as
   * node:http sends them verbatim): any header may be replaced or, given undefined, left out.
   */
  const documented = (overrides: Record<string, string | undefined> = {}, body = 'grant_type=client_credentials', path = '/auth/oauth') =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string | number> = {
        Accept: 'application/json',
        'Content-Type': 'application/x-www-form-urlencoded',
        'Content-Length': Buffer.byteLength(body),
        Host: host,
        Authorization: basic(M2M.id, M2M.secret),
      };
      for (const [name, value] of Object.entries(overrides)) {
        if (value === undefined) delete headers[name];
        else headers[name] = value;
      }
      const url = new URL(server.url);
      const request = http.request({ hostname: url.hostname, port: url.port, path, method: 'POST', headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) }));
      });
      request.on('error', reject);
      request.end(body);
    });
  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any });
  const api = (path: string, token: string, init: RequestInit = {}) =>
    server.fetch(path, { ...init, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...init.headers } });
  const tokenOf = async (id = M2M.id, secret = M2M.secret) => {
    const answer = await documented({ Authorization: basic(id, secret) });
    expect(answer.status).toBe(200);
    return answer.body.access_token as string;
  };
  const userId = async (email: string) =>
    (await server.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirstOrThrow()).id;
  const expectOAuthError = (answer: Answer, status: number, error: string) => {
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toEqual({ error, error_description: expect.any(String) });
  };

  it('the documented request: POST /auth/oauth with its four headers, the form body and HTTP Basic → an access token', async () => {
    const answer = await documented();
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers['cache-control']).toBe('no-store');
    // Client credentials never carry a refresh token (RFC 6749 §4.4.3): a new token is asked for instead.
    expect(answer.body).toEqual({
      access_token: expect.stringMatching(/^sc_at_/),
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'app basic devices:read readings:read',
      created_at: expect.any(Number),
    });
    // The client the admin-bound registration describes: its registered read scopes, its write scope dropped.
    const feed = await documented({ Authorization: basic(FEED.id, FEED.secret) });
    expect(feed.status).toBe(200);
    expect(feed.body.scope).toBe('devices:read readings:read alarms:read');
  });

  it('the same request through a client library (oauth4webapi), as RFC 6749 §4.4.2 describes it', async () => {
    const as: oauth.AuthorizationServer = { issuer: server.url, token_endpoint: `${server.url}/auth/oauth` };
    const c: oauth.Client = { client_id: M2M.id };
    const response = await oauth.clientCredentialsGrantRequest(as, c, oauth.ClientSecretBasic(M2M.secret), new URLSearchParams(), {
      [oauth.allowInsecureRequests]: true,
    });
    const result = await oauth.processClientCredentialsResponse(as, c, response);
    expect(result.access_token).toMatch(/^sc_at_/);
    expect(result.token_type).toBe('bearer');
    expect((await api('/v1/devices', result.access_token)).status).toBe(200);
  });

  it("bound to an account and a user: that user's data, read-only", async () => {
    const viewer = await userId('viewer@acme.test');
    const token = await tokenOf();
    const me = await json(await api('/v1/me', token));
    expect(me.body.data).toMatchObject({
      kind: 'app_token',
      email: 'viewer@acme.test',
      role: 'viewer',
      user_id: viewer,
      client_id: M2M.id,
    });
    expect(me.body.data.scopes).toEqual(['devices:read', 'readings:read']);
    const info = await json(await api('/oauth/token/info', token));
    expect(info.body).toMatchObject({ resource_owner_id: viewer, application: { uid: M2M.id } });
    const introspection = await json(await postForm(server, '/oauth/introspect', { token }, { authorization: basic(M2M.id, M2M.secret) }));
    expect(introspection.body).toMatchObject({ active: true, client_id: M2M.id, scope: 'devices:read readings:read' });

    // All the data the user can see: the account's devices, sensors and readings …
    const devices = await json(await api('/v1/devices', token));
    expect(devices.status).toBe(200);
    expect(devices.body.data.map((d: { serial: string }) => d.serial)).toContain('ACME-0001');
    expect((await api('/v1/sensors', token)).status).toBe(200);
    expect((await api('/v1/readings?latest=true', token)).status).toBe(200);
    // … and nothing of another account.
    const globex = await passwordToken(server, 'globex-password', 'globex-password-secret', 'admin@globex.test', 'Adm1n-pass-globex');
    const foreign = await json(
      await api('/v1/devices', globex.access_token, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ serial: 'GLOBEX-0001', name: 'Globex fridge' }),
      }),
    );
    expect(foreign.status).toBe(201);
    expect((await api(`/v1/devices/${foreign.body.data.id}`, token)).status).toBe(404);
    expect(JSON.stringify((await json(await api('/v1/devices', token))).body)).not.toContain('GLOBEX-0001');

    // Read-only, even when the bound user's role could write.
    const feed = await tokenOf(FEED.id, FEED.secret);
    const feedMe = await json(await api('/v1/me', feed));
    expect(feedMe.body.data).toMatchObject({
      email: 'admin@acme.test',
      role: 'admin',
      scopes: ['devices:read', 'readings:read', 'alarms:read'],
    });
    expect((await api('/v1/alarms', feed)).status).toBe(200);
    for (const credential of [token, feed]) {
      const write = await api('/v1/devices', credential, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ serial: 'ACME-0100', name: 'Not created' }),
      });
      expect(write.status).toBe(403);
      expect(write.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    }
    // Asking for the write scope outright is refused too (invalid_scope), not silently granted.
    const wider = await documented({ Authorization: basic(FEED.id, FEED.secret) }, 'grant_type=client_credentials&scope=devices%3Awrite');
    expectOAuthError(wider, 400, 'invalid_scope');
  });

  it('API calls need Authorization: Bearer TOKEN_FROM_SMARTSENSE; without it (or with a bad one): 401 with WWW-Authenticate', async () => {
    const token = await tokenOf();
    expect((await api('/v1/devices', token)).status).toBe(200);
    const missing = await server.fetch('/v1/devices', { headers: { accept: 'application/json' } });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="sensorcloud"');
    // Not a token of this server, the client credentials instead of a token, the token without "Bearer".
    for (const authorization of ['Bearer sc_at_not-a-token-from-sensorcloud', basic(M2M.id, M2M.secret), token]) {
      const refused = await server.fetch('/v1/devices', { headers: { accept: 'application/json', authorization } });
      expect(refused.status, authorization).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer realm="sensorcloud"/);
    }
    // A token revoked (or expired) is refused the same way, naming the error.
    await postForm(server, '/oauth/revoke', { token }, { authorization: basic(M2M.id, M2M.secret) });
    const revoked = await api('/v1/devices', token);
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('errors of the token request: no Basic, a wrong secret, a wrong grant type (RFC 6749 §5.2)', async () => {
    for (const authorization of [undefined, basic(M2M.id, 'wrong-secret'), basic('no-such-client', 'x'), 'Basic !!!']) {
      const answer = await documented({ Authorization: authorization });
      expectOAuthError(answer, 401, 'invalid_client');
      expect(answer.headers['www-authenticate']).toMatch(/^Basic realm="sensorcloud"/);
    }
    expectOAuthError(
      await documented({}, 'grant_type=password&username=viewer%40acme.test&password=V1ewer-pass-acme'),
      400,
      'unauthorized_client',
    );
    expectOAuthError(await documented({}, 'grant_type=authorization_code&code=x'), 400, 'unauthorized_client');
    expectOAuthError(await documented({}, 'grant_type=client_credential'), 400, 'unsupported_grant_type');
    expectOAuthError(await documented({}, ''), 400, 'invalid_request');
    // Only POST: a GET is 405 with Allow, in the same JSON shape.
    const get = await json(
      await server.fetch('/auth/oauth', { headers: { accept: 'application/json', authorization: basic(M2M.id, M2M.secret) } }),
    );
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toContain('POST');
    expect(get.body).toMatchObject({ error: 'invalid_request' });
  });
});
