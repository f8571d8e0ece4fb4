import type { KyselyPlugin } from 'kysely';
import * as kitsu from 'kitsu-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/server/context.js';
import type { Db } from '../../src/storage/database.js';
import { backends, useDatabase } from '../support/databases.js';
import { JSON_API, PUBLIC_URL, type TestOrg, apiKey, call, createOrg, logFailedDelivery, makeApp, memberWithKey } from './support.js';

/**
 * JSON:API 1.1 (https://jsonapi.org/format/1.1/) where `application/vnd.api+json` is asked: the
 * documents are read back with a JSON:API client library (kitsu-core's deserialiser) and checked
 * against the specification's MUST rules: top-level and resource object members, relationship
 * objects, compound documents (each resource once, full linkage), sparse fieldsets, error objects,
 * content negotiation, and request documents on the writable resources.
 */

type Doc = Record<string, any>;

// kitsu-core's type declarations re-export without file extensions, which NodeNext resolution cannot
// follow; its runtime module (ESM) exports deserialise as documented. It links the document in
// place, so it is handed a copy.
const kitsuCore = kitsu as unknown as { deserialise(document: Doc): { data: unknown } };
const deserialise = (document: Doc) => kitsuCore.deserialise(structuredClone(document));

const TOP_LEVEL = new Set(['data', 'errors', 'meta', 'jsonapi', 'links', 'included']);
const RESOURCE_MEMBERS = new Set(['type', 'id', 'lid', 'attributes', 'relationships', 'links', 'meta']);
const ERROR_MEMBERS = new Set(['id', 'links', 'status', 'code', 'title', 'detail', 'source', 'meta']);
const key = (r: Doc): string => `${r.type}/${r.id}`;

function isIdentifier(value: unknown): boolean {
  const v = value as Doc;
  return typeof v === 'object' && v !== null && typeof v.type === 'string' && typeof v.id === 'string';
}

/** Every MUST of a resource object (§7.2) and its relationship objects (§7.2.2.2). */
function checkResourceObject(resource: Doc, where: string): void {
  expect(typeof resource.type, `${where}: type`).toBe('string');
  expect(typeof resource.id, `${where}: id`).toBe('string');
  for (const member of Object.keys(resource)) expect(RESOURCE_MEMBERS.has(member), `${where}: member ${member}`).toBe(true);
  const attributes = Object.keys(resource.attributes ?? {});
  const relationships = Object.keys(resource.relationships ?? {});
  // Fields share one namespace with each other and with type and id.
  for (const field of [...attributes, ...relationships]) expect(['type', 'id'], `${where}: field ${field}`).not.toContain(field);
  expect(
    attributes.filter((a) => relationships.includes(a)),
    `${where}: shared names`,
  ).toEqual([]);
  // Foreign keys are relationships, not attributes.
  for (const rel of relationships) expect(attributes, `${where}: ${rel}_id as an attribute`).not.toContain(`${rel}_id`);
  for (const [name, rel] of Object.entries<Doc>(resource.relationships ?? {})) {
    const at = `${where}.relationships.${name}`;
    expect('links' in rel || 'data' in rel || 'meta' in rel, `${at}: links, data or meta`).toBe(true);
    if ('links' in rel) expect('self' in rel.links || 'related' in rel.links, `${at}.links: self or related`).toBe(true);
    if ('data' in rel) {
      const linkage = rel.data;
      if (Array.isArray(linkage)) for (const item of linkage) expect(isIdentifier(item), `${at}.data[]`).toBe(true);
      else if (linkage !== null) expect(isIdentifier(linkage), `${at}.data`).toBe(true);
    }
  }
  expect(resource.links?.self, `${where}: links.self`).toMatch(new RegExp(`^${PUBLIC_URL}/v1/`));
}

/** The MUSTs of a top-level document (§7.1) and of compound documents (§7.4): unique, fully linked. */
function checkDocument(
  response: { statusCode: number; headers: Record<string, unknown>; data: Doc },
  options: { sparseRelationships?: boolean } = {},
): Doc {
  const doc = response.data;
  expect(response.headers['content-type']).toBe(JSON_API);
  for (const member of Object.keys(doc)) expect(TOP_LEVEL.has(member), `top-level member ${member}`).toBe(true);
  expect('data' in doc || 'errors' in doc || 'meta' in doc).toBe(true);
  expect('data' in doc && 'errors' in doc).toBe(false);
  expect(doc.jsonapi).toEqual({ version: '1.1' });
  if ('errors' in doc) return doc;
  expect(doc.links.self).toMatch(new RegExp(`^${PUBLIC_URL}/v1/`));
  const primary = Array.isArray(doc.data) ? doc.data : doc.data === null ? [] : [doc.data];
  for (const [i, r] of primary.entries()) checkResourceObject(r, `data[${i}]`);
  if (!('included' in doc)) return doc;
  const included: Doc[] = doc.included;
  for (const [i, r] of included.entries()) checkResourceObject(r, `included[${i}]`);
  // One resource object per type and id, across primary data and included.
  const all = [...primary, ...included].map(key);
  expect(new Set(all).size, 'a resource appears twice').toBe(all.length);
  // Full linkage: every included resource is reached from primary data through relationship data.
  const byKey = new Map(included.map((r) => [key(r), r]));
  const reached = new Set<string>();
  const walk = (resource: Doc) => {
    for (const rel of Object.values<Doc>(resource.relationships ?? {})) {
      const linkage = rel.data === undefined || rel.data === null ? [] : Array.isArray(rel.data) ? rel.data : [rel.data];
      for (const identifier of linkage) {
        const target = byKey.get(key(identifier));
        if (target && !reached.has(key(target))) {
          reached.add(key(target));
          walk(target);
        }
      }
    }
  };
  for (const r of primary) walk(r);
  // The one exception the specification makes: linkage left out by a sparse fieldset.
  if (options.sparseRelationships) return doc;
  expect(
    included.map(key).filter((k) => !reached.has(k)),
    'included resources no linkage reaches',
  ).toEqual([]);
  return doc;
}

/** Error objects (§7.6): allowed members, status as a string equal to the HTTP status. */
function checkErrors(response: { statusCode: number; headers: Record<string, unknown>; data: Doc }, status: number): Doc[] {
  expect(response.statusCode, JSON.stringify(response.data)).toBe(status);
  checkDocument(response);
  const errors: Doc[] = response.data.errors;
  expect(Array.isArray(errors) && errors.length > 0).toBe(true);
  for (const error of errors) {
    for (const member of Object.keys(error)) expect(ERROR_MEMBERS.has(member), `error member ${member}`).toBe(true);
    expect(error.status).toBe(String(status));
    expect(typeof error.title).toBe('string');
    expect(typeof error.detail).toBe('string');
    if (error.source) {
      const members = Object.keys(error.source);
      expect(members.every((m) => ['pointer', 'parameter', 'header'].includes(m))).toBe(true);
      if (error.source.pointer !== undefined) expect(error.source.pointer).toMatch(/^(\/|$)/);
    }
  }
  return errors;
}

/** The database, recording the tables each statement built with it names (a Kysely plugin). */
function recording(db: Db): { db: Db; statements: string[][] } {
  const statements: string[][] = [];
  // A builder used as a subquery is transformed too (under its own query id): a statement is
  // counted when its result comes back, with the tables of its whole query.
  const tables = new Map<string, string[]>();
  const plugin: KyselyPlugin = {
    transformQuery: ({ node, queryId }) => {
      tables.set(
        queryId.queryId,
        [...JSON.stringify(node).matchAll(/"kind":"IdentifierNode","name":"([a-z_]+)"/g)].map((m) => m[1]!),
      );
      return node;
    },
    transformResult: async ({ result, queryId }) => {
      statements.push(tables.get(queryId.queryId) ?? []);
      tables.delete(queryId.queryId);
      return result;
    },
  };
  return { db: db.withPlugin(plugin), statements };
}

describe.each(backends)('JSON:API 1.1 on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let org: TestOrg;
  const ids = {
    lab: '',
    hall: '',
    profile: '',
    devices: [] as string[],
    sensors: [] as string[],
    threshold: '',
    alarm: '',
    calibration: '',
  };
  let deviceToken = '';

  const get = (url: string, token = org.adminKey) => call(app, { url, token, accept: JSON_API });
  const send = (method: 'POST' | 'PATCH', url: string, body: unknown, token = org.adminKey) =>
    call(app, { method, url, token, body, accept: JSON_API, contentType: JSON_API });

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    org = await createOrg(database.db, 'jsonapi');
    // Everything is made with JSON:API request documents, relationships as linkage.
    const location = async (slug: string) => {
      const created = await send('POST', '/v1/locations', { data: { type: 'locations', attributes: { slug, name: slug.toUpperCase() } } });
      expect(created.statusCode, created.body).toBe(201);
      return created.data.data.id as string;
    };
    ids.lab = await location('lab');
    ids.hall = await location('hall');
    const profile = await send('POST', '/v1/scaling-profiles', {
      data: { type: 'scaling-profiles', attributes: { name: 'double', kind: 'linear', scale: 2, offset: 0 } },
    });
    expect(profile.statusCode, profile.body).toBe(201);
    ids.profile = profile.data.data.id;
    for (const [i, at] of [ids.lab, ids.lab, ids.hall, null].entries()) {
      const device = await send('POST', '/v1/devices', {
        data: {
          type: 'devices',
          attributes: { serial: `D-${i}`, name: `Device ${i}`, sensors: [{ key: 'temp', kind: 'temperature' }] },
          relationships: { location: { data: at ? { type: 'locations', id: at } : null } },
        },
      });
      expect(device.statusCode, device.body).toBe(201);
      ids.devices.push(device.data.data.id);
      ids.sensors.push(device.data.data.relationships.sensors.data[0].id);
      if (i === 0) deviceToken = device.data.data.attributes.token;
    }
    const sensor = await send('POST', '/v1/sensors', {
      data: {
        type: 'sensors',
        attributes: { key: 'hum', kind: 'humidity' },
        relationships: {
          device: { data: { type: 'devices', id: ids.devices[0] } },
          scaling_profile: { data: { type: 'scaling-profiles', id: ids.profile } },
        },
      },
    });
    expect(sensor.statusCode, sensor.body).toBe(201);
    ids.sensors.push(sensor.data.data.id);
    const threshold = await send('POST', '/v1/alarm-thresholds', {
      data: {
        type: 'alarm-thresholds',
        attributes: { max: 30, severity: 'critical' },
        relationships: { sensor: { data: { type: 'sensors', id: ids.sensors[0] } } },
      },
    });
    expect(threshold.statusCode, threshold.body).toBe(201);
    ids.threshold = threshold.data.data.id;
    const calibration = await send('POST', '/v1/calibrations', {
      data: {
        type: 'calibrations',
        attributes: { calibrated_at: '2024-01-01T00:00:00Z', offset: 0.5 },
        relationships: { sensor: { data: { type: 'sensors', id: ids.sensors[0] } } },
      },
    });
    expect(calibration.statusCode, calibration.body).toBe(201);
    ids.calibration = calibration.data.data.id;
    const ingest = await call(app, {
      method: 'POST',
      url: '/v1/ingest',
      token: deviceToken,
      body: { readings: [{ sensor: 'temp', ts: new Date().toISOString(), value: 99 }] },
    });
    expect(ingest.statusCode, ingest.body).toBe(200);
    const alarms = await get('/v1/alarms');
    expect(alarms.data.data).toHaveLength(1);
    ids.alarm = alarms.data.data[0].id;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('every resource object has type, id, attributes, relationships with linkage and links.related, links.self', async () => {
    for (const url of [
      '/v1/devices',
      `/v1/devices/${ids.devices[0]}`,
      '/v1/sensors',
      `/v1/sensors/${ids.sensors[4]}`,
      '/v1/alarms',
      `/v1/alarms/${ids.alarm}`,
      '/v1/alarm-thresholds',
      `/v1/alarm-thresholds/${ids.threshold}`,
      '/v1/calibrations',
      '/v1/locations',
      '/v1/scaling-profiles',
    ]) {
      const response = await get(url);
      expect(response.statusCode, url).toBe(200);
      checkDocument(response);
    }
    const device = (await get(`/v1/devices/${ids.devices[0]}`)).data.data;
    expect(device.relationships.location).toEqual({
      data: { type: 'locations', id: ids.lab },
      links: {
        self: `${PUBLIC_URL}/v1/devices/${ids.devices[0]}/relationships/location`,
        related: `${PUBLIC_URL}/v1/locations/${ids.lab}`,
      },
    });
    expect(device.relationships.sensors.links.related).toBe(`${PUBLIC_URL}/v1/sensors?device_id=${ids.devices[0]}`);
    expect(device.attributes).not.toHaveProperty('location_id');
    const sensor = (await get(`/v1/sensors/${ids.sensors[4]}`)).data.data;
    expect(sensor.relationships.device.data).toEqual({ type: 'devices', id: ids.devices[0] });
    expect(sensor.relationships.scaling_profile.data).toEqual({ type: 'scaling-profiles', id: ids.profile });
    expect(sensor.relationships.alarms.links.related).toBe(`${PUBLIC_URL}/v1/alarms?sensor_id=${ids.sensors[4]}`);
    const alarm = (await get(`/v1/alarms/${ids.alarm}`)).data.data;
    expect(alarm.relationships.sensor.data).toEqual({ type: 'sensors', id: ids.sensors[0] });
    expect(alarm.relationships.threshold.data).toEqual({ type: 'alarm-thresholds', id: ids.threshold });
    const threshold = (await get(`/v1/alarm-thresholds/${ids.threshold}`)).data.data;
    expect(threshold.relationships.sensor.data).toEqual({ type: 'sensors', id: ids.sensors[0] });
    expect(threshold.relationships.alarms.links.related).toBe(`${PUBLIC_URL}/v1/alarms?threshold_id=${ids.threshold}`);
    // The plain JSON form is unchanged: foreign keys as fields, no JSON:API-only relationships.
    const flat = (await call(app, { url: `/v1/sensors/${ids.sensors[4]}`, token: org.adminKey })).data.data;
    expect(Object.keys(flat).sort()).toEqual(
      [
        'id',
        'device_id',
        'key',
        'kind',
        'unit',
        'name',
        'scaling_profile_id',
        'offline_after_seconds',
        'last_reading_at',
        'last_value',
        'last_raw_value',
        'created_at',
        'updated_at',
        'links',
      ].sort(),
    );
  });

  it('include on lists and single resources: compound documents with each resource once and full linkage', async () => {
    const devices = checkDocument(await get('/v1/devices?include=location,sensors&sort=serial'));
    expect(devices.included.filter((r: Doc) => r.type === 'locations').map((r: Doc) => r.id)).toEqual(
      expect.arrayContaining([ids.lab, ids.hall]),
    );
    expect(devices.included.filter((r: Doc) => r.type === 'locations')).toHaveLength(2); // the lab once, for two devices
    expect(devices.included.filter((r: Doc) => r.type === 'sensors')).toHaveLength(5);
    const read = deserialise(devices).data as Doc[];
    expect(read.map((d) => d.serial)).toEqual(['D-0', 'D-1', 'D-2', 'D-3']);
    expect(read[0]!.location.data).toMatchObject({ id: ids.lab, slug: 'lab', name: 'LAB' });
    expect(read[2]!.location.data).toMatchObject({ id: ids.hall, slug: 'hall' });
    expect(devices.data[3].relationships.location.data).toBeNull();
    expect(read[0]!.sensors.data.map((s: Doc) => s.key)).toEqual(['hum', 'temp']);
    expect(read[1]!.sensors.data.map((s: Doc) => s.key)).toEqual(['temp']);

    const one = checkDocument(await get(`/v1/devices/${ids.devices[0]}?include=sensors.calibrations,sensors.scaling_profile,location`));
    const device = deserialise(one).data as Doc;
    expect(device.location.data.slug).toBe('lab');
    const temp = device.sensors.data.find((s: Doc) => s.key === 'temp');
    const hum = device.sensors.data.find((s: Doc) => s.key === 'hum');
    expect(temp.calibrations.data.map((c: Doc) => c.id)).toEqual([ids.calibration]);
    expect(temp.calibrations.data[0].offset).toBe(0.5);
    expect(hum.scaling_profile.data).toMatchObject({ id: ids.profile, name: 'double' });
    // kitsu-core reads an empty to-one as absent; the document says null.
    expect(temp.scaling_profile.data).toBeUndefined();
    expect(one.included.find((r: Doc) => r.id === temp.id).relationships.scaling_profile.data).toBeNull();

    const sensors = checkDocument(await get('/v1/sensors?include=device.location,location,scaling_profile&sort=created_at'));
    for (const sensor of deserialise(sensors).data as Doc[]) {
      // sensor.location (through the device) and sensor.device.location agree.
      expect(sensor.location.data?.id ?? null).toBe(sensor.device.data.location.data?.id ?? null);
    }

    const alarms = checkDocument(await get('/v1/alarms?include=sensor.device.location,threshold'));
    const alarm = (deserialise(alarms).data as Doc[])[0]!;
    expect(alarm.threshold.data).toMatchObject({ id: ids.threshold, max: 30, severity: 'critical' });
    expect(alarm.sensor.data).toMatchObject({ id: ids.sensors[0], key: 'temp' });
    expect(alarm.sensor.data.device.data).toMatchObject({ id: ids.devices[0], serial: 'D-0' });
    expect(alarm.sensor.data.device.data.location.data).toMatchObject({ id: ids.lab, slug: 'lab' });
    const alarmOne = checkDocument(await get(`/v1/alarms/${ids.alarm}?include=sensor`));
    expect(alarmOne.included).toEqual([expect.objectContaining({ type: 'sensors', id: ids.sensors[0] })]);

    const thresholds = checkDocument(await get('/v1/alarm-thresholds?include=sensor.device'));
    const threshold = (deserialise(thresholds).data as Doc[])[0]!;
    expect(threshold.sensor.data.device.data.id).toBe(ids.devices[0]);
    checkDocument(await get(`/v1/alarm-thresholds/${ids.threshold}?include=sensor`));

    // Primary data is never repeated in included, even when a path leads back to it.
    const back = checkDocument(await get('/v1/devices?include=sensors.device'));
    expect(back.included.every((r: Doc) => r.type === 'sensors')).toBe(true);
    const locations = checkDocument(await get('/v1/locations?include=devices.sensors'));
    expect(locations.included.filter((r: Doc) => r.type === 'devices')).toHaveLength(3);
  });

  it('include loads each path with a constant number of statements, never one per row', async () => {
    const recorded = recording(database.db);
    const recordingApp = await makeApp(recorded.db, database.current.handle.kind);
    try {
      const statementsOf = async (url: string) => {
        recorded.statements.length = 0;
        const response = await call(recordingApp, { url, token: org.adminKey, accept: JSON_API });
        expect(response.statusCode, response.body).toBe(200);
        const touching = (table: string) => recorded.statements.filter((tables) => tables.includes(table)).length;
        return { locations: touching('locations'), sensors: touching('sensors'), calibrations: touching('calibrations') };
      };
      const path = 'include=location,sensors.calibrations';
      const small = await statementsOf(`/v1/devices?limit=1&${path}`);
      const large = await statementsOf(`/v1/devices?limit=4&${path}`);
      expect(small).toEqual({ locations: 1, sensors: 1, calibrations: 1 });
      expect(large).toEqual(small);
      const alarms = await statementsOf('/v1/alarms?include=sensor.location');
      expect(alarms).toMatchObject({ sensors: 2, locations: 1 });
    } finally {
      await recordingApp.close();
    }
  });

  it('sparse fieldsets: only the named attributes and relationships, in primary data and included', async () => {
    const doc = checkDocument(
      await get('/v1/devices?include=location,sensors&fields[devices]=name,location&fields[locations]=slug&fields[sensors]=key'),
      { sparseRelationships: true },
    );
    expect(doc.included.filter((r: Doc) => r.type === 'sensors')).toHaveLength(5);
    for (const device of doc.data) {
      expect(Object.keys(device.attributes)).toEqual(['name']);
      expect(Object.keys(device.relationships ?? {})).toEqual(['location']);
    }
    for (const included of doc.included) {
      if (included.type === 'locations') expect(Object.keys(included.attributes)).toEqual(['slug']);
      if (included.type === 'sensors') {
        expect(Object.keys(included.attributes)).toEqual(['key']);
        expect(included.relationships).toBeUndefined();
      }
    }
    const read = deserialise(doc).data as Doc[];
    expect(read[0]).not.toHaveProperty('serial');
    expect(read[0]!.location.data).toMatchObject({ type: 'locations', id: ids.lab, slug: 'lab' });
    expect(read[0]!.location.data).not.toHaveProperty('name');
    // With the relationship in the fieldset, full linkage again.
    const linked = checkDocument(await get('/v1/devices?include=sensors&fields[devices]=sensors&fields[sensors]=kind'));
    const fieldsOf = (s: Doc) =>
      Object.keys(s)
        .filter((k) => k !== 'links')
        .sort();
    expect((deserialise(linked).data as Doc[])[0]!.sensors.data.map(fieldsOf)).toEqual([
      ['id', 'kind', 'type'],
      ['id', 'kind', 'type'],
    ]);
    // An empty fieldset: no fields at all.
    const bare = checkDocument(await get(`/v1/alarms/${ids.alarm}?fields[alarms]=`));
    expect(bare.data).not.toHaveProperty('attributes');
    expect(bare.data).not.toHaveProperty('relationships');
    const one = checkDocument(await get(`/v1/alarm-thresholds/${ids.threshold}?fields[alarm-thresholds]=max,sensor`));
    expect(one.data.attributes).toEqual({ max: 30 });
    expect(Object.keys(one.data.relationships)).toEqual(['sensor']);
  });

  it('400 with a JSON:API error naming the parameter for an unknown include path, field or type', async () => {
    for (const [url, parameter] of [
      ['/v1/devices?include=owner', 'include'],
      ['/v1/devices?include=location.owner', 'include'],
      ['/v1/sensors?include=readings', 'include'],
      [`/v1/alarms/${ids.alarm}?include=sensor,nope`, 'include'],
      ['/v1/devices?fields[devices]=name,colour', 'fields[devices]'],
      ['/v1/devices?fields[gadgets]=name', 'fields[gadgets]'],
      [`/v1/alarm-thresholds/${ids.threshold}?fields[alarm-thresholds]=sensor_id`, 'fields[alarm-thresholds]'],
    ] as const) {
      const [error] = checkErrors(await get(url), 400);
      expect(error!.source, url).toEqual({ parameter });
    }
    // They are JSON:API parameters: the plain JSON form refuses them rather than ignoring them.
    const plain = await call(app, { url: '/v1/devices?include=location', token: org.adminKey });
    expect(plain.statusCode).toBe(400);
    expect(plain.headers['content-type']).toContain('application/problem+json');
    // Including what the credential may not read is refused like reading it.
    const alarmsOnly = await apiKey(database.db, org, ['alarms:read']);
    expect((await get('/v1/alarms', alarmsOnly)).statusCode).toBe(200);
    checkErrors(await get('/v1/alarms?include=sensor', alarmsOnly), 403);
  });

  it('answers every error with JSON:API error objects when JSON:API is asked', async () => {
    checkErrors(await get('/v1/devices/00000000-0000-4000-8000-000000000000'), 404);
    checkErrors(await get('/v1/no-such-thing'), 404);
    checkErrors(await call(app, { url: '/v1/devices', accept: JSON_API }), 401);
    checkErrors(await call(app, { method: 'DELETE', url: '/v1/devices', token: org.adminKey, accept: JSON_API }), 405);
    const [limit] = checkErrors(await get('/v1/devices?limit=0'), 400);
    expect(limit!.source).toEqual({ parameter: 'limit' });
    const invalid = checkErrors(
      await send('POST', '/v1/locations', { data: { type: 'locations', attributes: { slug: 'Not A Slug' } } }),
      400,
    );
    expect(invalid.length).toBeGreaterThan(0);
    for (const error of invalid) expect(error.source.pointer).toMatch(/^\/data\/attributes\/(slug|name)$/);
    const [wrongType] = checkErrors(await send('POST', '/v1/locations', { data: { type: 'devices', attributes: {} } }), 409);
    expect(wrongType!.source).toEqual({ pointer: '/data/type' });
    const [wrongLinkage] = checkErrors(
      await send('PATCH', `/v1/devices/${ids.devices[3]}`, {
        data: { type: 'devices', id: ids.devices[3], relationships: { location: { data: { type: 'sensors', id: ids.lab } } } },
      }),
      409,
    );
    expect(wrongLinkage!.source).toEqual({ pointer: '/data/relationships/location/data/type' });
    const [missing] = checkErrors(
      await send('PATCH', `/v1/devices/${ids.devices[3]}`, {
        data: {
          type: 'devices',
          id: ids.devices[3],
          relationships: { location: { data: { type: 'locations', id: '00000000-0000-4000-8000-000000000000' } } },
        },
      }),
      422,
    );
    expect(missing!.source).toEqual({ pointer: '/data/relationships/location/data' });
    checkErrors(
      await call(app, {
        method: 'POST',
        url: '/v1/locations',
        token: org.adminKey,
        body: '{"data":',
        contentType: JSON_API,
        accept: JSON_API,
      }),
      400,
    );
  });

  it('content negotiation: 406 for Accept, 415 for Content-Type, with media type parameters other than ext or profile', async () => {
    for (const accept of [`${JSON_API}; charset=utf-8`, `${JSON_API}; ext="https://jsonapi.org/ext/atomic"`]) {
      checkErrors(await call(app, { url: '/v1/devices', token: org.adminKey, accept }), 406);
    }
    expect(
      (await call(app, { url: '/v1/devices', token: org.adminKey, accept: `${JSON_API}; profile="https://example.test/p"` })).statusCode,
    ).toBe(200);
    const body = { data: { type: 'locations', attributes: { slug: 'ct', name: 'CT' } } };
    for (const contentType of [`${JSON_API}; charset=utf-8`, `${JSON_API}; version=1`]) {
      const response = await call(app, { method: 'POST', url: '/v1/locations', token: org.adminKey, body, contentType, accept: JSON_API });
      checkErrors(response, 415);
    }
  });

  it('takes JSON:API request documents on the writable resources, relationships as foreign keys', async () => {
    // To-one linkage set, changed and emptied; the answer is read back with the client library.
    const moved = await send('PATCH', `/v1/devices/${ids.devices[3]}`, {
      data: { type: 'devices', id: ids.devices[3], relationships: { location: { data: { type: 'locations', id: ids.hall } } } },
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect((deserialise(checkDocument(moved)).data as Doc).location.data.id).toBe(ids.hall);
    const cleared = await send('PATCH', `/v1/devices/${ids.devices[3]}`, {
      data: { type: 'devices', id: ids.devices[3], relationships: { location: { data: null } } },
    });
    expect(cleared.data.data.relationships.location.data).toBeNull();
    const flat = await call(app, { url: `/v1/devices/${ids.devices[3]}`, token: org.adminKey });
    expect(flat.data.data.location_id).toBeNull();
    // To-many linkage (a group's users and sensors).
    const group = await send('POST', '/v1/groups', {
      data: {
        type: 'groups',
        attributes: { name: 'night shift' },
        relationships: {
          users: { data: [{ type: 'users', id: org.ownerId }] },
          sensors: { data: ids.sensors.slice(0, 2).map((id) => ({ type: 'sensors', id })) },
        },
      },
    });
    expect(group.statusCode, group.body).toBe(201);
    expect(checkDocument(group).data.relationships.sensors.data).toHaveLength(2);
    // Notification rules, sensors, thresholds, calibrations: the linkage lands in the foreign key.
    const sensorMoved = await send('PATCH', `/v1/sensors/${ids.sensors[4]}`, {
      data: { type: 'sensors', id: ids.sensors[4], relationships: { scaling_profile: { data: null } } },
    });
    expect(sensorMoved.data.data.relationships.scaling_profile.data).toBeNull();
    const threshold = await send('PATCH', `/v1/alarm-thresholds/${ids.threshold}`, {
      data: { type: 'alarm-thresholds', id: ids.threshold, attributes: { max: 40 } },
    });
    expect(threshold.data.data.attributes.max).toBe(40);
    // An action with a body: acknowledging an alarm with a note.
    const acknowledged = await send('POST', `/v1/alarms/${ids.alarm}/acknowledge`, {
      data: { type: 'alarms', id: ids.alarm, attributes: { note: 'on it' } },
    });
    expect(acknowledged.statusCode, acknowledged.body).toBe(200);
    expect(checkDocument(acknowledged).data.attributes.status).toBe('acknowledged');
    // A relationship the resource has but a body cannot set is refused, pointing at it.
    const [readOnly] = checkErrors(
      await send('PATCH', `/v1/sensors/${ids.sensors[4]}`, {
        data: { type: 'sensors', id: ids.sensors[4], relationships: { location: { data: { type: 'locations', id: ids.lab } } } },
      }),
      400,
    );
    expect(readOnly!.source.pointer).toMatch(/^\/data\/relationships\/location/);
  });

  describe('relationships of every resource type', () => {
    const extra = { person: '', group: '', solo: '', rule: '', comment: '', webhook: '', invitation: '', deliveries: [] as string[] };
    /** The collection of every resource type the API serves as JSON:API, and /v1/me. */
    const COLLECTIONS = [
      '/v1/devices',
      '/v1/sensors',
      '/v1/locations',
      '/v1/scaling-profiles',
      '/v1/calibrations',
      '/v1/alarms',
      '/v1/alarm-thresholds',
      '/v1/groups',
      '/v1/users',
      '/v1/invitations',
      '/v1/notification-rules',
      '/v1/webhooks',
      '/v1/me',
    ];
    /** A time series, paged at its own endpoint: the one relationship include refuses (400). */
    const NOT_INCLUDABLE = new Set(['readings']);
    const withQuery = (url: string, query: string) => `${url}${url.includes('?') ? '&' : '?'}${query}`;
    const relationshipNames = (doc: Doc): string[] => {
      const primary = Array.isArray(doc.data) ? doc.data : [doc.data];
      return [...new Set(primary.flatMap((r: Doc) => Object.keys(r.relationships ?? {})))].sort();
    };
    const linkageIds = (data: unknown): string[] =>
      (data === null || data === undefined ? [] : Array.isArray(data) ? data : [data]).map((r: Doc) => r.id).sort();

    beforeAll(async () => {
      // The earlier test took the profile off the sensor: it has one again.
      const scaled = await call(app, {
        method: 'PATCH',
        url: `/v1/sensors/${ids.sensors[4]}`,
        token: org.adminKey,
        body: { scaling_profile_id: ids.profile },
      });
      expect(scaled.statusCode, scaled.body).toBe(200);
      extra.person = (await memberWithKey(database.db, org, 'member', ['devices:read'])).userId;
      const group = async (name: string, users: string[], sensors: string[]) => {
        const created = await send('POST', '/v1/groups', {
          data: { type: 'groups', attributes: { name, user_ids: users, sensor_ids: sensors } },
        });
        expect(created.statusCode, created.body).toBe(201);
        return created.data.data.id as string;
      };
      extra.group = await group('relations', [org.ownerId, extra.person], ids.sensors.slice(0, 2));
      extra.solo = await group('solo', [extra.person], []);
      const rule = await call(app, {
        method: 'POST',
        url: '/v1/notification-rules',
        token: org.adminKey,
        body: {
          threshold_id: ids.threshold,
          user_ids: [extra.person],
          group_ids: [extra.group],
          escalate_after_seconds: 3600,
          escalation_user_ids: [org.ownerId],
          escalation_group_ids: [extra.solo],
        },
      });
      expect(rule.statusCode, rule.body).toBe(201);
      extra.rule = rule.data.data.id;
      const comment = await call(app, {
        method: 'POST',
        url: `/v1/alarms/${ids.alarm}/comments`,
        token: org.adminKey,
        body: { body: 'seen' },
      });
      expect(comment.statusCode, comment.body).toBe(201);
      extra.comment = comment.data.data.id;
      const invitation = await call(app, {
        method: 'POST',
        url: '/v1/users',
        token: org.adminKey,
        body: { email: 'invited-relations@example.test', role: 'viewer' },
      });
      expect(invitation.statusCode, invitation.body).toBeLessThan(300);
      extra.invitation = invitation.data.data.id;
      // A disabled subscription (nothing is sent) with a delivery log of two attempts, written here.
      const webhook = await call(app, {
        method: 'POST',
        url: '/v1/webhooks',
        token: org.adminKey,
        body: { url: 'https://93.184.216.34/relations', event_types: ['alarm.resolved'], enabled: false },
      });
      expect(webhook.statusCode, webhook.body).toBe(201);
      extra.webhook = webhook.data.data.id;
      const event = await database.db
        .insertInto('events')
        .values({ organization_id: org.id, type: 'alarm.resolved', data: '{}', occurred_at: new Date() })
        .returning('id')
        .executeTakeFirstOrThrow();
      const task = await database.db
        .insertInto('webhook_tasks')
        .values({ webhook_id: extra.webhook, event_id: event.id, next_attempt_at: '2999-01-01T00:00:00Z' })
        .returning(['id', 'webhook_id', 'event_id'])
        .executeTakeFirstOrThrow();
      for (const attempt of [1, 2]) extra.deliveries.push(await logFailedDelivery(database.db, task, attempt));
    });

    it('every relationship a resource advertises can be included (compound documents, full linkage)', async () => {
      for (const url of COLLECTIONS) {
        const names = relationshipNames(checkDocument(await get(url)));
        expect(names.length, url).toBeGreaterThan(0);
        const includable = names.filter((name) => !NOT_INCLUDABLE.has(name));
        const doc = checkDocument(await get(withQuery(url, `include=${includable.join(',')}`)));
        for (const resource of Array.isArray(doc.data) ? doc.data : [doc.data]) {
          for (const name of includable) expect(resource.relationships[name], `${url} ${name}`).toHaveProperty('data');
        }
        expect(deserialise(doc).data, url).toBeDefined();
        for (const name of names.filter((n) => NOT_INCLUDABLE.has(n))) {
          const [error] = checkErrors(await get(withQuery(url, `include=${name}`)), 400);
          expect(error!.source).toEqual({ parameter: 'include' });
        }
      }
      // What the documents hold, read back with the client library.
      const group = deserialise(checkDocument(await get(`/v1/groups/${extra.group}?include=users.groups,sensors.device`))).data as Doc;
      expect(group.users.data.map((u: Doc) => u.id).sort()).toEqual([org.ownerId, extra.person].sort());
      const person = group.users.data.find((u: Doc) => u.id === extra.person);
      // kitsu-core links included resources only; the primary group is linked by id.
      expect(person.groups.data.map((g: Doc) => g.id).sort()).toEqual([extra.group, extra.solo].sort());
      expect(group.sensors.data.map((s: Doc) => s.id).sort()).toEqual(ids.sensors.slice(0, 2).sort());
      expect(group.sensors.data.map((s: Doc) => s.device.data.serial).sort()).toEqual(['D-0', 'D-1']);
      const alarm = deserialise(checkDocument(await get(`/v1/alarms/${ids.alarm}?include=comments,threshold.alarms`))).data as Doc;
      expect(alarm.comments.data.map((c: Doc) => c.body)).toEqual(['seen']);
      expect(alarm.threshold.data.alarms.data.map((a: Doc) => a.id)).toEqual([ids.alarm]);
      const webhook = deserialise(checkDocument(await get(`/v1/webhooks/${extra.webhook}?include=deliveries`))).data as Doc;
      expect(webhook.deliveries.data.map((d: Doc) => d.id).sort()).toEqual([...extra.deliveries].sort());
      expect(webhook.deliveries.data[0]).toMatchObject({ status_code: 500, event_type: 'alarm.resolved' });
      const rule = deserialise(
        checkDocument(
          await get(`/v1/notification-rules/${extra.rule}?include=threshold,users,groups.users,escalation_users,escalation_groups`),
        ),
      ).data as Doc;
      expect(rule.threshold.data.id).toBe(ids.threshold);
      expect(rule.users.data.map((u: Doc) => u.id)).toEqual([extra.person]);
      expect(rule.groups.data[0].users.data.map((u: Doc) => u.id).sort()).toEqual([org.ownerId, extra.person].sort());
      expect(rule.escalation_users.data.map((u: Doc) => u.id)).toEqual([org.ownerId]);
      expect(rule.escalation_groups.data.map((g: Doc) => g.name)).toEqual(['solo']);
      const me = deserialise(checkDocument(await get('/v1/me?include=organization,user'))).data as Doc;
      expect(me.organization.data).toMatchObject({ id: org.id, slug: org.slug });
      expect(me.user.data).toMatchObject({ id: org.ownerId, email: org.ownerEmail });
      const invitation = deserialise(checkDocument(await get(`/v1/invitations/${extra.invitation}?include=invited_by,user`))).data as Doc;
      expect(invitation.invited_by.data.id).toBe(org.ownerId);
      const sensor = deserialise(checkDocument(await get(`/v1/sensors/${ids.sensors[0]}?include=thresholds,alarms,calibrations`)))
        .data as Doc;
      expect(sensor.thresholds.data.map((t: Doc) => t.id)).toEqual([ids.threshold]);
      expect(sensor.alarms.data.map((a: Doc) => a.id)).toEqual([ids.alarm]);
      const device = deserialise(checkDocument(await get(`/v1/devices/${ids.devices[0]}?include=calibrations`))).data as Doc;
      expect(device.calibrations.data.map((c: Doc) => c.id)).toEqual([ids.calibration]);
      const profile = deserialise(checkDocument(await get(`/v1/scaling-profiles/${ids.profile}?include=sensors`))).data as Doc;
      expect(profile.sensors.data.map((s: Doc) => s.id)).toContain(ids.sensors[4]);
    });

    it('each include path costs one statement, whatever the number of rows', async () => {
      const recorded = recording(database.db);
      const recordingApp = await makeApp(recorded.db, database.current.handle.kind);
      try {
        const statements = async (url: string) => {
          recorded.statements.length = 0;
          const response = await call(recordingApp, { url, token: org.adminKey, accept: JSON_API });
          expect(response.statusCode, response.body).toBe(200);
          return recorded.statements.length;
        };
        // The difference an include makes, measured back to back (the credential is cached by then).
        const cost = async (url: string, include: string) => {
          for (let attempt = 0; ; attempt++) {
            await statements(url);
            const without = await statements(url);
            const withInclude = await statements(withQuery(url, `include=${include}`));
            if (without === (await statements(url)) || attempt === 2) return withInclude - without;
          }
        };
        for (const [url, include, paths] of [
          ['/v1/groups', 'users,sensors', 2],
          ['/v1/users', 'groups', 1],
          ['/v1/alarms', 'comments,threshold.alarms', 3],
          ['/v1/webhooks', 'deliveries', 1],
          // The rule's `group` is empty: nothing to load, no statement.
          ['/v1/notification-rules', 'threshold,group,users,groups,escalation_users,escalation_groups', 5],
          ['/v1/sensors', 'thresholds,alarms,calibrations', 3],
          ['/v1/devices', 'calibrations,sensors.thresholds', 3],
          ['/v1/scaling-profiles', 'sensors', 1],
          // Not yet accepted: no `user` to load.
          ['/v1/invitations', 'invited_by,user', 1],
          ['/v1/me', 'organization,user', 2],
        ] as const) {
          if (url !== '/v1/me') expect(await cost(withQuery(url, 'limit=1'), include), `${url} limit=1`).toBe(paths);
          expect(await cost(url, include), url).toBe(paths);
        }
      } finally {
        await recordingApp.close();
      }
    });

    it('every relationship link resolves: links.self to its linkage, links.related to the related resources', async () => {
      const visited = new Set<string>();
      const resolve = async (url: string) => {
        const response = await call(app, { url: url.slice(PUBLIC_URL.length), token: org.adminKey, accept: JSON_API });
        expect(response.statusCode, `${url}: ${response.body}`).toBe(200);
        expect(response.headers['content-type']).toBe(JSON_API);
        expect(response.data.jsonapi).toEqual({ version: '1.1' });
        return response.data as Doc;
      };
      let relationships = 0;
      for (const url of COLLECTIONS) {
        const includable = relationshipNames(checkDocument(await get(url))).filter((name) => !NOT_INCLUDABLE.has(name));
        const doc = checkDocument(await get(withQuery(url, `include=${includable.join(',')}`)));
        for (const resource of [...(Array.isArray(doc.data) ? doc.data : [doc.data]), ...(doc.included ?? [])]) {
          if (!visited.has(resource.links.self)) {
            visited.add(resource.links.self);
            expect((await resolve(resource.links.self)).data.id).toBe(resource.id);
          }
          for (const [name, rel] of Object.entries<Doc>(resource.relationships ?? {})) {
            const at = `${resource.type}/${resource.id} ${name}`;
            expect(rel.links.self !== undefined || NOT_INCLUDABLE.has(name), `${at}: links.self`).toBe(true);
            if (rel.links.self && !visited.has(rel.links.self)) {
              visited.add(rel.links.self);
              relationships++;
              expect(rel.links.self).toBe(`${resource.links.self}/relationships/${name}`);
              const linkage = await resolve(rel.links.self);
              expect(linkage.links.self, at).toBe(rel.links.self);
              for (const identifier of Array.isArray(linkage.data) ? linkage.data : linkage.data ? [linkage.data] : []) {
                expect(Object.keys(identifier).sort(), at).toEqual(['id', 'type']);
              }
              if ('data' in rel) expect(linkageIds(linkage.data), at).toEqual(linkageIds(rel.data));
            }
            if (rel.links.related && !visited.has(rel.links.related)) {
              visited.add(rel.links.related);
              const related = await resolve(rel.links.related);
              if ('data' in rel) expect(linkageIds(related.data), at).toEqual(linkageIds(rel.data));
            }
          }
        }
      }
      expect(relationships).toBeGreaterThan(40);
      // A related endpoint takes include and fields[TYPE] like any other document.
      const users = checkDocument(
        await get(`/v1/notification-rules/${extra.rule}/users?include=groups&fields[users]=email,groups&fields[groups]=name`),
      );
      expect(users.data.map((u: Doc) => u.attributes)).toEqual([{ email: expect.stringContaining('@') }]);
      expect(users.included.map((g: Doc) => g.attributes.name).sort()).toEqual(['relations', 'solo']);
      // An empty to-one: data null, at both links.
      const empty = await resolve(`${PUBLIC_URL}/v1/invitations/${extra.invitation}/relationships/user`);
      expect(empty.data).toBeNull();
      expect((await resolve(`${PUBLIC_URL}/v1/invitations/${extra.invitation}/user`)).data).toBeNull();
      // In the JSON form the relationship endpoint answers the same document.
      const flat = await call(app, { url: `/v1/groups/${extra.solo}/relationships/users`, token: org.adminKey });
      expect(flat.headers['content-type']).toContain('application/json');
      expect(flat.data.data).toEqual([{ type: 'users', id: extra.person }]);
      // Another organization's resource, or none, is a 404; reading a relationship takes the resource's scopes.
      checkErrors(await get('/v1/devices/00000000-0000-4000-8000-000000000000/relationships/sensors'), 404);
      checkErrors(await get(`/v1/groups/${extra.group}/relationships/nope`), 404);
      const devicesOnly = await apiKey(database.db, org, ['devices:read']);
      expect((await get(`/v1/sensors/${ids.sensors[0]}/relationships/alarms`, devicesOnly)).statusCode).toBe(200);
      checkErrors(await get(`/v1/groups/${extra.group}/relationships/users`, devicesOnly), 403);
      // The related resources take their own type's scopes too, as include does.
      const alarmsOnly = await apiKey(database.db, org, ['alarms:read']);
      expect((await get(`/v1/notification-rules/${extra.rule}/relationships/users`, alarmsOnly)).statusCode).toBe(200);
      checkErrors(await get(`/v1/notification-rules/${extra.rule}/users`, alarmsOnly), 403);
    });

    it("relationship writes: PATCH replaces where the update can, POST/DELETE add and remove a group's members, 405 elsewhere", async () => {
      const relationship = (method: 'PATCH' | 'POST' | 'DELETE', url: string, data: unknown) =>
        call(app, { method, url, token: org.adminKey, body: { data }, accept: JSON_API, contentType: JSON_API });
      const linkageOf = async (url: string) => linkageIds((await get(url)).data.data);
      // To-one: set, then emptied, through the device's own update.
      const location = `/v1/devices/${ids.devices[2]}/relationships/location`;
      const set = await relationship('PATCH', location, { type: 'locations', id: ids.lab });
      expect(set.statusCode, set.body).toBe(200);
      expect(set.data).toMatchObject({ data: { type: 'locations', id: ids.lab }, links: { self: `${PUBLIC_URL}${location}` } });
      expect((await get(`/v1/devices/${ids.devices[2]}`)).data.data.relationships.location.data.id).toBe(ids.lab);
      expect((await relationship('PATCH', location, null)).data.data).toBeNull();
      expect((await call(app, { url: `/v1/devices/${ids.devices[2]}`, token: org.adminKey })).data.data.location_id).toBeNull();
      // To-many: complete replacement, then members added and removed one by one.
      const users = `/v1/groups/${extra.solo}/relationships/users`;
      const replaced = await relationship('PATCH', users, [{ type: 'users', id: org.ownerId }]);
      expect(replaced.statusCode, replaced.body).toBe(200);
      expect(linkageIds(replaced.data.data)).toEqual([org.ownerId]);
      const added = await relationship('POST', users, [{ type: 'users', id: extra.person }]);
      expect(added.statusCode, added.body).toBe(200);
      expect(linkageIds(added.data.data)).toEqual([org.ownerId, extra.person].sort());
      // Adding a member already there, or removing one that is not, changes nothing and is no error.
      expect((await relationship('POST', users, [{ type: 'users', id: extra.person }])).statusCode).toBe(200);
      const removed = await relationship('DELETE', users, [{ type: 'users', id: org.ownerId }]);
      expect(removed.statusCode, removed.body).toBe(200);
      expect(linkageIds(removed.data.data)).toEqual([extra.person]);
      expect((await relationship('DELETE', users, [{ type: 'users', id: org.ownerId }])).statusCode).toBe(200);
      // A JSON client may send the flat field the route documents instead.
      const flat = await call(app, { method: 'POST', url: users, token: org.adminKey, body: { user_ids: [org.ownerId] } });
      expect(flat.statusCode, flat.body).toBe(200);
      expect(linkageIds(flat.data.data)).toEqual([org.ownerId, extra.person].sort());
      expect((await relationship('DELETE', users, [{ type: 'users', id: org.ownerId }])).statusCode).toBe(200);
      const sensors = `/v1/groups/${extra.solo}/relationships/sensors`;
      expect((await relationship('POST', sensors, [{ type: 'sensors', id: ids.sensors[2] }])).statusCode).toBe(200);
      expect(await linkageOf(sensors)).toEqual([ids.sensors[2]]);
      expect((await relationship('PATCH', sensors, [])).data.data).toEqual([]);
      // A notification rule's recipients: replaced through the rule's update, with its rules.
      const recipients = `/v1/notification-rules/${extra.rule}/relationships/users`;
      expect((await relationship('PATCH', recipients, [{ type: 'users', id: org.ownerId }])).statusCode).toBe(200);
      expect(await linkageOf(recipients)).toEqual([org.ownerId]);
      // Refusals, as JSON:API error objects pointing into the document.
      const [wrongType] = checkErrors(await relationship('POST', users, [{ type: 'sensors', id: ids.sensors[0] }]), 409);
      expect(wrongType!.source).toEqual({ pointer: '/data/0/type' });
      const [notMany] = checkErrors(await relationship('PATCH', users, { type: 'users', id: org.ownerId }), 400);
      expect(notMany!.source).toEqual({ pointer: '/data' });
      const [malformed] = checkErrors(await relationship('POST', users, [{ type: 'users', id: 'not-a-uuid' }]), 400);
      expect(malformed!.source.pointer).toMatch(/^\/data\/0/);
      const [foreign] = checkErrors(
        await relationship('POST', users, [{ type: 'users', id: '00000000-0000-4000-8000-000000000000' }]),
        422,
      );
      expect(foreign!.source).toEqual({ pointer: '/data' });
      checkErrors(await relationship('POST', '/v1/groups/00000000-0000-4000-8000-000000000000/relationships/users', []), 404);
      // What a resource's API does not change this way: 405 with Allow (a sensor moves by its own device).
      for (const [method, url] of [
        ['PATCH', `/v1/devices/${ids.devices[0]}/relationships/sensors`],
        ['POST', `/v1/devices/${ids.devices[0]}/relationships/sensors`],
        ['POST', location],
        ['PATCH', `/v1/alarms/${ids.alarm}/relationships/comments`],
        ['PATCH', `/v1/sensors/${ids.sensors[0]}/relationships/device`],
      ] as const) {
        const response = await relationship(method, url, []);
        checkErrors(response, 405);
        expect(response.headers.allow, `${method} ${url}`).toContain('GET');
      }
      // Writing takes the resource's write scopes.
      const readOnly = await apiKey(database.db, org, ['groups:read', 'users:read']);
      const denied = await call(app, {
        method: 'POST',
        url: users,
        token: readOnly,
        body: { data: [] },
        accept: JSON_API,
        contentType: JSON_API,
      });
      checkErrors(denied, 403);
    });
  });

  it('page[size] and page[after] page a list, links.next keeping the size; limit and cursor are the same', async () => {
    const first = await get('/v1/devices?page[size]=3&sort=serial');
    expect(first.statusCode, first.body).toBe(200);
    expect(first.data.data.map((d: Doc) => d.attributes.serial)).toEqual(['D-0', 'D-1', 'D-2']);
    const next = new URL(first.data.links.next);
    expect(next.searchParams.get('page[size]')).toBe('3');
    const second = await get(`${next.pathname}${next.search}`);
    expect(second.data.data.map((d: Doc) => d.attributes.serial)).toEqual(['D-3']);
    expect(second.data.links.next).toBeUndefined();
    const plain = await get('/v1/devices?limit=2&sort=serial');
    expect(plain.data.data).toHaveLength(2);
    expect((await get('/v1/devices?page[size]=0')).statusCode).toBe(400);
  });

  it('Vary: Accept on every /v1 answer, data and errors, alongside CORS', async () => {
    for (const accept of [undefined, JSON_API, 'application/json']) {
      for (const url of ['/v1/devices', `/v1/devices/${ids.devices[0]}/relationships/sensors`, '/v1/nothing-here', '/v1/me']) {
        const response = await call(app, { url, token: org.adminKey, ...(accept && { accept }) });
        expect(response.headers.vary, `${url} ${accept}`).toMatch(/(^|, *)Accept(,|$)/);
      }
    }
    checkErrors(await call(app, { url: '/v1/devices', accept: JSON_API }), 401);
    expect((await call(app, { url: '/v1/devices', accept: JSON_API })).headers.vary).toMatch(/Accept/);
    const refused = await call(app, { url: '/v1/devices', token: org.adminKey, accept: `${JSON_API}; charset=utf-8` });
    expect(refused.statusCode).toBe(406);
    expect(refused.headers.vary).toMatch(/Accept/);
    const cors = await app.inject({
      url: '/v1/devices',
      headers: { authorization: `Bearer ${org.adminKey}`, origin: 'https://dashboard.example', accept: JSON_API },
    });
    const vary = String(cors.headers.vary)
      .split(',')
      .map((v) => v.trim().toLowerCase());
    expect(vary).toEqual(expect.arrayContaining(['origin', 'accept']));
    expect(vary.filter((v) => v === 'accept')).toHaveLength(1);
  });

  it('content negotiation per JSON:API 1.1: ext and profile, q=0, quoted parameters, extensions refused', async () => {
    const list = (accept: string) => call(app, { url: '/v1/locations', token: org.adminKey, accept });
    const representation = async (accept: string) => {
      const response = await list(accept);
      expect(response.statusCode, `${accept}: ${response.body}`).toBe(200);
      return String(response.headers['content-type']);
    };
    // Instances with other parameters are ignored when a usable one is left.
    expect(await representation(`${JSON_API}; charset=utf-8, ${JSON_API}; profile="https://example.test/p"`)).toBe(JSON_API);
    // An ext naming no extension asks for none; a profile may hold what a naive split would cut.
    expect(await representation(`${JSON_API}; ext=""`)).toBe(JSON_API);
    expect(await representation(`${JSON_API}; profile="https://example.test/a;b https://example.test/c,d"`)).toBe(JSON_API);
    // q=0 refuses JSON:API: the JSON the client also accepts.
    expect(await representation(`${JSON_API}; q=0, application/json`)).toContain('application/json');
    // Every instance asking for an extension: 406, saying why.
    const [extension] = checkErrors(await list(`${JSON_API}; ext="https://jsonapi.org/ext/atomic"`), 406);
    expect(extension!.detail).toMatch(/extension/);
    const [mixed] = checkErrors(await list(`${JSON_API}; ext="https://jsonapi.org/ext/atomic", ${JSON_API}; charset=utf-8`), 406);
    expect(mixed!.detail).toMatch(/parameters/);
    // Content-Type: profile (even quoted with separators) is fine; an extension or another parameter is 415.
    const post = (contentType: string, slug: string) =>
      call(app, {
        method: 'POST',
        url: '/v1/locations',
        token: org.adminKey,
        body: { data: { type: 'locations', attributes: { slug, name: slug } } },
        contentType,
        accept: JSON_API,
      });
    expect((await post(`${JSON_API}; profile="https://example.test/a;b"`, 'profiled')).statusCode).toBe(201);
    expect((await post(`${JSON_API}; ext=""`, 'no-extension')).statusCode).toBe(201);
    const [atomic] = checkErrors(await post(`${JSON_API}; ext="https://jsonapi.org/ext/atomic"`, 'atomic'), 415);
    expect(atomic!.detail).toMatch(/extension/);
    checkErrors(await post(`${JSON_API}; charset=utf-8`, 'charset'), 415);
  });
});
