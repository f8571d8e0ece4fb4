import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveMember } from '../../src/identity/accounts.js';
import { answerAsUser, findInvitationByToken } from '../../src/identity/invitations.service.js';
import type { Scope } from '../../src/identity/scopes.js';
import type { App } from '../../src/server/context.js';
import type { Db } from '../../src/storage/database.js';
import type { Role } from '../../src/storage/schema.js';
import { backends, useDatabase } from '../support/databases.js';
import { JSON_API, PUBLIC_URL, type TestOrg, apiKey, call, createOrg, makeApp, walk } from './support.js';

/**
 * Every resource route of the inventory and people API, on every backend: success, missing scope
 * (403), another organization's id (404), validation errors in both error formats, and pagination
 * over more rows than one page.
 */

interface Fixtures {
  deviceId: string;
  sensorId: string;
}

interface ResourceSpec {
  name: string;
  path: string;
  type: string;
  read: Scope;
  write: Scope;
  /** A valid create body; n makes it unique. */
  create(n: number, f: Fixtures): Record<string, unknown>;
  /**
   * For a resource POST does not create (people join by accepting an invitation): makes one from
   * the create body directly and returns its id.
   */
  seed?(db: Db, organizationId: string, body: Record<string, unknown>): Promise<string>;
  /** Relationship fields of the create body, as JSON:API relationships (field → [name, type]). */
  relationships?: Record<string, [string, string]>;
  /** An invalid create body and the field it names. */
  invalid(f: Fixtures): { body: Record<string, unknown>; field: string };
  update: Record<string, unknown>;
  /** What the created resource must show (JSON form). */
  expectCreated?(body: Record<string, unknown>, data: any): void;
  /** A resource that cannot be deleted by default (the last owner…) is skipped there. */
  expectAfterUpdate(data: any): void;
  /** Status of GET after DELETE. */
  sortable?: string;
}

const SPECS: ResourceSpec[] = [
  {
    name: 'locations',
    path: '/v1/locations',
    type: 'locations',
    read: 'devices:read',
    write: 'devices:write',
    create: (n) => ({ slug: `lab-${n}`, name: `Lab ${n}`, timezone: 'Europe/Berlin' }),
    invalid: () => ({ body: { slug: 'Not A Slug', name: 'x' }, field: 'slug' }),
    update: { name: 'Renamed lab' },
    expectAfterUpdate: (data) => expect(data.name).toBe('Renamed lab'),
    sortable: 'name',
  },
  {
    name: 'devices',
    path: '/v1/devices',
    type: 'devices',
    read: 'devices:read',
    write: 'devices:write',
    create: (n) => ({ serial: `SER-${n}`, name: `Fridge ${n}`, model: 'F-100' }),
    invalid: () => ({ body: { serial: '', name: 'x' }, field: 'serial' }),
    update: { name: 'Renamed fridge', firmware_version: '2.1' },
    expectCreated: (_body, data) => expect(data.token).toMatch(/^sc_dev_[A-Za-z0-9_-]{40,}$/),
    expectAfterUpdate: (data) => expect([data.name, data.firmware_version]).toEqual(['Renamed fridge', '2.1']),
    sortable: 'serial',
  },
  {
    name: 'sensors',
    path: '/v1/sensors',
    type: 'sensors',
    read: 'devices:read',
    write: 'devices:write',
    create: (n, f) => ({ device_id: f.deviceId, key: `k${n}`, kind: 'temperature', unit: '°C' }),
    relationships: { device_id: ['device', 'devices'] },
    invalid: (f) => ({ body: { device_id: f.deviceId, key: 'not a key!', kind: 'temperature' }, field: 'key' }),
    update: { name: 'Probe', unit: 'K' },
    expectAfterUpdate: (data) => expect([data.name, data.unit]).toEqual(['Probe', 'K']),
    sortable: 'key',
  },
  {
    name: 'scaling profiles',
    path: '/v1/scaling-profiles',
    type: 'scaling-profiles',
    read: 'devices:read',
    write: 'devices:write',
    create: (n) => ({ name: `profile ${n}`, kind: 'linear', scale: 2, offset: 1 }),
    invalid: () => ({ body: { name: 'p', kind: 'cubic' }, field: 'kind' }),
    update: { scale: 3 },
    expectAfterUpdate: (data) => expect([data.kind, data.scale, data.offset]).toEqual(['linear', 3, 1]),
    sortable: 'name',
  },
  {
    name: 'calibrations',
    path: '/v1/calibrations',
    type: 'calibrations',
    read: 'calibrations:read',
    write: 'calibrations:write',
    create: (n, f) => ({
      sensor_id: f.sensorId,
      calibrated_at: new Date(Date.UTC(2024, 0, 1, 0, n)).toISOString(),
      offset: 0.25,
      certificate: `CERT-${n}`,
      active: false,
    }),
    relationships: { sensor_id: ['sensor', 'sensors'] },
    invalid: (f) => ({ body: { sensor_id: f.sensorId, calibrated_at: 'yesterday' }, field: 'calibrated_at' }),
    update: { offset: 1.5, notes: 'checked' },
    expectAfterUpdate: (data) => expect([data.offset, data.notes]).toEqual([1.5, 'checked']),
    sortable: 'calibrated_at',
  },
  {
    name: 'groups',
    path: '/v1/groups',
    type: 'groups',
    read: 'groups:read',
    write: 'groups:write',
    create: (n) => ({ name: `group ${n}`, description: 'night shift' }),
    invalid: () => ({ body: { name: '' }, field: 'name' }),
    update: { description: 'day shift' },
    expectAfterUpdate: (data) => expect(data.description).toBe('day shift'),
    sortable: 'name',
  },
  {
    name: 'users',
    path: '/v1/users',
    type: 'users',
    read: 'users:read',
    write: 'users:write',
    create: (n) => ({ email: `person-${n}-${Date.now()}@example.test`, role: 'viewer', name: `Person ${n}` }),
    seed: async (db, organizationId, body) =>
      (await saveMember(db, organizationId, { email: body.email as string, role: body.role as Role, name: body.name as string })).id,
    invalid: () => ({ body: { email: 'not-an-email', role: 'viewer' }, field: 'email' }),
    update: { role: 'member' },
    expectCreated: (body, data) => expect([data.email, data.role, data.status]).toEqual([body.email, 'viewer', 'invited']),
    expectAfterUpdate: (data) => expect(data.role).toBe('member'),
    sortable: 'email',
  },
];

/** The scope every test key holds when it must lack the one under test. */
const UNRELATED: Scope = 'webhooks:read';

function toJsonApi(spec: ResourceSpec, body: Record<string, unknown>) {
  const attributes: Record<string, unknown> = {};
  const relationships: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) {
    const rel = spec.relationships?.[field];
    if (rel) relationships[rel[0]] = { data: { type: rel[1], id: value } };
    else attributes[field] = value;
  }
  return { data: { type: spec.type, attributes, ...(Object.keys(relationships).length && { relationships }) } };
}

describe.each(backends)('resource API on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let org: TestOrg;
  let other: TestOrg;
  let fixtures: Fixtures;
  let foreignFixtures: Fixtures;
  let n = 0;

  const seedFixtures = async (o: TestOrg): Promise<Fixtures> => {
    const device = await call(app, {
      method: 'POST',
      url: '/v1/devices',
      token: o.adminKey,
      body: { serial: `FIX-${n++}`, name: 'Fixture', sensors: [{ key: 'temp', kind: 'temperature' }] },
    });
    expect(device.statusCode).toBe(201);
    return { deviceId: device.data.data.id, sensorId: device.data.data.sensor_ids[0] };
  };

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    org = await createOrg(database.db, 'acme');
    other = await createOrg(database.db, 'globex');
    fixtures = await seedFixtures(org);
    foreignFixtures = await seedFixtures(other);
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Creates one through POST (or `seed`), answering the created resource and the POST's response. */
  const create = async (spec: ResourceSpec, o = org, f = fixtures) => {
    const body = spec.create(n++, f);
    if (spec.seed) {
      const read = await call(app, { url: `${spec.path}/${await spec.seed(database.db, o.id, body)}`, token: o.adminKey });
      expect(read.statusCode, read.body).toBe(200);
      return { body, data: read.data.data, response: undefined };
    }
    const response = await call(app, { method: 'POST', url: spec.path, token: o.adminKey, body });
    expect(response.statusCode, response.body).toBe(201);
    return { body, data: response.data.data, response };
  };

  describe.each(SPECS)('$name', (spec) => {
    it('creates, reads, lists, updates (PATCH and PUT) and deletes', async () => {
      const { body, data, response } = await create(spec);
      expect(data.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(data.links.self).toBe(`${PUBLIC_URL}${spec.path}/${data.id}`);
      if (response) {
        expect(response.headers['content-type']).toMatch(/^application\/json/);
        expect(response.headers.location).toBe(data.links.self);
        expect(response.data.links.self).toBe(data.links.self);
      }
      spec.expectCreated?.(body, data);

      const read = await call(app, { url: `${spec.path}/${data.id}`, token: org.adminKey });
      expect(read.statusCode).toBe(200);
      expect(read.data.data.id).toBe(data.id);
      expect(read.data.data.token).toBeUndefined();

      const list = await call(app, { url: `${spec.path}?limit=1000`, token: org.adminKey });
      expect(list.statusCode).toBe(200);
      expect(list.data.data.map((item: any) => item.id)).toContain(data.id);
      expect(list.data.links.self).toBe(`${PUBLIC_URL}${spec.path}?limit=1000`);
      expect(list.data.meta).toMatchObject({ limit: 1000 });

      const patched = await call(app, { method: 'PATCH', url: `${spec.path}/${data.id}`, token: org.adminKey, body: spec.update });
      expect(patched.statusCode, patched.body).toBe(200);
      spec.expectAfterUpdate(patched.data.data);
      const put = await call(app, { method: 'PUT', url: `${spec.path}/${data.id}`, token: org.adminKey, body: spec.update });
      expect(put.statusCode, put.body).toBe(200);
      spec.expectAfterUpdate((await call(app, { url: `${spec.path}/${data.id}`, token: org.adminKey })).data.data);

      const deleted = await call(app, { method: 'DELETE', url: `${spec.path}/${data.id}`, token: org.adminKey });
      expect(deleted.statusCode).toBe(204);
      expect(deleted.body).toBe('');
      expect((await call(app, { url: `${spec.path}/${data.id}`, token: org.adminKey })).statusCode).toBe(404);
      expect((await call(app, { method: 'DELETE', url: `${spec.path}/${data.id}`, token: org.adminKey })).statusCode).toBe(404);
    });

    it('speaks JSON:API: a JSON:API document creates, resource objects come back', async () => {
      const body = spec.create(n++, fixtures);
      const created = spec.seed
        ? await call(app, { url: `${spec.path}/${await spec.seed(database.db, org.id, body)}`, token: org.adminKey, accept: JSON_API })
        : await call(app, {
            method: 'POST',
            url: spec.path,
            token: org.adminKey,
            body: toJsonApi(spec, body),
            contentType: JSON_API,
            accept: JSON_API,
          });
      expect(created.statusCode, created.body).toBe(spec.seed ? 200 : 201);
      expect(created.headers['content-type']).toMatch(/^application\/vnd\.api\+json/);
      const resource = created.data.data;
      expect(resource).toMatchObject({
        type: spec.type,
        id: expect.any(String),
        attributes: expect.any(Object),
        links: { self: `${PUBLIC_URL}${spec.path}/${resource.id}` },
      });
      expect(resource.attributes.id).toBeUndefined();
      expect(created.data.jsonapi).toEqual({ version: '1.1' });
      for (const [field, [name, type]] of Object.entries(spec.relationships ?? {})) {
        expect(resource.relationships[name].data).toEqual({ type, id: body[field] });
        expect(resource.attributes[field]).toBeUndefined();
      }

      const update = await call(app, {
        method: 'PATCH',
        url: `${spec.path}/${resource.id}`,
        token: org.adminKey,
        body: { data: { type: spec.type, id: resource.id, attributes: spec.update } },
        contentType: JSON_API,
        accept: JSON_API,
      });
      expect(update.statusCode, update.body).toBe(200);
      expect(update.data.data.type).toBe(spec.type);

      const wrongType = await call(app, {
        method: 'PATCH',
        url: `${spec.path}/${resource.id}`,
        token: org.adminKey,
        body: { data: { type: 'wrong', id: resource.id, attributes: {} } },
        contentType: JSON_API,
        accept: JSON_API,
      });
      expect(wrongType.statusCode).toBe(409);
      const wrongId = await call(app, {
        method: 'PATCH',
        url: `${spec.path}/${resource.id}`,
        token: org.adminKey,
        body: { data: { type: spec.type, id: '00000000-0000-4000-8000-000000000000', attributes: {} } },
        contentType: JSON_API,
        accept: JSON_API,
      });
      expect(wrongId.statusCode).toBe(409);

      const list = await call(app, { url: `${spec.path}?limit=1000`, token: org.adminKey, accept: JSON_API });
      expect(list.statusCode).toBe(200);
      expect(list.data.data.every((item: any) => item.type === spec.type && item.attributes && item.links.self)).toBe(true);
      expect(list.data.links.self).toBe(`${PUBLIC_URL}${spec.path}?limit=1000`);
    });

    it('answers 403 insufficient_scope without the scope', async () => {
      const { data } = await create(spec);
      const noScope = await apiKey(database.db, org, [UNRELATED]);
      const readOnly = await apiKey(database.db, org, [spec.read]);
      for (const url of [spec.path, `${spec.path}/${data.id}`]) {
        const response = await call(app, { url, token: noScope });
        expect(response.statusCode, url).toBe(403);
        expect(response.headers['www-authenticate']).toContain('insufficient_scope');
        expect(response.headers['content-type']).toContain('application/problem+json');
      }
      expect((await call(app, { url: `${spec.path}/${data.id}`, token: readOnly })).statusCode).toBe(200);
      const writes = [
        { method: 'POST' as const, url: spec.path, body: spec.create(n++, fixtures) },
        { method: 'PATCH' as const, url: `${spec.path}/${data.id}`, body: spec.update },
        { method: 'DELETE' as const, url: `${spec.path}/${data.id}` },
      ];
      for (const write of writes) {
        const response = await call(app, { ...write, token: readOnly, accept: JSON_API });
        expect(response.statusCode, `${write.method} ${write.url}`).toBe(403);
        expect(response.data.errors[0]).toMatchObject({ status: '403' });
      }
      expect((await call(app, { method: 'POST', url: spec.path, body: spec.create(n++, fixtures) })).statusCode).toBe(401);
      expect((await call(app, { url: `${spec.path}/${data.id}`, token: org.adminKey })).statusCode).toBe(200);
    });

    it("answers 404 for another organization's id and never lists its rows", async () => {
      const { data } = await create(spec);
      for (const request of [
        { method: 'GET' as const, url: `${spec.path}/${data.id}` },
        { method: 'PATCH' as const, url: `${spec.path}/${data.id}`, body: spec.update },
        { method: 'PUT' as const, url: `${spec.path}/${data.id}`, body: spec.update },
        { method: 'DELETE' as const, url: `${spec.path}/${data.id}` },
      ]) {
        const response = await call(app, { ...request, token: other.adminKey });
        expect(response.statusCode, `${request.method} ${request.url}`).toBe(404);
        expect(response.data.detail).toMatch(/does not exist/);
      }
      const theirs = await walk(app, other.adminKey, `${spec.path}?limit=1000`);
      expect(theirs.ids).not.toContain(data.id);
      // Still there, unchanged, for its own organization.
      const mine = await call(app, { url: `${spec.path}/${data.id}`, token: org.adminKey });
      expect(mine.statusCode).toBe(200);
      // Malformed ids are simply not found.
      expect((await call(app, { url: `${spec.path}/not-an-id`, token: org.adminKey })).statusCode).toBe(404);
    });

    it('refuses invalid input with 4xx naming the field, as problem+json and as JSON:API errors', async () => {
      const { body, field } = spec.invalid(fixtures);
      const problem = await call(app, { method: 'POST', url: spec.path, token: org.adminKey, body });
      expect(problem.statusCode).toBeGreaterThanOrEqual(400);
      expect(problem.statusCode).toBeLessThan(500);
      expect(problem.headers['content-type']).toContain('application/problem+json');
      expect(problem.data).toMatchObject({ status: problem.statusCode, title: expect.any(String), detail: expect.stringContaining(field) });
      expect(problem.data.errors.map((e: any) => e.pointer)).toContain(`/body/${field}`);

      const jsonApi = await call(app, { method: 'POST', url: spec.path, token: org.adminKey, body, accept: JSON_API });
      expect(jsonApi.statusCode).toBe(problem.statusCode);
      expect(jsonApi.headers['content-type']).toContain(JSON_API);
      expect(jsonApi.data.errors[0]).toMatchObject({
        status: String(problem.statusCode),
        detail: expect.stringContaining(field),
        source: { pointer: `/${field}` },
      });

      // Sent as a JSON:API document, the error points into the document.
      const fromDocument = await call(app, {
        method: 'POST',
        url: spec.path,
        token: org.adminKey,
        body: toJsonApi(spec, body),
        contentType: JSON_API,
        accept: JSON_API,
      });
      expect(fromDocument.statusCode).toBe(problem.statusCode);
      expect(fromDocument.data.errors[0].source).toEqual({ pointer: `/data/attributes/${field}` });
      const badLinkage = await call(app, {
        method: 'POST',
        url: '/v1/sensors',
        token: org.adminKey,
        body: {
          data: { type: 'sensors', attributes: { key: 'x', kind: 'y' }, relationships: { device: { data: { type: 'devices', id: 42 } } } },
        },
        contentType: JSON_API,
        accept: JSON_API,
      });
      expect(badLinkage.statusCode).toBe(400);
      expect(badLinkage.data.errors[0].source).toEqual({ pointer: '/data/relationships/device/data' });

      // Unknown members are refused, not ignored.
      const unknown = await call(app, {
        method: 'POST',
        url: spec.path,
        token: org.adminKey,
        body: { ...spec.create(n++, fixtures), colour: 'red' },
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.data.errors.map((e: any) => e.pointer)).toContain('/body/colour');
      // Not JSON at all.
      const garbage = await call(app, {
        method: 'POST',
        url: spec.path,
        token: org.adminKey,
        body: '{"oops',
        contentType: 'application/json',
      });
      expect(garbage.statusCode).toBe(400);
      // Bad query parameters.
      for (const query of ['limit=0', 'limit=1001', 'cursor=%%%', 'sort=nope', 'cursor=eyJ2IjpbMV19']) {
        const response = await call(app, { url: `${spec.path}?${query}`, token: org.adminKey });
        expect(response.statusCode, query).toBe(400);
      }
    });

    it('paginates with cursors over more rows than a page, in both formats and both directions', async () => {
      for (let i = 0; i < 5; i++) await create(spec);
      const all = await call(app, { url: `${spec.path}?limit=1000`, token: org.adminKey });
      const total = all.data.data.length;
      expect(total).toBeGreaterThan(2);
      const paged = await walk(app, org.adminKey, `${spec.path}?limit=2`);
      expect(paged.pages).toBe(Math.ceil(total / 2));
      expect(paged.ids).toEqual(all.data.data.map((item: any) => item.id));
      const jsonApi = await walk(app, org.adminKey, `${spec.path}?page[size]=3`, JSON_API);
      expect(jsonApi.ids).toEqual(paged.ids);
      if (spec.sortable) {
        const ascending = await walk(app, org.adminKey, `${spec.path}?limit=2&sort=${spec.sortable}`);
        const descending = await walk(app, org.adminKey, `${spec.path}?limit=2&sort=-${spec.sortable}`);
        expect(new Set(ascending.ids).size).toBe(total);
        expect(descending.ids).toEqual([...ascending.ids].reverse());
        const byCreation = await walk(app, org.adminKey, `${spec.path}?limit=3&sort=-created_at`);
        expect([...byCreation.ids].sort()).toEqual([...ascending.ids].sort());
      }
      // The other organization's list is not affected.
      const theirs = await walk(app, other.adminKey, `${spec.path}?limit=2`);
      expect(theirs.ids.some((id) => paged.ids.includes(id))).toBe(false);
    });
  });

  it('GET /v1/me and /v1/organizations/current describe the caller', async () => {
    const me = await call(app, { url: '/v1/me', token: org.adminKey });
    expect(me.statusCode).toBe(200);
    expect(me.data.data).toMatchObject({
      id: org.ownerId,
      kind: 'api_key',
      email: org.ownerEmail,
      role: 'owner',
      organization_id: org.id,
      user_id: org.ownerId,
    });
    expect(me.data.data.scopes).toContain('devices:write');
    const narrow = await apiKey(database.db, org, ['readings:read']);
    expect((await call(app, { url: '/v1/me', token: narrow })).data.data.scopes).toEqual(['readings:read']);
    expect((await call(app, { url: '/v1/me' })).statusCode).toBe(401);

    const current = await call(app, { url: '/v1/organizations/current', token: org.adminKey, accept: JSON_API });
    expect(current.statusCode).toBe(200);
    expect(current.data.data).toMatchObject({ type: 'organizations', id: org.id, attributes: { slug: org.slug } });
    const renamed = await call(app, {
      method: 'PATCH',
      url: '/v1/organizations/current',
      token: org.adminKey,
      body: { name: 'Acme Renamed' },
    });
    expect(renamed.data.data.name).toBe('Acme Renamed');
    expect((await call(app, { method: 'PATCH', url: '/v1/organizations/current', token: narrow, body: { name: 'x' } })).statusCode).toBe(
      403,
    );
    expect(
      (await call(app, { method: 'PATCH', url: '/v1/organizations/current', token: org.adminKey, body: { name: '' } })).statusCode,
    ).toBe(400);
    // The other organization sees itself.
    expect((await call(app, { url: '/v1/organizations/current', token: other.adminKey })).data.data.id).toBe(other.id);
  });

  it("PATCH /v1/organizations/current sets the readings retention period, audited; null returns to the server's default", async () => {
    const patch = (body: unknown) => call(app, { method: 'PATCH', url: '/v1/organizations/current', token: org.adminKey, body });
    expect((await call(app, { url: '/v1/organizations/current', token: org.adminKey })).data.data.readings_retention_days).toBeNull();
    for (const bad of [0, -5, 1.5, 'ninety', 40_000])
      expect((await patch({ readings_retention_days: bad })).statusCode, String(bad)).toBe(400);
    const set = await patch({ readings_retention_days: 90 });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.data.data).toMatchObject({ readings_retention_days: 90, name: 'Acme Renamed' });
    const audit = await database.db
      .selectFrom('audit_events')
      .select(['action', 'details', 'target_id'])
      .where('organization_id', '=', org.id)
      .where('action', '=', 'organization.updated')
      .orderBy('at', 'desc')
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({ target_id: org.id, details: { readings_retention_days: 90 } });
    expect((await patch({ readings_retention_days: null })).data.data.readings_retention_days).toBeNull();
    expect((await call(app, { url: '/v1/organizations/current', token: other.adminKey })).data.data.readings_retention_days).toBeNull();
  });

  it('PATCH /v1/organizations/current audits only a real change, with what changed', async () => {
    const patch = (body: unknown) => call(app, { method: 'PATCH', url: '/v1/organizations/current', token: org.adminKey, body });
    const audited = () =>
      database.db
        .selectFrom('audit_events')
        .select(['details'])
        .where('organization_id', '=', org.id)
        .where('action', '=', 'organization.updated')
        .orderBy('at', 'desc')
        .execute();
    const current = (await call(app, { url: '/v1/organizations/current', token: org.adminKey })).data.data;
    const before = (await audited()).length;
    // The same values again, or nothing at all: no change, no audit event.
    for (const body of [{ name: current.name }, { readings_retention_days: current.readings_retention_days }, {}]) {
      const same = await patch(body);
      expect(same.statusCode, same.body).toBe(200);
    }
    expect(await audited()).toHaveLength(before);
    const renamed = await patch({ name: `${current.name} 2`, readings_retention_days: current.readings_retention_days });
    expect(renamed.statusCode, renamed.body).toBe(200);
    const events = await audited();
    expect(events).toHaveLength(before + 1);
    expect(events[0]!.details).toEqual({ name: `${current.name} 2`, previous: { name: current.name } });
  });

  describe('devices and their tokens', () => {
    it('shows the device token once; it authenticates as the device, with readings:write only', async () => {
      const created = await call(app, {
        method: 'POST',
        url: '/v1/devices',
        token: org.adminKey,
        body: {
          serial: `TOK-${n++}`,
          name: 'Token test',
          sensors: [
            { key: 'temp', kind: 'temperature', unit: '°C' },
            { key: 'hum', kind: 'humidity', unit: '%' },
          ],
        },
      });
      expect(created.statusCode).toBe(201);
      expect(created.headers['cache-control']).toBe('no-store');
      const { id, token, sensor_ids: sensorIds, token_prefix: prefix } = created.data.data;
      expect(sensorIds).toHaveLength(2);
      expect(token.startsWith(prefix)).toBe(true);
      const me = await call(app, { url: '/v1/me', token });
      expect(me.statusCode).toBe(200);
      expect(me.data.data).toMatchObject({
        kind: 'device',
        device_id: id,
        organization_id: org.id,
        user_id: null,
        scopes: ['readings:write'],
      });
      expect((await call(app, { url: '/v1/devices', token })).statusCode).toBe(403);
      // Nothing shows the token again.
      expect(JSON.stringify((await call(app, { url: `/v1/devices/${id}`, token: org.adminKey })).data)).not.toContain(token);
      expect(JSON.stringify((await call(app, { url: '/v1/devices?limit=1000', token: org.adminKey })).data)).not.toContain(token);
      const stored = await database.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(JSON.stringify(stored)).not.toContain(token);
    });

    it('rotating the token returns a new one once and the old one stops working at once', async () => {
      const created = await call(app, {
        method: 'POST',
        url: '/v1/devices',
        token: org.adminKey,
        body: { serial: `ROT-${n++}`, name: 'Rotate' },
      });
      const { id, token: oldToken } = created.data.data;
      expect((await call(app, { url: '/v1/me', token: oldToken })).statusCode).toBe(200); // now cached
      const rotated = await call(app, { method: 'POST', url: `/v1/devices/${id}/token`, token: org.adminKey });
      expect(rotated.statusCode).toBe(200);
      const newToken = rotated.data.data.token;
      expect(newToken).toMatch(/^sc_dev_/);
      expect(newToken).not.toBe(oldToken);
      expect((await call(app, { url: '/v1/me', token: oldToken })).statusCode).toBe(401);
      expect((await call(app, { url: '/v1/me', token: newToken })).statusCode).toBe(200);
      // Another organization cannot rotate it; a read-only key neither.
      expect((await call(app, { method: 'POST', url: `/v1/devices/${id}/token`, token: other.adminKey })).statusCode).toBe(404);
      const readOnly = await apiKey(database.db, org, ['devices:read']);
      expect((await call(app, { method: 'POST', url: `/v1/devices/${id}/token`, token: readOnly })).statusCode).toBe(403);
      // Deleting the device ends its token.
      expect((await call(app, { method: 'DELETE', url: `/v1/devices/${id}`, token: org.adminKey })).statusCode).toBe(204);
      expect((await call(app, { url: '/v1/me', token: newToken })).statusCode).toBe(401);
    });

    it('refuses duplicate serials (409) and locations of another organization (422)', async () => {
      const serial = `DUP-${n++}`;
      expect((await call(app, { method: 'POST', url: '/v1/devices', token: org.adminKey, body: { serial, name: 'a' } })).statusCode).toBe(
        201,
      );
      const duplicate = await call(app, {
        method: 'POST',
        url: '/v1/devices',
        token: org.adminKey,
        body: { serial, name: 'b' },
        accept: JSON_API,
      });
      expect(duplicate.statusCode).toBe(409);
      expect(duplicate.data.errors[0].status).toBe('409');
      // The same serial in another organization is fine.
      expect((await call(app, { method: 'POST', url: '/v1/devices', token: other.adminKey, body: { serial, name: 'c' } })).statusCode).toBe(
        201,
      );
      const foreignLocation = await call(app, {
        method: 'POST',
        url: '/v1/locations',
        token: other.adminKey,
        body: { slug: `far-${n++}`, name: 'Far' },
      });
      const refused = await call(app, {
        method: 'POST',
        url: '/v1/devices',
        token: org.adminKey,
        body: { serial: `X-${n++}`, name: 'x', location_id: foreignLocation.data.data.id },
      });
      expect(refused.statusCode).toBe(422);
      expect(refused.data.errors[0].pointer).toBe('/body/location_id');
      expect(refused.body).not.toContain(foreignLocation.data.data.slug);
    });

    it('filters devices and sensors by location, serial, search and group', async () => {
      const location = (
        await call(app, { method: 'POST', url: '/v1/locations', token: org.adminKey, body: { slug: `site-${n++}`, name: 'Site' } })
      ).data.data;
      const here = (
        await call(app, {
          method: 'POST',
          url: '/v1/devices',
          token: org.adminKey,
          body: {
            serial: `HERE-${n++}`,
            name: 'Needle in haystack',
            location_id: location.id,
            sensors: [{ key: 'co2', kind: 'co2', unit: 'ppm' }],
          },
        })
      ).data.data;
      const byLocation = await call(app, { url: `/v1/devices?location_id=${location.id}`, token: org.adminKey });
      expect(byLocation.data.data.map((d: any) => d.id)).toEqual([here.id]);
      expect((await call(app, { url: `/v1/devices?serial=${here.serial}`, token: org.adminKey })).data.data.map((d: any) => d.id)).toEqual([
        here.id,
      ]);
      expect((await call(app, { url: '/v1/devices?q=NEEDLE', token: org.adminKey })).data.data.map((d: any) => d.id)).toEqual([here.id]);
      const sensors = await call(app, { url: `/v1/sensors?location_id=${location.id}`, token: org.adminKey });
      expect(sensors.data.data.map((s: any) => s.key)).toEqual(['co2']);
      expect((await call(app, { url: `/v1/sensors?kind=co2&device_id=${here.id}`, token: org.adminKey })).data.data).toHaveLength(1);
      // Another organization's filter values find nothing.
      expect((await call(app, { url: `/v1/devices?location_id=${location.id}`, token: other.adminKey })).data.data).toEqual([]);
      expect((await call(app, { url: `/v1/sensors?device_id=${here.id}`, token: other.adminKey })).data.data).toEqual([]);
      // Deleting the location keeps the device, without a location.
      expect((await call(app, { method: 'DELETE', url: `/v1/locations/${location.id}`, token: org.adminKey })).statusCode).toBe(204);
      expect((await call(app, { url: `/v1/devices/${here.id}`, token: org.adminKey })).data.data.location_id).toBeNull();
    });
  });

  describe('sensors, scaling profiles and calibrations', () => {
    it('refuses a duplicate key on a device (409) and a device of another organization (422)', async () => {
      const duplicate = await call(app, {
        method: 'POST',
        url: '/v1/sensors',
        token: org.adminKey,
        body: { device_id: fixtures.deviceId, key: 'temp', kind: 'temperature' },
      });
      expect(duplicate.statusCode).toBe(409);
      const foreign = await call(app, {
        method: 'POST',
        url: '/v1/sensors',
        token: org.adminKey,
        body: { device_id: foreignFixtures.deviceId, key: 'x', kind: 'temperature' },
      });
      expect(foreign.statusCode).toBe(422);
      expect(foreign.data.errors[0].pointer).toBe('/body/device_id');
    });

    it('validates scaling profiles by kind and links them to sensors of the same organization only', async () => {
      const bad = [
        { body: { name: `p${n++}`, kind: 'linear' }, field: 'scale' },
        { body: { name: `p${n++}`, kind: 'piecewise_linear', points: [{ raw: 0, value: 0 }] }, field: 'points' },
        {
          body: {
            name: `p${n++}`,
            kind: 'piecewise_linear',
            points: [
              { raw: 1, value: 0 },
              { raw: 0, value: 1 },
            ],
          },
          field: 'points',
        },
        {
          body: {
            name: `p${n++}`,
            kind: 'piecewise_linear',
            points: [
              { raw: 0, value: 0 },
              { raw: 1, value: 1 },
            ],
            scale: 2,
          },
          field: 'scale',
        },
      ];
      for (const { body, field } of bad) {
        const response = await call(app, { method: 'POST', url: '/v1/scaling-profiles', token: org.adminKey, body });
        expect(response.statusCode, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
        expect(response.statusCode).toBeLessThan(500);
        expect(response.data.errors.map((e: any) => e.pointer)).toContain(`/body/${field}`);
      }
      const piecewise = await call(app, {
        method: 'POST',
        url: '/v1/scaling-profiles',
        token: org.adminKey,
        body: {
          name: `pw${n++}`,
          kind: 'piecewise_linear',
          points: [
            { raw: 4, value: 0 },
            { raw: 20, value: 100 },
          ],
          unit: '%',
        },
      });
      expect(piecewise.statusCode).toBe(201);
      expect(piecewise.data.data).toMatchObject({
        kind: 'piecewise_linear',
        scale: null,
        offset: null,
        points: [
          { raw: 4, value: 0 },
          { raw: 20, value: 100 },
        ],
      });
      const sensor = await call(app, {
        method: 'PATCH',
        url: `/v1/sensors/${fixtures.sensorId}`,
        token: org.adminKey,
        body: { scaling_profile_id: piecewise.data.data.id },
      });
      expect(sensor.data.data.scaling_profile_id).toBe(piecewise.data.data.id);
      expect(
        (await call(app, { url: `/v1/sensors?scaling_profile_id=${piecewise.data.data.id}`, token: org.adminKey })).data.data.map(
          (s: any) => s.id,
        ),
      ).toEqual([fixtures.sensorId]);
      const foreign = await call(app, {
        method: 'PATCH',
        url: `/v1/sensors/${foreignFixtures.sensorId}`,
        token: other.adminKey,
        body: { scaling_profile_id: piecewise.data.data.id },
      });
      expect(foreign.statusCode).toBe(422);
      // Deleting the profile clears the reference.
      expect(
        (await call(app, { method: 'DELETE', url: `/v1/scaling-profiles/${piecewise.data.data.id}`, token: org.adminKey })).statusCode,
      ).toBe(204);
      expect((await call(app, { url: `/v1/sensors/${fixtures.sensorId}`, token: org.adminKey })).data.data.scaling_profile_id).toBeNull();
    });

    it("shows a sensor's newest reading (from ingest) in every representation of it", async () => {
      const profile = await call(app, {
        method: 'POST',
        url: '/v1/scaling-profiles',
        token: org.adminKey,
        body: { name: `x2-${n++}`, kind: 'linear', scale: 2, offset: 1 },
      });
      const device = await call(app, {
        method: 'POST',
        url: '/v1/devices',
        token: org.adminKey,
        body: {
          serial: `LAST-${n++}`,
          name: 'Last reading',
          sensors: [
            { key: 'temp', kind: 'temperature', scaling_profile_id: profile.data.data.id },
            { key: 'quiet', kind: 'humidity' },
          ],
        },
      });
      expect(device.statusCode, device.body).toBe(201);
      const [sensorId, quietId] = device.data.data.sensor_ids;
      const none = { last_reading_at: null, last_value: null, last_raw_value: null };
      expect((await call(app, { url: `/v1/sensors/${sensorId}`, token: org.adminKey })).data.data).toMatchObject(none);
      const created = await call(app, {
        method: 'POST',
        url: '/v1/sensors',
        token: org.adminKey,
        body: { device_id: device.data.data.id, key: `new${n++}`, kind: 'co2' },
      });
      expect(created.data.data).toMatchObject(none);

      const ingest = (readings: unknown[]) =>
        call(app, { method: 'POST', url: '/v1/ingest', token: device.data.data.token, body: { readings } });
      const first = await ingest([
        { sensor: 'temp', ts: '2024-03-01T10:00:00Z', value: 20 },
        { sensor: 'temp', ts: '2024-03-01T10:05:00.250Z', value: 21.5 },
      ]);
      expect(first.statusCode, first.body).toBe(200);
      // A late, older reading does not replace the newest.
      expect((await ingest([{ sensor: 'temp', ts: '2024-03-01T09:00:00Z', value: 99 }])).statusCode).toBe(200);
      const newest = { last_reading_at: '2024-03-01T10:05:00.250Z', last_value: 44, last_raw_value: 21.5 };

      expect((await call(app, { url: `/v1/sensors/${sensorId}`, token: org.adminKey })).data.data).toMatchObject(newest);
      const listed = (await call(app, { url: `/v1/sensors?device_id=${device.data.data.id}&limit=1000`, token: org.adminKey })).data.data;
      expect(listed.find((s: any) => s.id === sensorId)).toMatchObject(newest);
      expect(listed.find((s: any) => s.id === quietId)).toMatchObject(none);
      const jsonApi = await call(app, { url: `/v1/sensors/${sensorId}`, token: org.adminKey, accept: JSON_API });
      expect(jsonApi.data.data.attributes).toMatchObject(newest);
      const patched = await call(app, { method: 'PATCH', url: `/v1/sensors/${sensorId}`, token: org.adminKey, body: { name: 'renamed' } });
      expect(patched.data.data).toMatchObject({ name: 'renamed', ...newest });
      const group = await call(app, { method: 'POST', url: '/v1/groups', token: org.adminKey, body: { name: `last-${n++}` } });
      expect(
        (
          await call(app, {
            method: 'POST',
            url: `/v1/groups/${group.data.data.id}/sensors`,
            token: org.adminKey,
            body: { sensor_ids: [sensorId] },
          })
        ).statusCode,
      ).toBeLessThan(300);
      expect((await call(app, { url: `/v1/groups/${group.data.data.id}/sensors`, token: org.adminKey })).data.data).toMatchObject([
        { id: sensorId, ...newest },
      ]);
    });

    it('keeps one active calibration per sensor and filters by state and due date', async () => {
      const sensor = (
        await call(app, {
          method: 'POST',
          url: '/v1/sensors',
          token: org.adminKey,
          body: { device_id: fixtures.deviceId, key: `cal${n++}`, kind: 'temperature' },
        })
      ).data.data;
      const first = await call(app, {
        method: 'POST',
        url: '/v1/calibrations',
        token: org.adminKey,
        body: {
          sensor_id: sensor.id,
          calibrated_at: '2024-01-01T00:00:00Z',
          due_at: '2025-01-01T00:00:00Z',
          offset: 0.5,
          certificate_url: 'https://certs.example/1',
        },
      });
      expect(first.data.data.active).toBe(true);
      const second = await call(app, {
        method: 'POST',
        url: '/v1/calibrations',
        token: org.adminKey,
        body: { sensor_id: sensor.id, calibrated_at: '2025-01-01T00:00:00Z', due_at: '2026-01-01T00:00:00Z', offset: -0.25 },
      });
      expect(second.data.data.active).toBe(true);
      const active = await call(app, { url: `/v1/calibrations?sensor_id=${sensor.id}&active=true`, token: org.adminKey });
      expect(active.data.data.map((c: any) => c.id)).toEqual([second.data.data.id]);
      const reactivated = await call(app, {
        method: 'PATCH',
        url: `/v1/calibrations/${first.data.data.id}`,
        token: org.adminKey,
        body: { active: true },
      });
      expect(reactivated.data.data.active).toBe(true);
      expect((await call(app, { url: `/v1/calibrations/${second.data.data.id}`, token: org.adminKey })).data.data.active).toBe(false);
      const due = await call(app, { url: `/v1/calibrations?sensor_id=${sensor.id}&due_before=2025-06-01T00:00:00Z`, token: org.adminKey });
      expect(due.data.data.map((c: any) => c.id)).toEqual([first.data.data.id]);
      const sorted = await call(app, { url: `/v1/calibrations?sensor_id=${sensor.id}&sort=calibrated_at`, token: org.adminKey });
      expect(sorted.data.data.map((c: any) => c.id)).toEqual([first.data.data.id, second.data.data.id]);
      const backwards = await call(app, {
        method: 'POST',
        url: '/v1/calibrations',
        token: org.adminKey,
        body: { sensor_id: sensor.id, calibrated_at: '2025-01-01T00:00:00Z', due_at: '2024-01-01T00:00:00Z' },
      });
      expect(backwards.statusCode).toBe(422);
      const foreign = await call(app, {
        method: 'POST',
        url: '/v1/calibrations',
        token: other.adminKey,
        body: { sensor_id: sensor.id, calibrated_at: '2025-01-01T00:00:00Z' },
      });
      expect(foreign.statusCode).toBe(422);
      expect(foreign.body).not.toContain(sensor.key);
    });
  });

  describe('groups', () => {
    it('holds users and sensors of its own organization only', async () => {
      const memberId = (await saveMember(database.db, org.id, { email: `grp-${n++}@example.test`, role: 'member' })).id;
      const group = await call(app, {
        method: 'POST',
        url: '/v1/groups',
        token: org.adminKey,
        body: { name: `g${n++}`, user_ids: [memberId], sensor_ids: [fixtures.sensorId] },
      });
      expect(group.statusCode).toBe(201);
      expect(group.data.data).toMatchObject({ user_ids: [memberId], sensor_ids: [fixtures.sensorId] });
      const groupId = group.data.data.id;
      const jsonApi = await call(app, { url: `/v1/groups/${groupId}`, token: org.adminKey, accept: JSON_API });
      expect(jsonApi.data.data.relationships.users.data).toEqual([{ type: 'users', id: memberId }]);
      expect(jsonApi.data.data.relationships.sensors.links.related).toBe(`${PUBLIC_URL}/v1/groups/${groupId}/sensors`);

      expect((await call(app, { url: `/v1/groups/${groupId}/users`, token: org.adminKey })).data.data.map((u: any) => u.id)).toEqual([
        memberId,
      ]);
      expect((await call(app, { url: `/v1/groups/${groupId}/sensors`, token: org.adminKey })).data.data.map((s: any) => s.id)).toEqual([
        fixtures.sensorId,
      ]);
      expect((await call(app, { url: `/v1/groups?user_id=${memberId}`, token: org.adminKey })).data.data.map((g: any) => g.id)).toEqual([
        groupId,
      ]);
      expect((await call(app, { url: `/v1/users?group_id=${groupId}`, token: org.adminKey })).data.data.map((u: any) => u.id)).toEqual([
        memberId,
      ]);
      expect((await call(app, { url: `/v1/devices?group_id=${groupId}`, token: org.adminKey })).data.data.map((d: any) => d.id)).toEqual([
        fixtures.deviceId,
      ]);

      // Another organization's people and sensors cannot be added.
      const foreignUser = await call(app, {
        method: 'POST',
        url: `/v1/groups/${groupId}/users`,
        token: org.adminKey,
        body: { user_ids: [other.ownerId] },
      });
      expect(foreignUser.statusCode).toBe(422);
      const foreignSensor = await call(app, {
        method: 'POST',
        url: `/v1/groups/${groupId}/sensors`,
        token: org.adminKey,
        body: { sensor_ids: [foreignFixtures.sensorId] },
      });
      expect(foreignSensor.statusCode).toBe(422);
      const foreignCreate = await call(app, {
        method: 'POST',
        url: '/v1/groups',
        token: other.adminKey,
        body: { name: `g${n++}`, sensor_ids: [fixtures.sensorId] },
      });
      expect(foreignCreate.statusCode).toBe(422);
      expect(
        (
          await call(app, {
            method: 'POST',
            url: `/v1/groups/${groupId}/sensors`,
            token: other.adminKey,
            body: { sensor_ids: [foreignFixtures.sensorId] },
          })
        ).statusCode,
      ).toBe(404);

      // Add, remove, replace.
      const added = await call(app, {
        method: 'POST',
        url: `/v1/groups/${groupId}/users`,
        token: org.adminKey,
        body: { user_ids: [org.ownerId] },
      });
      expect(added.data.data.user_ids.sort()).toEqual([memberId, org.ownerId].sort());
      expect((await call(app, { method: 'DELETE', url: `/v1/groups/${groupId}/users/${memberId}`, token: org.adminKey })).statusCode).toBe(
        204,
      );
      expect((await call(app, { method: 'DELETE', url: `/v1/groups/${groupId}/users/${memberId}`, token: org.adminKey })).statusCode).toBe(
        404,
      );
      expect(
        (await call(app, { method: 'DELETE', url: `/v1/groups/${groupId}/sensors/${fixtures.sensorId}`, token: org.adminKey })).statusCode,
      ).toBe(204);
      const replaced = await call(app, {
        method: 'PATCH',
        url: `/v1/groups/${groupId}`,
        token: org.adminKey,
        body: { user_ids: [], sensor_ids: [fixtures.sensorId] },
      });
      expect(replaced.data.data).toMatchObject({ user_ids: [], sensor_ids: [fixtures.sensorId] });
      const duplicate = await call(app, { method: 'POST', url: '/v1/groups', token: org.adminKey, body: { name: group.data.data.name } });
      expect(duplicate.statusCode).toBe(409);
      // Listing a group's users needs users:read as well.
      const groupsOnly = await apiKey(database.db, org, ['groups:read']);
      expect((await call(app, { url: `/v1/groups/${groupId}/users`, token: groupsOnly })).statusCode).toBe(403);
      expect((await call(app, { url: `/v1/groups/${groupId}`, token: groupsOnly })).statusCode).toBe(200);
    });
  });

  describe('users', () => {
    /** A member made directly (people join by invitation), as GET /v1/users shows them. */
    const member = async (email: string, role: Role, password?: string) => {
      const user = await saveMember(database.db, org.id, { email, role, password });
      return (await call(app, { url: `/v1/users/${user.id}`, token: org.adminKey })).data.data;
    };

    it('changes roles, deactivates and reactivates, within the rules of ownership', async () => {
      const invited = await member(`invited-${n++}@example.test`, 'member');
      expect(invited).toMatchObject({ role: 'member', status: 'invited', active: true });
      const withPassword = await member(`pw-${n++}@example.test`, 'admin', 'a-long-enough-password');
      expect(withPassword).toMatchObject({ status: 'active', role: 'admin' });

      // The last owner cannot be demoted, deactivated or removed.
      expect(
        (await call(app, { method: 'PATCH', url: `/v1/users/${org.ownerId}`, token: org.adminKey, body: { role: 'admin' } })).statusCode,
      ).toBe(409);
      expect((await call(app, { method: 'POST', url: `/v1/users/${org.ownerId}/deactivate`, token: org.adminKey })).statusCode).toBe(409);
      expect((await call(app, { method: 'DELETE', url: `/v1/users/${org.ownerId}`, token: org.adminKey })).statusCode).toBe(409);

      // An admin cannot make owners, not even by invitation; an owner can.
      const adminKey = await apiKey(database.db, { id: org.id, ownerId: withPassword.id }, ['users:read', 'users:write']);
      expect(
        (await call(app, { method: 'PATCH', url: `/v1/users/${invited.id}`, token: adminKey, body: { role: 'owner' } })).statusCode,
      ).toBe(403);
      expect(
        (await call(app, { method: 'POST', url: '/v1/users', token: adminKey, body: { email: `own-${n++}@example.test`, role: 'owner' } }))
          .statusCode,
      ).toBe(403);
      expect(
        (
          await call(app, {
            method: 'POST',
            url: '/v1/users',
            token: org.adminKey,
            body: { email: `own-${n++}@example.test`, role: 'owner' },
          })
        ).statusCode,
      ).toBe(202);
      expect(
        (await call(app, { method: 'PATCH', url: `/v1/users/${invited.id}`, token: org.adminKey, body: { role: 'owner' } })).data.data.role,
      ).toBe('owner');
      expect(
        (await call(app, { method: 'PATCH', url: `/v1/users/${invited.id}`, token: adminKey, body: { role: 'viewer' } })).statusCode,
      ).toBe(403);

      // Deactivation is per organization and ends the person's API keys there.
      const viewer = await member(`deact-${n++}@example.test`, 'viewer');
      const viewerKey = await apiKey(database.db, { id: org.id, ownerId: viewer.id }, ['devices:read']);
      expect((await call(app, { url: '/v1/devices', token: viewerKey })).statusCode).toBe(200);
      const deactivated = await call(app, { method: 'POST', url: `/v1/users/${viewer.id}/deactivate`, token: org.adminKey });
      expect(deactivated.data.data).toMatchObject({ status: 'deactivated', active: false, deactivated_at: expect.any(String) });
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the bearer cache lives 1 s
      expect((await call(app, { url: '/v1/devices', token: viewerKey })).statusCode).toBe(401);
      expect((await call(app, { url: '/v1/users?active=false', token: org.adminKey })).data.data.map((u: any) => u.id)).toContain(
        viewer.id,
      );
      expect((await call(app, { url: '/v1/users?active=true', token: org.adminKey })).data.data.map((u: any) => u.id)).not.toContain(
        viewer.id,
      );
      const reactivated = await call(app, { method: 'PATCH', url: `/v1/users/${viewer.id}`, token: org.adminKey, body: { active: true } });
      expect(reactivated.data.data.status).toBe('invited');
      expect((await call(app, { url: `/v1/users?role=viewer&email=${viewer.email}`, token: org.adminKey })).data.data).toHaveLength(1);

      // Removal ends the membership only.
      expect((await call(app, { method: 'DELETE', url: `/v1/users/${viewer.id}`, token: org.adminKey })).statusCode).toBe(204);
      expect((await call(app, { url: `/v1/users/${viewer.id}`, token: org.adminKey })).statusCode).toBe(404);
    });

    it("an existing account joins only by accepting, keeping its password and name; another organization's people stay out of sight", async () => {
      const email = `shared-${n++}@example.test`;
      const theirs = await saveMember(database.db, other.id, {
        email,
        name: 'Original',
        password: 'original-password-123',
        role: 'member',
      });
      const before = await database.db
        .selectFrom('users')
        .select(['password_hash', 'name'])
        .where('email', '=', email)
        .executeTakeFirstOrThrow();
      const invited = await call(app, {
        method: 'POST',
        url: '/v1/users',
        token: org.adminKey,
        body: { email, name: 'Hijacked', role: 'viewer' },
      });
      expect(invited.statusCode).toBe(202);
      expect(invited.body).not.toContain(theirs.id);
      expect((await call(app, { url: `/v1/users/${theirs.id}`, token: org.adminKey })).statusCode).toBe(404);

      // Their acceptance (the invitation pages call this) makes them a member with the role offered.
      const token = new URL(invited.data.meta.accept_url).searchParams.get('token')!;
      expect(await answerAsUser(database.db, (await findInvitationByToken(database.db, token))!, theirs, 'accept', '127.0.0.1')).toBe(
        'accepted',
      );
      const after = await database.db
        .selectFrom('users')
        .select(['password_hash', 'name'])
        .where('email', '=', email)
        .executeTakeFirstOrThrow();
      expect(after).toEqual(before);
      expect((await call(app, { url: `/v1/users/${theirs.id}`, token: org.adminKey })).data.data).toMatchObject({
        role: 'viewer',
        name: 'Original',
      });
      // Their name belongs to them while they are in two organizations.
      expect(
        (await call(app, { method: 'PATCH', url: `/v1/users/${theirs.id}`, token: org.adminKey, body: { name: 'Renamed' } })).statusCode,
      ).toBe(409);
      // Removing them here leaves the other membership.
      expect((await call(app, { method: 'DELETE', url: `/v1/users/${theirs.id}`, token: org.adminKey })).statusCode).toBe(204);
      expect((await call(app, { url: `/v1/users/${theirs.id}`, token: other.adminKey })).statusCode).toBe(200);
      // The other organization's owner is not a user here.
      expect((await call(app, { url: `/v1/users/${other.ownerId}`, token: org.adminKey })).statusCode).toBe(404);
      expect((await call(app, { method: 'POST', url: `/v1/users/${other.ownerId}/deactivate`, token: org.adminKey })).statusCode).toBe(404);
    });
  });
});
