import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenJsonApiDocument } from '../../src/api/json-api-body.js';
import { decodeCursor } from '../../src/api/list-query.js';
import { encodeCursor } from '../../src/storage/keyset.js';
import { HttpProblem } from '../../src/http/problem.js';
import { pointsProblem, reportedValue, scaleValue } from '../../src/inventory/scaling.js';
import type { App } from '../../src/server/context.js';
import { backends, useDatabase } from '../support/databases.js';
import { JSON_API, PUBLIC_URL, type TestOrg, call, createOrg, makeApp, routeTable, walk } from './support.js';

/** The representation layer: content negotiation, JSON:API documents, cursors, OpenAPI coverage. */

describe('cursors and JSON:API documents (units)', () => {
  it('a cursor round-trips any keyset values and is opaque base64url', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.uuid()), { maxLength: 4 }),
        (values) => {
          const cursor = encodeCursor(values);
          expect(cursor).toMatch(/^[A-Za-z0-9_-]*$/);
          expect(decodeCursor(cursor)).toEqual(values.map((v) => (Object.is(v, -0) ? 0 : v)));
        },
      ),
    );
  });

  it('a malformed cursor is a 400 naming the parameter', () => {
    for (const bad of ['%%%', 'bm90IGpzb24', Buffer.from('{"x":1}').toString('base64url')]) {
      try {
        decodeCursor(bad);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(HttpProblem);
        expect((error as HttpProblem).status).toBe(400);
        expect((error as HttpProblem).errors?.[0]?.pointer).toBe('/query/cursor');
      }
    }
  });

  it('flattens JSON:API documents: attributes and relationship linkage', () => {
    const flat = flattenJsonApiDocument(
      {
        data: {
          type: 'groups',
          id: 'g1',
          attributes: { name: 'night' },
          relationships: { users: { data: [{ type: 'users', id: 'u1' }] }, sensors: { data: [] } },
        },
      },
      { type: 'groups', relationships: { users: 'user_ids', sensors: 'sensor_ids' } },
      'g1',
    );
    expect(flat).toEqual({ name: 'night', user_ids: ['u1'], sensor_ids: [] });
    expect(
      flattenJsonApiDocument(
        { data: { type: 'devices', relationships: { location: { data: null } } } },
        { type: 'devices', relationships: { location: 'location_id' } },
      ),
    ).toEqual({ location_id: null });
    const status = (body: unknown, id?: string) => {
      try {
        flattenJsonApiDocument(body, { type: 'devices', relationships: { location: 'location_id' } }, id);
        return 200;
      } catch (error) {
        return (error as HttpProblem).status;
      }
    };
    expect(status({ name: 'flat' })).toBe(400);
    expect(status({ data: [] })).toBe(400);
    expect(status({ data: { attributes: {} } })).toBe(400);
    expect(status({ data: { type: 'sensors', attributes: {} } })).toBe(409);
    expect(status({ data: { type: 'devices', id: 'other', attributes: {} } }, 'mine')).toBe(409);
    expect(status({ data: { type: 'devices', relationships: { owner: { data: null } } } })).toBe(400);
  });
});

describe('scaling (units)', () => {
  it('linear: raw × scale + offset, then the calibration offset', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: -100, max: 100, noNaN: true }),
        fc.double({ min: -100, max: 100, noNaN: true }),
        (raw, scale, offset) => {
          expect(scaleValue({ kind: 'linear', scale, offset }, raw)).toBeCloseTo(raw * scale + offset, 6);
          expect(reportedValue({ kind: 'linear', scale, offset }, 0.5, raw)).toBeCloseTo(raw * scale + offset + 0.5, 6);
        },
      ),
    );
    expect(scaleValue(null, 7)).toBe(7);
  });

  it('piecewise-linear: exact at the points, between neighbours in between, extended at the ends', () => {
    const increasing = fc
      .uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 2, maxLength: 8 })
      .map((xs) => xs.sort((a, b) => a - b))
      .chain((xs) =>
        fc.tuple(fc.constant(xs), fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: xs.length, maxLength: xs.length })),
      );
    fc.assert(
      fc.property(increasing, fc.double({ min: 0, max: 1, noNaN: true }), ([raws, values], t) => {
        const points = raws.map((raw, i) => ({ raw, value: values[i]! }));
        expect(pointsProblem(points)).toBeUndefined();
        const scaling = { kind: 'piecewise_linear' as const, points };
        for (const p of points) expect(scaleValue(scaling, p.raw)).toBeCloseTo(p.value, 9);
        for (let i = 0; i + 1 < points.length; i++) {
          const a = points[i]!;
          const b = points[i + 1]!;
          const raw = a.raw + t * (b.raw - a.raw);
          expect(scaleValue(scaling, raw)).toBeCloseTo(a.value + t * (b.value - a.value), 6);
        }
        const [p0, p1] = [points[0]!, points[1]!];
        const below = p0.raw - 10;
        expect(scaleValue(scaling, below)).toBeCloseTo(p0.value + ((below - p0.raw) * (p1.value - p0.value)) / (p1.raw - p0.raw), 6);
      }),
    );
    expect(pointsProblem([{ raw: 0, value: 0 }])).toBeDefined();
    expect(
      pointsProblem([
        { raw: 1, value: 0 },
        { raw: 1, value: 1 },
      ]),
    ).toBeDefined();
  });
});

describe.each(backends)('representation over HTTP on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let org: TestOrg;

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    org = await createOrg(database.db, 'repr');
    await call(app, { method: 'POST', url: '/v1/locations', token: org.adminKey, body: { slug: 'lab-1', name: 'Lab 1' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const list = (accept?: string) => call(app, { url: '/v1/locations', token: org.adminKey, ...(accept !== undefined && { accept }) });

  it('answers JSON for no Accept, application/json, application/javascript (Sonicu) and */*', async () => {
    for (const accept of [undefined, 'application/json', 'application/javascript', '*/*', 'text/html, */*;q=0.8']) {
      const response = await list(accept);
      expect(response.statusCode, String(accept)).toBe(200);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(response.data).toMatchObject({
        data: [expect.objectContaining({ slug: 'lab-1' })],
        links: { self: `${PUBLIC_URL}/v1/locations` },
        meta: { count: 1 },
      });
    }
  });

  it('answers JSON:API 1.1 for application/vnd.api+json, with profile parameters ignored', async () => {
    for (const accept of [
      JSON_API,
      `${JSON_API}; profile="https://example.test/profile"`,
      `${JSON_API}; charset=utf-8, ${JSON_API}`,
      `application/json;q=0.5, ${JSON_API}`,
    ]) {
      const response = await list(accept);
      expect(response.statusCode, accept).toBe(200);
      expect(response.headers['content-type']).toContain(JSON_API);
      expect(response.data.jsonapi).toEqual({ version: '1.1' });
      expect(response.data.data[0]).toMatchObject({
        type: 'locations',
        attributes: { slug: 'lab-1' },
        links: { self: expect.stringMatching(/^https:\/\/api\.sensorcloud\.test\/v1\/locations\//) },
      });
    }
  });

  it('406 when every JSON:API media type in Accept carries other parameters; 415 for such a Content-Type', async () => {
    for (const accept of [
      `${JSON_API}; charset=utf-8`,
      `${JSON_API}; ext="https://jsonapi.org/ext/atomic"`,
      `${JSON_API}; version=1, ${JSON_API}; q=0.9; charset=x`,
    ]) {
      const response = await list(accept);
      expect(response.statusCode, accept).toBe(406);
    }
    const body = JSON.stringify({ data: { type: 'locations', attributes: { slug: 'lab-2', name: 'Lab 2' } } });
    for (const contentType of [`${JSON_API}; charset=utf-8`, `${JSON_API}; ext="https://jsonapi.org/ext/atomic"`]) {
      const response = await call(app, { method: 'POST', url: '/v1/locations', token: org.adminKey, body, contentType });
      expect(response.statusCode, contentType).toBe(415);
      expect(response.headers['content-type']).toContain('application/problem+json');
    }
    const ok = await call(app, {
      method: 'POST',
      url: '/v1/locations',
      token: org.adminKey,
      body,
      contentType: `${JSON_API}; profile="https://example.test/p"`,
      accept: JSON_API,
    });
    expect(ok.statusCode).toBe(201);
  });

  it('pages by cursor without repeating or skipping rows, whatever the page size and sort (property)', async () => {
    const names = fc.array(fc.constantFrom('alpha', 'beta', 'Beta', 'gamma', 'delta', 'ärger', 'zulu', '10', '9'), {
      minLength: 1,
      maxLength: 12,
    });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        names,
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom('name', '-name', 'slug', '-slug', 'created_at', '-created_at'),
        async (list, limit, sort) => {
          const owner = await createOrg(database.db, `prop${round++}`);
          for (const [i, name] of list.entries()) {
            const created = await call(app, {
              method: 'POST',
              url: '/v1/locations',
              token: owner.adminKey,
              body: { slug: `s-${i}`, name },
            });
            expect(created.statusCode).toBe(201);
          }
          const whole = await call(app, { url: `/v1/locations?limit=1000&sort=${sort}`, token: owner.adminKey });
          const paged = await walk(app, owner.adminKey, `/v1/locations?limit=${limit}&sort=${sort}`);
          expect(paged.ids).toEqual(whole.data.data.map((l: any) => l.id));
          expect(new Set(paged.ids).size).toBe(list.length);
          expect(paged.pages).toBe(Math.max(1, Math.ceil(list.length / limit)));
        },
      ),
      { numRuns: 12 },
    );
  });

  it('a cursor is bound to its list: one from another sort order or made up is refused with 400', async () => {
    for (let i = 0; i < 3; i++)
      await call(app, { method: 'POST', url: '/v1/locations', token: org.adminKey, body: { slug: `c-${i}`, name: `C ${i}` } });
    const first = await call(app, { url: '/v1/locations?limit=1&sort=created_at', token: org.adminKey });
    const cursor = new URL(first.data.links.next).searchParams.get('cursor')!;
    expect((await call(app, { url: `/v1/locations?limit=1&sort=created_at&cursor=${cursor}`, token: org.adminKey })).statusCode).toBe(200);
    // A timestamp cursor used with a text sort still compares safely (and a text one with a timestamp sort is refused).
    const byName = await call(app, { url: '/v1/locations?limit=1&sort=name', token: org.adminKey });
    const nameCursor = new URL(byName.data.links.next).searchParams.get('cursor')!;
    const mismatched = await call(app, {
      url: `/v1/locations?limit=1&sort=created_at&cursor=${nameCursor}`,
      token: org.adminKey,
      accept: JSON_API,
    });
    expect(mismatched.statusCode).toBe(400);
    expect(mismatched.data.errors[0].source).toEqual({ parameter: 'cursor' });
    const forged = encodeCursor(["x'); drop table locations; --", '00000000-0000-4000-8000-000000000000']);
    expect((await call(app, { url: `/v1/locations?sort=name&cursor=${forged}`, token: org.adminKey })).statusCode).toBe(200);
    expect((await call(app, { url: `/v1/locations?sort=created_at&cursor=${forged}`, token: org.adminKey })).statusCode).toBe(400);
    const impossibleDate = encodeCursor(['2024-02-30T00:00:00.000Z', '00000000-0000-4000-8000-000000000000']);
    expect((await call(app, { url: `/v1/locations?sort=created_at&cursor=${impossibleDate}`, token: org.adminKey })).statusCode).toBe(400);
  });

  it('documents every /v1 route in /openapi.json with the scopes it enforces', async () => {
    const response = await call(app, { url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const spec = response.data;
    expect(spec.openapi).toMatch(/^3\.1/);
    const routes = routeTable(app).filter((r) => r.url.startsWith('/v1/') && r.method !== 'HEAD' && r.method !== 'OPTIONS');
    const missing: string[] = [];
    for (const route of routes) {
      const operation = spec.paths[route.url.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
      if (!operation?.security?.length) missing.push(`${route.method} ${route.url}`);
    }
    expect(missing).toEqual([]);
    // The scopes documented are the scopes enforced: a key with exactly those scopes gets past the check.
    const documented = spec.paths['/v1/groups/{id}/users'].get['x-required-scopes'];
    expect(documented).toEqual(['groups:read', 'users:read']);
    expect(spec.paths['/v1/devices'].post.security).toEqual([{ bearer: ['devices:write'] }]);
    expect(spec.paths['/v1/calibrations'].get.security).toEqual([{ bearer: ['calibrations:read'] }]);
  });

  it('wrong methods are 405 with Allow; unknown /v1 paths 404; preflights succeed', async () => {
    const wrong = await call(app, { method: 'PATCH', url: '/v1/locations', token: org.adminKey, body: {} });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toContain('GET');
    expect((await call(app, { url: '/v1/nothing-here', token: org.adminKey })).statusCode).toBe(404);
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/devices',
      headers: {
        origin: 'https://dashboard.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.statusCode).toBeLessThan(300);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://dashboard.example');
    // A dashboard of another origin edits and deletes too: the preflight allows every method /v1 has.
    const methods = String(preflight.headers['access-control-allow-methods']).split(/, */);
    expect(methods).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']));
  });
});
