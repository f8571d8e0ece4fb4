import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, postForm, provisioningYaml, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * Sonicu's document (seeds/000) replayed against the SPEC §7 example, host and credentials
 * substituted: the password grant posted as the document's JSON body (`scope: '*'`), the bearer
 * response with `expires_in`, `access_token` and `refresh_token`, tokens that expire in a year, the
 * stored `refresh_token` used to get new ones, API calls with `Authorization: Bearer` and
 * `Accept: application/javascript` answered as JSON, the "limited set of endpoints by default,
 * alarms, calibration, users and groups on request" model (a client's allowed scopes), and the
 * errors of the token request in RFC 6749 §5.2 JSON.
 *
 * Not replayed here: the document's second part, the SQL read replica (SPEC §6, issue 16), which
 * has no endpoint yet.
 */

const YEAR = 31_536_000;
const DEVICE_TOKEN = 'sc_dev_acme0001000000000000000000000';

/** The document's body, with the SPEC §7 example's client and user. */
const DOCUMENTED = {
  grant_type: 'password',
  client_id: 'acme-password',
  client_secret: 'acme-password-secret',
  username: 'admin@acme.test',
  password: 'Adm1n-pass-acme',
  scope: '*',
};

/** A client with Sonicu's default access: sensors and their readings only. */
const LIMITED = {
  client_id: 'acme-sonicu-default',
  client_secret: 'acme-sonicu-default-secret',
  name: 'Sonicu default API access',
  grant_types: ['password', 'refresh_token'],
  scopes: ['devices:read', 'readings:read'],
  access_token_ttl: YEAR,
};

describe.each(backends)('Sonicu profile ($name)', (backend) => {
  let server: OAuthTestServer;
  let tempSensorId: string;

  beforeAll(async () => {
    server = await startOAuthServer({
      backend: backend.name,
      provisioning: provisioningYaml({ acme: { clients: [LIMITED] } }),
      // A spent refresh token presented again ends its grant at once (no double-submit grace).
      env: { OAUTH_REFRESH_REUSE_GRACE: '0' },
    });
    const ingest = await server.fetch('/v1/ingest', {
      method: 'POST',
      headers: { authorization: `Bearer ${DEVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        { sensor: 'temp', ts: '2026-06-01T00:00:00Z', value: 4.5 },
        { sensor: 'temp', ts: '2026-06-01T00:05:00Z', value: 5.25 },
      ]),
    });
    expect(ingest.status).toBe(200);
  });
  afterAll(async () => server?.stop());

  /** POST /oauth/token with an `application/json` body, as the document sends it. */
  const postJson = (body: unknown) =>
    server.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any });
  /** An API call with the document's headers. */
  const api = (path: string, token: string) =>
    server.fetch(path, { headers: { authorization: `Bearer ${token}`, accept: 'application/javascript' } });
  const token = async (body: Record<string, string> = DOCUMENTED) => {
    const answer = await json(await postJson(body));
    expect(answer.status).toBe(200);
    return answer.body as { access_token: string; refresh_token: string; expires_in: number; scope: string };
  };
  const introspect = async (value: string, clientId = 'acme-password', secret = 'acme-password-secret') =>
    (await json(await postForm(server, '/oauth/introspect', { token: value }, { authorization: basic(clientId, secret) }))).body;
  /** RFC 6749 §5.2: the status, `error`, a description, JSON, never cached. */
  const expectOAuthError = async (response: Response, status: number, error: string) => {
    const answer = await json(response);
    expect(answer.status).toBe(status);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body).toEqual({ error, error_description: expect.any(String) });
    return answer;
  };

  it('the documented JSON body → a bearer response with expires_in, access_token and refresh_token', async () => {
    const answer = await json(await postJson(DOCUMENTED));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body).toEqual({
      access_token: expect.stringMatching(/^sc_at_/),
      token_type: 'Bearer',
      expires_in: YEAR,
      refresh_token: expect.stringMatching(/^sc_rt_/),
      scope: '*',
      created_at: expect.any(Number),
    });
    expect(Math.abs(answer.body.created_at - Date.now() / 1000)).toBeLessThan(60);
    // `*` is every scope the admin holds through this client.
    const details = await introspect(answer.body.access_token);
    expect(details).toMatchObject({ active: true, client_id: 'acme-password', username: 'admin@acme.test' });
    expect(details.scope.split(' ')).toEqual(expect.arrayContaining(['devices:read', 'readings:read', 'alarms:read', 'users:read']));
  });

  it('tokens expire in a year: expires_in, the introspected exp − iat, and the token info', async () => {
    const tokens = await token();
    expect(tokens.expires_in).toBe(YEAR);
    const details = await introspect(tokens.access_token);
    expect(details.exp - details.iat).toBe(YEAR);
    const info = await json(await api('/oauth/token/info', tokens.access_token));
    expect(info.status).toBe(200);
    expect(info.body.expires_in).toBeGreaterThan(YEAR - 60);
    expect(info.body.expires_in).toBeLessThanOrEqual(YEAR);
    // The refresh token the document says to store is alive too.
    expect((await introspect(tokens.refresh_token)).active).toBe(true);
  });

  it('the stored refresh_token, posted as JSON the same way, gets new tokens; it rotates and a spent one ends the grant', async () => {
    const first = await token();
    const refreshed = await json(
      await postJson({
        grant_type: 'refresh_token',
        client_id: 'acme-password',
        client_secret: 'acme-password-secret',
        refresh_token: first.refresh_token,
      }),
    );
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toMatchObject({ token_type: 'Bearer', expires_in: YEAR, scope: '*' });
    expect(refreshed.body.access_token).not.toBe(first.access_token);
    expect(refreshed.body.refresh_token).toMatch(/^sc_rt_/);
    expect(refreshed.body.refresh_token).not.toBe(first.refresh_token);
    expect((await api('/v1/devices', refreshed.body.access_token)).status).toBe(200);

    // The first refresh token is spent: presenting it again is refused and revokes the whole grant.
    await expectOAuthError(
      await postJson({
        grant_type: 'refresh_token',
        client_id: 'acme-password',
        client_secret: 'acme-password-secret',
        refresh_token: first.refresh_token,
      }),
      400,
      'invalid_grant',
    );
    expect((await api('/v1/devices', refreshed.body.access_token)).status).toBe(401);
    expect((await introspect(refreshed.body.refresh_token)).active).toBe(false);
  });

  it('API calls with Authorization: Bearer and Accept: application/javascript are answered as JSON', async () => {
    const { access_token: accessToken } = await token();
    const devices = await json(await api('/v1/devices', accessToken));
    expect(devices.status).toBe(200);
    expect(devices.headers.get('content-type')).toMatch(/^application\/json/);
    expect(devices.body.data.map((d: { serial: string }) => d.serial)).toContain('ACME-0001');

    const sensors = await json(await api('/v1/sensors', accessToken));
    expect(sensors.headers.get('content-type')).toMatch(/^application\/json/);
    tempSensorId = sensors.body.data.find((s: { key: string }) => s.key === 'temp').id;

    const readings = await json(await api(`/v1/sensors/${tempSensorId}/readings?from=2026-06-01T00:00:00Z`, accessToken));
    expect(readings.status).toBe(200);
    expect(readings.headers.get('content-type')).toMatch(/^application\/json/);
    expect(readings.body.data.map((r: { value: number }) => r.value)).toEqual([4.5, 5.25]);

    const latest = await json(await api('/v1/readings?latest=true', accessToken));
    expect(latest.status).toBe(200);
    expect(latest.headers.get('content-type')).toMatch(/^application\/json/);
    expect(latest.body.data).toContainEqual(expect.objectContaining({ sensor_id: tempSensorId, value: 5.25 }));

    // With those headers, refusals are JSON too: no token, a token that is not one.
    const anonymous = await server.fetch('/v1/devices', { headers: { accept: 'application/javascript' } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const forged = await api('/v1/devices', 'sc_at_not-a-token');
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('the API is documented in Swagger: the OpenAPI document and its UI', async () => {
    const openapi = await json(await server.fetch('/openapi.json'));
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining(['/v1/readings', '/v1/sensors/{id}/readings', '/oauth/token']));
    expect((await server.fetch('/docs/')).status).toBe(200);
  });

  it('readings by default; alarms, calibrations, users and groups only for a client allowed them ("additional API access")', async () => {
    const extra = ['/v1/alarms', '/v1/calibrations', '/v1/users', '/v1/groups'];
    // The default client: the same documented request, scope '*', reaches sensors and readings only.
    const limited = await token({ ...DOCUMENTED, client_id: LIMITED.client_id, client_secret: LIMITED.client_secret });
    expect(limited).toMatchObject({ scope: '*', expires_in: YEAR });
    expect((await introspect(limited.access_token, LIMITED.client_id, LIMITED.client_secret)).scope).toBe('devices:read readings:read');
    for (const path of ['/v1/devices', '/v1/sensors', '/v1/readings?latest=true'])
      expect((await api(path, limited.access_token)).status).toBe(200);
    for (const path of extra) {
      const refused = await api(path, limited.access_token);
      expect(refused.status, path).toBe(403);
      expect(refused.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    }
    // A client granted the additional categories reaches them with the same request.
    const { access_token: full } = await token();
    for (const path of extra) expect((await api(path, full)).status, path).toBe(200);
  });

  it('errors of the token request are RFC 6749 JSON: wrong password, wrong client secret, missing fields', async () => {
    const without = (name: keyof typeof DOCUMENTED) => Object.fromEntries(Object.entries(DOCUMENTED).filter(([key]) => key !== name));
    await expectOAuthError(await postJson({ ...DOCUMENTED, password: 'not-the-password' }), 400, 'invalid_grant');
    await expectOAuthError(await postJson({ ...DOCUMENTED, username: 'nobody@acme.test' }), 400, 'invalid_grant');
    const wrongSecret = await expectOAuthError(await postJson({ ...DOCUMENTED, client_secret: 'not-the-secret' }), 401, 'invalid_client');
    expect(wrongSecret.headers.get('www-authenticate')).toMatch(/^Basic /);
    await expectOAuthError(await postJson({ ...DOCUMENTED, client_id: 'no-such-client' }), 401, 'invalid_client');
    await expectOAuthError(await postJson(without('client_secret')), 401, 'invalid_client');
    await expectOAuthError(await postJson(without('client_id')), 401, 'invalid_client');
    await expectOAuthError(await postJson(without('username')), 400, 'invalid_request');
    await expectOAuthError(await postJson(without('password')), 400, 'invalid_request');
    await expectOAuthError(await postJson(without('grant_type')), 400, 'invalid_request');
    await expectOAuthError(await postJson({ ...DOCUMENTED, grant_type: 'passwd' }), 400, 'unsupported_grant_type');
    await expectOAuthError(await postJson({ ...DOCUMENTED, scope: 'telepathy' }), 400, 'invalid_scope');
    await expectOAuthError(await postJson('{"grant_type": "password",'), 400, 'invalid_request');
    await expectOAuthError(await postJson(['grant_type', 'password']), 400, 'invalid_request');
  });
});
