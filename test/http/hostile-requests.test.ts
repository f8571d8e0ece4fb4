import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawResponse, rawRequest } from '../support/http.js';
import { type TestServer, startTestServer } from '../support/server.js';

/**
 * The conventions every route inherits (issue 2): RFC 9457 problem+json for every error, the
 * right 4xx for each kind of bad request and never a 5xx, request ids, health, metrics, OpenAPI,
 * Swagger UI, security headers and CORS.
 */

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const send = (request: Parameters<typeof rawRequest>[1]) => rawRequest(server.url, request);

/** A problem document: the media type, the RFC 9457 members, and the status repeated in the body. */
function expectProblem(response: RawResponse, status: number): any {
  expect(response.status, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = response.json();
  expect(body).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  expect(body.request_id).toBe(response.headers['x-request-id']);
  return body;
}

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

describe('hostile and malformed requests get the right problem, never a 5xx', () => {
  it('malformed JSON → 400', async () => {
    for (const body of ['{bad json', '{"token": }', '[1, 2', '"unterminated', '{"a":1}{"b":2}', '\u0000']) {
      const body400 = expectProblem(await send({ method: 'POST', path: '/setup', headers: { 'content-type': JSON_TYPE }, body }), 400);
      expect(body400.detail).toMatch(/json/i);
    }
  });

  it('an empty JSON body → 400', async () => {
    expectProblem(await send({ method: 'POST', path: '/setup', headers: { 'content-type': JSON_TYPE }, body: '' }), 400);
  });

  it('JSON prototype poisoning → 400', async () => {
    expectProblem(
      await send({ method: 'POST', path: '/setup', headers: { 'content-type': JSON_TYPE }, body: '{"__proto__": {"admin": true}}' }),
      400,
    );
    expectProblem(
      await send({
        method: 'POST',
        path: '/setup',
        headers: { 'content-type': JSON_TYPE },
        body: '{"constructor": {"prototype": {"admin": true}}}',
      }),
      400,
    );
  });

  it('an unsupported content type → 415', async () => {
    for (const type of ['application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'image/png', 'nonsense']) {
      const body = expectProblem(await send({ method: 'POST', path: '/setup', headers: { 'content-type': type }, body: 'token=x' }), 415);
      expect(body.detail).toBeTruthy();
    }
    // text/plain is parsed (as a string), so an object-shaped route refuses it by validation.
    const plain = await send({ method: 'POST', path: '/setup', headers: { 'content-type': 'text/plain' }, body: 'token=x' });
    expect([400, 415]).toContain(plain.status);
    expect(plain.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('a body over the limit → 413, with or without Content-Length', async () => {
    const huge = `{"token":"${'x'.repeat(server.config.bodyLimit + 1)}"}`;
    expectProblem(await send({ method: 'POST', path: '/setup', headers: { 'content-type': JSON_TYPE }, body: huge }), 413);
    expectProblem(await send({ method: 'POST', path: '/setup', headers: { 'content-type': JSON_TYPE }, body: huge, chunked: true }), 413);
    expectProblem(
      await send({
        method: 'POST',
        path: '/setup',
        headers: { 'content-type': FORM },
        body: `token=${'y'.repeat(server.config.bodyLimit + 1)}`,
      }),
      413,
    );
  });

  it('a Content-Length over the limit is refused before the body arrives → 413', async () => {
    expectProblem(
      await send({
        method: 'POST',
        path: '/setup',
        headers: { 'content-type': JSON_TYPE, 'content-length': server.config.bodyLimit * 4 },
        body: '{}',
      }),
      413,
    );
  });

  it('an unknown route → 404', async () => {
    for (const path of [
      '/nope',
      '/v1/nope/nope',
      '/healthz/extra',
      '/%2e%2e/etc/passwd',
      '/..%2f..%2fetc%2fpasswd',
      `/${'a'.repeat(5000)}`,
    ]) {
      const body = expectProblem(await send({ method: 'GET', path }), 404);
      expect(body.instance).toBe(path);
    }
    expectProblem(await send({ method: 'POST', path: '/nope', headers: { 'content-type': JSON_TYPE }, body: '{}' }), 404);
  });

  it('HEAD on an unknown route → 404 without a body', async () => {
    const response = await send({ method: 'HEAD', path: '/nope' });
    expect(response.status).toBe(404);
    expect(response.body).toBe('');
  });

  it('a malformed URL → 400', async () => {
    for (const path of ['/%', '/%E0%A4%A', '/%zz/x']) {
      const response = await send({ method: 'GET', path });
      expect(response.status, `${path}: ${response.body}`).toBeLessThan(500);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it('a wrong method on a known path → 405 with Allow', async () => {
    const healthz = expectProblem(await send({ method: 'DELETE', path: '/healthz' }), 405);
    expect(healthz.detail).toMatch(/DELETE/);
    const allow = (await send({ method: 'POST', path: '/healthz' })).headers.allow;
    expect(allow?.split(/,\s*/).sort()).toEqual(['GET', 'HEAD', 'OPTIONS']);
    const setup = await send({ method: 'PUT', path: '/setup', headers: { 'content-type': JSON_TYPE }, body: '{}' });
    expectProblem(setup, 405);
    expect(setup.headers.allow?.split(/,\s*/).sort()).toEqual(['GET', 'HEAD', 'OPTIONS', 'POST']);
    // Trailing slashes and query strings do not change what the path is.
    expect((await send({ method: 'PATCH', path: '/healthz/?x=1' })).status).toBe(405);
  });

  it('a validation error names the field', async () => {
    const body = expectProblem(
      await send({
        method: 'POST',
        path: '/setup',
        headers: { 'content-type': JSON_TYPE },
        body: JSON.stringify({ token: 'x', organization_name: 'Acme' }),
      }),
      400,
    );
    expect(body.detail).toMatch(/organization_slug/);
    expect(body.detail).toMatch(/email/);
    expect(body.detail).toMatch(/password/);
    expect(body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ pointer: '/body/email' }), expect.objectContaining({ pointer: '/body/password' })]),
    );

    const wrongType = expectProblem(
      await send({
        method: 'POST',
        path: '/setup',
        headers: { 'content-type': JSON_TYPE },
        body: JSON.stringify({ token: 'x', organization_name: { a: 1 }, organization_slug: 'a', email: 'a@b', password: 'p' }),
      }),
      400,
    );
    expect(wrongType.errors).toEqual([
      expect.objectContaining({ pointer: '/body/organization_name', detail: expect.stringMatching(/^organization_name /) }),
    ]);

    const query = expectProblem(await send({ method: 'GET', path: `/setup?token=${'t'.repeat(300)}` }), 400);
    expect(query.detail).toMatch(/token/);
    expect(query.errors).toEqual([expect.objectContaining({ pointer: '/query/token' })]);
  });

  it('asked for JSON:API, errors come as JSON:API error objects', async () => {
    const response = await send({ method: 'GET', path: '/nope', headers: { accept: 'application/vnd.api+json' } });
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/vnd\.api\+json/);
    expect(response.json()).toEqual({
      jsonapi: { version: '1.1' },
      errors: [expect.objectContaining({ status: '404', title: 'Not Found' })],
    });
  });

  it('oversized headers and broken framing are refused by the HTTP layer, not with a 5xx', async () => {
    const bigHeader = await send({ method: 'GET', path: '/healthz', headers: { 'x-filler': 'z'.repeat(64 * 1024) } });
    expect(bigHeader.status).toBe(431);
    expect(bigHeader.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(bigHeader.headers['x-request-id']).toBeTruthy();
    const unknownMethod = await send({ method: 'FOO', path: '/healthz' });
    expect(unknownMethod.status).toBe(400);
    expect(unknownMethod.json()).toMatchObject({ status: 400, request_id: unknownMethod.headers['x-request-id'] });
  });
});

describe('request ids', () => {
  it('every response carries an x-request-id, different each time', async () => {
    const a = await send({ path: '/healthz' });
    const b = await send({ path: '/nope' });
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('a sane caller-supplied id is honoured, in the header and in problems', async () => {
    const ok = await send({ path: '/healthz', headers: { 'x-request-id': 'trace-abc.123:4' } });
    expect(ok.headers['x-request-id']).toBe('trace-abc.123:4');
    const problem = await send({ path: '/nope', headers: { 'x-request-id': 'trace-xyz' } });
    expect(problem.headers['x-request-id']).toBe('trace-xyz');
    expect(problem.json().request_id).toBe('trace-xyz');
  });

  it('an insane one (too long, odd characters) is replaced', async () => {
    for (const given of ['x'.repeat(500), 'a b', '<script>', 'id;drop']) {
      const response = await send({ path: '/healthz', headers: { 'x-request-id': given } });
      expect(response.headers['x-request-id']).not.toBe(given);
      expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('operations endpoints', () => {
  it('/healthz and /readyz answer 200', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const response = await server.fetch(path);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok' });
    }
  });

  it('/metrics exposes request counts and latency histograms in Prometheus format', async () => {
    await server.fetch('/healthz');
    await server.fetch('/nope');
    const response = await server.fetch('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^# TYPE http_requests_total counter$/m);
    expect(text).toMatch(/^http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+$/m);
    expect(text).toMatch(/^http_requests_total\{method="GET",route="unmatched",status="404"\} \d+$/m);
    expect(text).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz"\} \d+$/m);
    expect(text).toMatch(/^http_request_duration_seconds_count\{method="GET",route="\/healthz"\} \d+$/m);
    // Raw URLs never become labels (bounded cardinality).
    expect(text).not.toMatch(/route="\/nope"/);
  });

  it('/openapi.json is an OpenAPI 3.1 document of the routes', async () => {
    const response = await server.fetch('/openapi.json');
    expect(response.status).toBe(200);
    const doc: any = await response.json();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.paths['/healthz']?.get).toBeDefined();
    expect(doc.paths['/readyz']?.get).toBeDefined();
    expect(doc.servers?.[0]?.url).toBe(server.config.publicUrl);
  });

  it('/docs serves Swagger UI, which loads its assets', async () => {
    const response = await server.fetch('/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    expect(html).toMatch(/swagger-ui/i);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const href of assets) {
      const url = new URL(href, new URL('/docs/', server.url));
      const asset = await fetch(url);
      expect(asset.status, url.toString()).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
  });
});

describe('security headers and CORS', () => {
  it('API responses carry the REST security set; HTML pages the full browser set', async () => {
    for (const path of ['/healthz', '/nope', '/openapi.json', '/v1/me']) {
      const response = await server.fetch(path);
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('content-security-policy'), path).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(response.headers.get('x-powered-by'), path).toBeNull();
      // Browser-page headers are not spent on JSON.
      expect(response.headers.get('cross-origin-opener-policy'), path).toBeNull();
    }
    for (const path of ['/docs/static/index.html', '/setup?token=nope']) {
      const response = await server.fetch(path);
      expect(response.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(response.headers.get('x-frame-options'), path).toBeTruthy();
      expect(response.headers.get('referrer-policy'), path).toBeTruthy();
      expect(response.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
      expect(response.headers.get('content-security-policy'), path).toMatch(/default-src 'self'/);
    }
    expect((await server.fetch('/setup?token=nope')).headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    // Plain http: no HSTS (it would pin browsers to https the server does not speak).
    expect((await server.fetch('/healthz')).headers.get('strict-transport-security')).toBeNull();
  });

  it('only cross-origin requests get CORS headers (beyond Vary: Origin)', async () => {
    const plain = await send({ path: '/healthz' });
    expect(plain.headers['access-control-expose-headers']).toBeUndefined();
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
    expect(plain.headers.vary).toMatch(/origin/i);
  });

  it('answers a plain OPTIONS with Allow, and 404 for an unknown path', async () => {
    const known = await send({ method: 'OPTIONS', path: '/setup' });
    expect(known.status).toBe(204);
    expect(known.headers.allow?.split(/,\s*/).sort()).toEqual(['GET', 'HEAD', 'OPTIONS', 'POST']);
    expect(known.headers['x-request-id']).toBeTruthy();
    expectProblem(await send({ method: 'OPTIONS', path: '/nope' }), 404);
  });

  it('answers a CORS preflight', async () => {
    const response = await send({
      method: 'OPTIONS',
      path: '/readyz',
      headers: {
        origin: 'https://dashboard.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers['access-control-allow-origin']).toBe('https://dashboard.example');
    expect(response.headers['access-control-allow-methods']).toMatch(/GET/);
    expect(response.headers['access-control-allow-headers']?.toLowerCase()).toMatch(/authorization/);
    expect(response.headers['access-control-max-age']).toBeDefined();
  });

  it('cross-origin responses expose the request id', async () => {
    const response = await send({ path: '/healthz', headers: { origin: 'https://dashboard.example' } });
    expect(response.headers['access-control-allow-origin']).toBe('https://dashboard.example');
    expect(response.headers['access-control-expose-headers']).toMatch(/x-request-id/);
    expect(response.headers['access-control-allow-credentials']).toBeUndefined();
  });
});

describe('property: arbitrary requests never produce a 5xx', () => {
  const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'FOO', 'SEARCH');
  const UNPARSEABLE_METHODS = new Set(['FOO']);
  const segment = fc.oneof(
    fc.constantFrom(
      'setup',
      'healthz',
      'readyz',
      'metrics',
      'openapi.json',
      'docs',
      'v1',
      'oauth',
      'token',
      '..',
      '.',
      '%2e',
      '%00',
      '%',
      '%ff',
      '~',
      'a;b',
      'static',
      'json',
    ),
    fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,12}$/),
  );
  const path = fc
    .tuple(
      fc.array(segment, { minLength: 0, maxLength: 5 }),
      fc.option(fc.stringMatching(/^[A-Za-z0-9=&%._~-]{0,30}$/), { nil: undefined }),
      fc.boolean(),
    )
    .map(([segments, query, slash]) => `/${segments.join('/')}${slash ? '/' : ''}${query === undefined ? '' : `?${query}`}`);
  const contentType = fc.option(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'application/vnd.api+json',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data',
      'application/xml',
      '*/*',
      ';;;',
      'application/json; charset',
    ),
    { nil: undefined },
  );
  const body = fc.option(
    fc.oneof(
      fc.json(),
      fc.string({ maxLength: 200 }),
      fc.constantFrom('{', '{"token": 1}', 'token=abc&email=x', '{"__proto__":{}}', 'null', '[]', '""', '{"organization_name":null}'),
      fc
        .dictionary(
          fc.constantFrom('token', 'organization_name', 'organization_slug', 'email', 'password', 'name', 'x'),
          fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
        )
        .map((o) => JSON.stringify(o)),
    ),
    { nil: undefined },
  );
  const accept = fc.option(
    fc.constantFrom('application/json', 'application/vnd.api+json', 'text/html', '*/*', 'application/javascript', 'garbage'),
    { nil: undefined },
  );

  const OAUTH_JSON_ENDPOINTS = [
    '/oauth/token',
    '/oauth2/token',
    '/auth/oauth',
    '/oauth/revoke',
    '/oauth/introspect',
    '/oauth/device_authorization',
    '/oauth/jwks',
    '/oauth/token/info',
  ];
  /** The router ignores trailing and duplicate slashes, so the comparison does too. */
  const isOAuthJsonEndpoint = (target: string) => {
    const pathOnly = target
      .split('?')[0]!
      .replace(/\/{2,}/g, '/')
      .replace(/(.)\/$/, '$1');
    return OAUTH_JSON_ENDPOINTS.includes(pathOnly);
  };

  it('every method on every OAuth JSON endpoint answers RFC 6749 JSON, never problem+json or a 5xx', async () => {
    for (const endpoint of OAUTH_JSON_ENDPOINTS) {
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        for (const [type, payload] of [
          [undefined, undefined],
          [FORM, 'grant_type=nope'],
          [JSON_TYPE, '{bad'],
          ['text/plain', 'x'],
        ] as const) {
          const headers: Record<string, string> = type ? { 'content-type': type } : {};
          const response = await send({
            method,
            path: endpoint,
            headers,
            ...(payload !== undefined && method !== 'GET' && { body: payload }),
          });
          const label = `${method} ${endpoint} (${type}) → ${response.status} ${response.body.slice(0, 200)}`;
          expect(response.status, label).toBeLessThan(500);
          if (response.status >= 400) {
            expect(response.headers['content-type'], label).toMatch(/^application\/json/);
            expect(response.json().error, label).toMatch(/^[a-z_]+$/);
          }
        }
      }
    }
  });

  it('random methods, paths, content types and bodies', async () => {
    await fc.assert(
      fc.asyncProperty(methods, path, contentType, body, accept, async (method, target, type, payload, acceptHeader) => {
        const headers: Record<string, string> = {};
        if (type !== undefined) headers['content-type'] = type;
        if (acceptHeader !== undefined) headers.accept = acceptHeader;
        const response = await send({
          method,
          path: target,
          headers,
          ...(payload !== undefined && method !== 'GET' && method !== 'HEAD' && { body: payload }),
        });
        expect(
          response.status,
          `${method} ${target} (${type}) ${payload?.slice(0, 80)} → ${response.status} ${response.body.slice(0, 300)}`,
        ).toBeLessThan(500);
        expect(response.headers['x-request-id']).toBeTruthy();
        if (response.status < 400 || method === 'HEAD' || target.startsWith('/setup')) return; // the setup page answers in HTML
        const label = `${method} ${target} → ${response.status}`;
        // A method Node's HTTP parser does not know (FOO) is refused before any route is found,
        // in the one format the server has for requests it could not read (problem+json).
        if (isOAuthJsonEndpoint(target) && !UNPARSEABLE_METHODS.has(method)) {
          // The token-family endpoints speak RFC 6749 §5.2 JSON, wrong method included.
          expect(response.headers['content-type'], label).toMatch(/^application\/json/);
          expect(response.json().error, label).toMatch(/^[a-z_]+$/);
        } else {
          expect(response.headers['content-type'], label).toMatch(/^application\/(problem\+json|vnd\.api\+json)/);
        }
      }),
      { numRuns: 300 },
    );
  });
});
