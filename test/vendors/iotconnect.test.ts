import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/databases.js';
import { type OAuthTestServer, basic, passwordToken, postForm, startOAuthServer } from '../oauth/support/oauth-server.js';

/**
 * IoTConnect's document (seeds/004) replayed step by step against the SPEC §7 example
 * (organization acme, solution key `acme-solution-key`): the basic token, the login with it and
 * the solution key, the device list with the bearer token (the document's curl sends
 * `accept: text/plain`), the refresh, and each error status the document lists, in its JSON shape.
 */

const SOLUTION_KEY = 'acme-solution-key';

describe.each(backends)('IoTConnect profile ($name)', (backend) => {
  let server: OAuthTestServer;
  let basicToken: string;

  beforeAll(async () => {
    server = await startOAuthServer({ backend: backend.name });
  });
  afterAll(async () => server?.stop());

  const json = async (response: Response) => ({ status: response.status, headers: response.headers, body: (await response.json()) as any });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    server.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const login = (username = 'admin@acme.test', password = 'Adm1n-pass-acme', headers: Record<string, string> = {}) =>
    post('/api/v2/Auth/login', { username, password }, { authorization: `Basic ${basicToken}`, 'solution-key': SOLUTION_KEY, ...headers });
  const devices = (token: string, query = '') =>
    server.fetch(`/api/v1.1/Device${query}`, { headers: { accept: 'text/plain', authorization: `Bearer ${token}` } });
  const expectError = (answer: { status: number; body: any }, status: number) => {
    expect(answer.status).toBe(status);
    expect(answer.body).toMatchObject({ data: null, status, message: expect.any(String), error: expect.any(Array) });
  };

  it('step 1: POST /api/v2/Auth/basic-token → {data, status: 200, message}', async () => {
    const answer = await json(await server.fetch('/api/v2/Auth/basic-token', { method: 'POST' }));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ data: expect.any(String), status: 200, message: 'Basic token has been generated successfully' });
    basicToken = answer.body.data;
    expect(Buffer.from(basicToken, 'base64').toString()).toContain(':');
  });

  it('step 2: login with the basic token, solution key and JSON credentials → bearer tokens of 3600 s', async () => {
    const answer = await json(await login());
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      token_type: 'bearer',
      access_token: expect.stringMatching(/^sc_at_/),
      expires_in: 3600,
      refresh_token: expect.stringMatching(/^sc_rt_/),
      status: 200,
    });
    expect(answer.headers.get('cache-control')).toBe('no-store');
    // The token works on the canonical API too, as the admin it was issued for.
    const me = await server.fetch('/v1/me', { headers: { authorization: `Bearer ${answer.body.access_token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as any).data.email).toBe('admin@acme.test');
  });

  it('step 3: GET /api/v1.1/Device with the bearer token lists the devices, with HATEOAS links; the detail shows the attributes', async () => {
    const { access_token: token } = (await json(await login())).body;
    const list = await json(await devices(token));
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toMatch(/^application\/json/);
    expect(list.body).toMatchObject({ status: 200, message: expect.any(String), data: expect.any(Array) });
    const device = list.body.data.find((d: { uniqueId: string }) => d.uniqueId === 'ACME-0001');
    expect(device).toMatchObject({ displayName: 'Fridge 1', guid: expect.any(String) });
    expect(list.body.links).toContainEqual({ href: `${server.url}/api/v1.1/Device`, rel: 'self', method: 'GET' });
    expect(device.links).toContainEqual({ href: `${server.url}/api/v1.1/Device/${device.guid}`, rel: 'self', method: 'GET' });

    // A cursor that decodes but fits no list is the client's mistake (the hostile-inputs test found a 500).
    const badCursor = await json(
      await server.fetch('/api/v1.1/Device?cursor=eyJ2IjpbXX0', { headers: { authorization: `Bearer ${token}` } }),
    );
    expect(badCursor.status).toBe(400);
    expect(badCursor.body).toMatchObject({ status: 400, data: null });

    const detail = await json(await server.fetch(`/api/v1.1/Device/${device.guid}`, { headers: { authorization: `Bearer ${token}` } }));
    expect(detail.status).toBe(200);
    expect(detail.body.data[0].uniqueId).toBe('ACME-0001');
    expect(detail.body.data[0].attributes.map((a: { localName: string }) => a.localName)).toEqual(['hum', 'temp']);
  });

  it('lists filter, limit and sort by query parameters, and page through the next link', async () => {
    const { access_token: token } = (await json(await login())).body;
    const created = await server.fetch('/v1/devices', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ serial: 'ACME-0002', name: 'Fridge 2' }),
    });
    expect(created.status).toBe(201);
    const first = await json(await devices(token, '?pageSize=1&sortBy=uniqueId%20desc'));
    expect(first.body.data.map((d: { uniqueId: string }) => d.uniqueId)).toEqual(['ACME-0002']);
    const next = first.body.links.find((l: { rel: string }) => l.rel === 'next');
    expect(next.href.startsWith(`${server.url}/api/v1.1/Device?`)).toBe(true);
    const second = await json(await devices(token, new URL(next.href).search));
    expect(second.body.data.map((d: { uniqueId: string }) => d.uniqueId)).toEqual(['ACME-0001']);
    const search = await json(await devices(token, '?searchText=fridge%202'));
    expect(search.body.data.map((d: { uniqueId: string }) => d.uniqueId)).toEqual(['ACME-0002']);
    expectError(await json(await devices(token, '?sortBy=password')), 400);
    expectError(await json(await devices(token, '?pageSize=0')), 400);
  });

  it('refresh: POST /api/v2/Auth/refresh-token rotates; a spent refresh token is refused', async () => {
    const first = (await json(await login())).body;
    const headers = { authorization: `Basic ${basicToken}`, 'solution-key': SOLUTION_KEY };
    const refreshed = await json(await post('/api/v2/Auth/refresh-token', { refreshToken: first.refresh_token }, headers));
    expect(refreshed.status).toBe(200);
    expect(refreshed.body).toMatchObject({ token_type: 'bearer', expires_in: 3600, status: 200 });
    expect(refreshed.body.refresh_token).not.toBe(first.refresh_token);
    expect((await devices(refreshed.body.access_token)).status).toBe(200);
    expectError(await json(await post('/api/v2/Auth/refresh-token', { refreshToken: first.refresh_token }, headers)), 401);
    expectError(await json(await post('/api/v2/Auth/refresh-token', {}, headers)), 400);
  });

  it('answers the documented errors in its JSON shape: 400, 401, 403, 404, 405', async () => {
    // 400: a malformed request (no password, no solution key, not JSON).
    expectError(
      await json(
        await post(
          '/api/v2/Auth/login',
          { username: 'admin@acme.test' },
          { authorization: `Basic ${basicToken}`, 'solution-key': SOLUTION_KEY },
        ),
      ),
      400,
    );
    expectError(
      await json(await post('/api/v2/Auth/login', { username: 'a', password: 'b' }, { authorization: `Basic ${basicToken}` })),
      400,
    );
    expectError(
      await json(
        await server.fetch('/api/v2/Auth/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Basic ${basicToken}`, 'solution-key': SOLUTION_KEY },
          body: '{"username":',
        }),
      ),
      400,
    );
    // 401: wrong password, wrong basic token, unknown solution key, no or a bad bearer token.
    expectError(await json(await login('admin@acme.test', 'wrong-password')), 401);
    expectError(await json(await login('admin@acme.test', 'Adm1n-pass-acme', { authorization: basic('someone', 'else') })), 401);
    expectError(await json(await login('admin@acme.test', 'Adm1n-pass-acme', { 'solution-key': 'not-a-solution-key' })), 401);
    expectError(await json(await server.fetch('/api/v1.1/Device')), 401);
    const badBearer = await json(await devices('sc_at_not-a-token'));
    expectError(badBearer, 401);
    expect(badBearer.headers.get('www-authenticate')).toMatch(/^Bearer /);
    // 403: a valid token without devices:read.
    const app = await json(
      await postForm(
        server,
        '/oauth/token',
        { grant_type: 'client_credentials', scope: 'readings:read' },
        { authorization: basic('acme-m2m', 'acme-m2m-secret') },
      ),
    );
    expect(app.status).toBe(200);
    expectError(await json(await devices(app.body.access_token)), 403);
    // 404: no such device, another organization's device, no such path.
    const { access_token: token } = (await json(await login())).body;
    const acmeDevice = (await json(await devices(token))).body.data[0].guid;
    expectError(
      await json(
        await server.fetch('/api/v1.1/Device/00000000-0000-4000-8000-000000000000', { headers: { authorization: `Bearer ${token}` } }),
      ),
      404,
    );
    expectError(await json(await server.fetch('/api/v1.1/Device/not-a-guid', { headers: { authorization: `Bearer ${token}` } })), 404);
    const globex = await passwordToken(server, 'globex-password', 'globex-password-secret', 'admin@globex.test', 'Adm1n-pass-globex');
    expectError(
      await json(await server.fetch(`/api/v1.1/Device/${acmeDevice}`, { headers: { authorization: `Bearer ${globex.access_token}` } })),
      404,
    );
    expectError(await json(await server.fetch('/api/v1.1/Nothing')), 404);
    // 405, with Allow.
    const wrongMethod = await json(
      await server.fetch('/api/v1.1/Device', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }),
    );
    expectError(wrongMethod, 405);
    expect(wrongMethod.headers.get('allow')).toContain('GET');
  });

  it('supports CORS for browser clients, the solution-key header included', async () => {
    const preflight = await server.fetch('/api/v2/Auth/login', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, solution-key, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('solution-key');
    const answer = await server.fetch('/api/v2/Auth/basic-token', { method: 'POST', headers: { origin: 'https://app.example' } });
    expect(answer.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});
