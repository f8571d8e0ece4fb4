import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { buildApp } from '../../src/server/app.js';
import type { App } from '../../src/server/context.js';
import { backends, useDatabase } from '../support/databases.js';
import { silentLogger } from '../support/server.js';
import {
  type SeededOrg,
  addSensor,
  createApiKey,
  seedOrganization,
  setCalibration,
  setLinearProfile,
  setPiecewiseProfile,
} from './fixtures.js';

const PUBLIC_URL = 'http://sensorcloud.test';
const HOUR = 3_600_000;

async function makeApp(
  db: Parameters<typeof buildApp>[0]['db'],
  kind: 'embedded' | 'postgres',
  env: Record<string, string> = {},
): Promise<App> {
  // The configuration is read once, from the environment handed to it.
  const config = loadConfig(env, { publicUrl: PUBLIC_URL, logLevel: 'silent', dataDir: undefined });
  const app = await buildApp({ config, db, databaseKind: kind }, { logger: silentLogger() });
  await app.ready();
  return app;
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const body = (res: LightMyRequestResponse) => res.json() as any;

describe.each(backends)('readings API on $name', (backend) => {
  const database = useDatabase(backend);
  let app: App;
  let org: SeededOrg;
  let foreign: SeededOrg;
  let readKey: string;
  let writeKey: string;
  let devicesOnlyKey: string;
  let foreignKey: string;

  const count = async (sensorId: string) => {
    const { rows } = await sql<{ n: number | string }>`select count(*) as n from readings where sensor_id = ${sensorId}`.execute(
      database.db,
    );
    return Number(rows[0]!.n);
  };
  const ingest = (token: string, payload: unknown, contentType = 'application/json') =>
    app.inject({
      method: 'POST',
      url: '/v1/ingest',
      headers: { ...auth(token), 'content-type': contentType },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  const get = (token: string, url: string, accept?: string) =>
    app.inject({ method: 'GET', url, headers: { ...auth(token), ...(accept && { accept }) } });

  beforeAll(async () => {
    app = await makeApp(database.db, database.current.handle.kind);
    org = await seedOrganization(database.db, 'acme');
    foreign = await seedOrganization(database.db, 'globex');
    readKey = await createApiKey(database.db, org, ['readings:read']);
    writeKey = await createApiKey(database.db, org, ['readings:write', 'readings:read']);
    devicesOnlyKey = await createApiKey(database.db, org, ['devices:read']);
    foreignKey = await createApiKey(database.db, foreign, ['readings:read', 'readings:write']);
  });
  afterAll(async () => {
    await app?.close();
  });

  describe('POST /v1/ingest', () => {
    it('stores a device batch by sensor key, and a resend stores nothing new', async () => {
      const readings = Array.from({ length: 20 }, (_, i) => ({
        sensor: 'temp',
        ts: new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString(),
        value: i,
      }));
      const first = await ingest(org.deviceToken, { readings });
      expect(first.statusCode).toBe(200);
      expect(body(first).data).toEqual({ received: 20, accepted: 20, duplicates: 0 });
      const again = await ingest(org.deviceToken, readings); // bare array form
      expect(again.statusCode).toBe(200);
      expect(body(again).data).toEqual({ received: 20, accepted: 0, duplicates: 20 });
      expect(await count(org.sensors.temp!)).toBe(20);
      // The device was seen.
      const device = await database.db
        .selectFrom('devices')
        .select('last_seen_at')
        .where('id', '=', org.deviceId)
        .executeTakeFirstOrThrow();
      expect(device.last_seen_at).toBeInstanceOf(Date);
    });

    it('accepts NDJSON, one reading per line (blank lines ignored)', async () => {
      const lines = [
        '{"sensor":"humidity","ts":"2024-02-01T00:00:00Z","value":40.5}',
        '',
        '{"sensor":"humidity","ts":"2024-02-01T00:01:00+01:00","value":41}',
        `{"sensor_id":"${org.sensors.humidity}","ts":"2024-02-01T00:02:00.250Z","value":42}`,
        '',
      ];
      const res = await ingest(org.deviceToken, lines.join('\n'), 'application/x-ndjson');
      expect(res.statusCode).toBe(200);
      expect(body(res).data).toEqual({ received: 3, accepted: 3, duplicates: 0 });
      const page = body(await get(readKey, `/v1/sensors/${org.sensors.humidity}/readings`));
      expect(page.data.map((r: any) => [r.ts, r.value])).toEqual([
        ['2024-01-31T23:01:00.000Z', 41],
        ['2024-02-01T00:00:00.000Z', 40.5],
        ['2024-02-01T00:02:00.250Z', 42],
      ]);
    });

    it('refuses an invalid batch as a whole, naming each bad line (JSON and NDJSON)', async () => {
      const sensor = org.sensors.pressure!;
      const before = await count(sensor);
      const res = await ingest(org.deviceToken, {
        readings: [
          { sensor: 'pressure', ts: '2024-03-01T00:00:00Z', value: 1 },
          { sensor: 'pressure', ts: 'yesterday', value: 2 },
          { sensor: 'pressure', ts: '2024-03-01T00:02:00Z', value: 'high' },
          { ts: '2024-03-01T00:03:00Z', value: 3 },
          'nonsense',
          { sensor: 'nope', ts: '2024-03-01T00:04:00Z', value: 4 },
        ],
      });
      expect(res.statusCode).toBe(422);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const problem = body(res);
      expect(problem.errors.map((e: any) => [e.index, e.pointer])).toEqual([
        [1, '/body/readings/1/ts'],
        [2, '/body/readings/2/value'],
        [3, '/body/readings/3/sensor'],
        [4, '/body/readings/4'],
      ]);
      expect(problem.detail).toContain('nothing was stored');
      expect(await count(sensor)).toBe(before);

      // Once the shape is right, an unknown sensor key is named too.
      const unknown = await ingest(org.deviceToken, [
        { sensor: 'pressure', ts: '2024-03-01T00:00:00Z', value: 1 },
        { sensor: 'nope', ts: '2024-03-01T00:04:00Z', value: 4 },
      ]);
      expect(unknown.statusCode).toBe(422);
      expect(body(unknown).errors).toEqual([
        expect.objectContaining({ index: 1, pointer: '/body/1/sensor', detail: expect.stringContaining('not a sensor of this device') }),
      ]);

      const nd = await ingest(
        org.deviceToken,
        [
          '{"sensor":"pressure","ts":"2024-03-01T00:00:00Z","value":1}',
          '{not json',
          '',
          '{"sensor":"pressure","ts":"2024-13-01T00:00:00Z","value":1}',
        ].join('\n'),
        'application/x-ndjson',
      );
      expect(nd.statusCode).toBe(422);
      expect(body(nd).errors.map((e: any) => [e.line, e.pointer])).toEqual([
        [2, '/body/line/2'],
        [4, '/body/line/4/ts'],
      ]);
      expect(await count(sensor)).toBe(before);

      // JSON:API clients get the same errors as JSON:API error objects.
      const jsonApi = await app.inject({
        method: 'POST',
        url: '/v1/ingest',
        headers: { ...auth(org.deviceToken), 'content-type': 'application/json', accept: 'application/vnd.api+json' },
        payload: JSON.stringify([{ sensor: 'pressure', ts: 'nope', value: 1 }]),
      });
      expect(jsonApi.statusCode).toBe(422);
      expect(body(jsonApi).errors[0]).toMatchObject({ status: '422', source: { pointer: '/0/ts' } });

      const malformed = await ingest(org.deviceToken, '{"readings": [', 'application/json');
      expect(malformed.statusCode).toBe(400);
      const empty = await ingest(org.deviceToken, { readings: [] });
      expect(empty.statusCode).toBe(400);
      const shape = await ingest(org.deviceToken, { data: [] });
      expect(shape.statusCode).toBe(400);
    });

    it('answers 413 for a batch over the size limits', async () => {
      const limited = await makeApp(database.db, database.current.handle.kind, { INGEST_MAX_READINGS: '5', INGEST_MAX_BYTES: '4096' });
      try {
        const six = Array.from({ length: 6 }, (_, i) => ({
          sensor: 'pressure',
          ts: new Date(Date.UTC(2024, 4, 1, 0, i)).toISOString(),
          value: i,
        }));
        const before = await count(org.sensors.pressure!);
        const res = await limited.inject({
          method: 'POST',
          url: '/v1/ingest',
          headers: { ...auth(org.deviceToken), 'content-type': 'application/json' },
          payload: JSON.stringify(six),
        });
        expect(res.statusCode).toBe(413);
        const nd = await limited.inject({
          method: 'POST',
          url: '/v1/ingest',
          headers: { ...auth(org.deviceToken), 'content-type': 'application/x-ndjson' },
          payload: six.map((r) => JSON.stringify(r)).join('\n'),
        });
        expect(nd.statusCode).toBe(413);
        const big = await limited.inject({
          method: 'POST',
          url: '/v1/ingest',
          headers: { ...auth(org.deviceToken), 'content-type': 'application/json' },
          payload: JSON.stringify([{ sensor: 'pressure', ts: '2024-05-01T00:00:00Z', value: 1, note: 'x'.repeat(5000) }]),
        });
        expect(big.statusCode).toBe(413);
        expect(await count(org.sensors.pressure!)).toBe(before);
        const five = await limited.inject({
          method: 'POST',
          url: '/v1/ingest',
          headers: { ...auth(org.deviceToken), 'content-type': 'application/json' },
          payload: JSON.stringify(six.slice(0, 5)),
        });
        expect(five.statusCode).toBe(200);
      } finally {
        await limited.close();
      }
    });

    it('applies linear and piecewise-linear scaling and the active calibration offset, keeping the raw value', async () => {
      const lin = await addSensor(database.db, org, 'lin');
      const pw = await addSensor(database.db, org, 'pw');
      const cal = await addSensor(database.db, org, 'cal');
      await setLinearProfile(database.db, org, lin, 0.5, -10);
      await setPiecewiseProfile(database.db, org, pw, [
        { raw: 0, value: 0 },
        { raw: 10, value: 100 },
        { raw: 20, value: 150 },
      ]);
      await setLinearProfile(database.db, org, cal, 2, 0);
      await setCalibration(database.db, org, cal, 0.25);
      await setCalibration(database.db, org, lin, 1); // replaced below: only the active one counts
      await setCalibration(database.db, org, lin, -1);
      const ts = (m: number) => new Date(Date.UTC(2024, 5, 1, 0, m)).toISOString();
      const res = await ingest(org.deviceToken, {
        readings: [
          { sensor: 'lin', ts: ts(0), value: 100 },
          { sensor: 'pw', ts: ts(0), value: 5 }, // between points: 50
          { sensor: 'pw', ts: ts(1), value: 15 }, // 125
          { sensor: 'pw', ts: ts(2), value: 30 }, // beyond the last point: extrapolated along 10→20 (slope 5): 200
          { sensor: 'pw', ts: ts(3), value: -4 }, // before the first: -40
          { sensor: 'pw', ts: ts(4), value: 10 }, // on a point: 100
          { sensor: 'cal', ts: ts(0), value: 3 }, // 2*3 + 0.25
        ],
      });
      expect(res.statusCode).toBe(200);
      const values = async (sensor: string) =>
        body(await get(readKey, `/v1/sensors/${sensor}/readings`)).data.map((r: any) => [r.raw_value, r.value]);
      expect(await values(lin)).toEqual([[100, 100 * 0.5 - 10 - 1]]);
      expect(await values(pw)).toEqual([
        [5, 50],
        [15, 125],
        [30, 200],
        [-4, -40],
        [10, 100],
      ]);
      expect(await values(cal)).toEqual([[3, 6.25]]);
      const latest = body(await get(readKey, `/v1/sensors/${cal}/readings/latest`));
      expect(latest.data).toMatchObject({ sensor_id: cal, value: 6.25, raw_value: 3 });
    });

    it('refuses a device writing a sensor it does not own', async () => {
      const before = await count(org.sensors.other!);
      // By key: the other device's key is not one of this device's sensors.
      const byKey = await ingest(org.deviceToken, [{ sensor: 'other', ts: '2024-07-01T00:00:00Z', value: 1 }]);
      expect(byKey.statusCode).toBe(422);
      // By id: a sensor of another device of the organization, and one of another organization.
      const byId = await ingest(org.deviceToken, [
        { sensor_id: org.sensors.other, ts: '2024-07-01T00:00:00Z', value: 1 },
        { sensor_id: foreign.sensors.temp, ts: '2024-07-01T00:00:00Z', value: 1 },
        { sensor: 'temp', ts: '2024-07-01T00:00:00Z', value: 1 },
      ]);
      expect(byId.statusCode).toBe(422);
      expect(body(byId).errors.map((e: any) => e.index)).toEqual([0, 1]);
      expect(await count(org.sensors.other!)).toBe(before);
      expect(await count(foreign.sensors.temp!)).toBe(0);
      // Its own device can.
      const own = await ingest(org.otherDeviceToken, [{ sensor: 'other', ts: '2024-07-01T00:00:00Z', value: 1 }]);
      expect(own.statusCode).toBe(200);
    });

    it('takes API-key batches by sensor id, within the organization only', async () => {
      const res = await ingest(writeKey, {
        readings: [
          { sensor_id: org.sensors.temp, ts: '2024-08-01T00:00:00Z', value: 1 },
          { sensor: org.sensors.other, ts: '2024-08-01T00:00:00Z', value: 2 },
        ],
      });
      expect(res.statusCode).toBe(200);
      expect(body(res).data.accepted).toBe(2);
      const byKey = await ingest(writeKey, [{ sensor: 'temp', ts: '2024-08-01T00:01:00Z', value: 1 }]);
      expect(byKey.statusCode).toBe(422);
      const foreignSensor = await ingest(writeKey, [{ sensor_id: foreign.sensors.temp, ts: '2024-08-01T00:01:00Z', value: 1 }]);
      expect(foreignSensor.statusCode).toBe(422);
      expect(await count(foreign.sensors.temp!)).toBe(0);
      // readings:read is not enough to write; no credential is 401.
      expect((await ingest(readKey, [{ sensor_id: org.sensors.temp, ts: '2024-08-01T00:02:00Z', value: 1 }])).statusCode).toBe(403);
      expect((await app.inject({ method: 'POST', url: '/v1/ingest', payload: [] })).statusCode).toBe(401);
    });

    it('stores readings far in the future and the past', async () => {
      const res = await ingest(org.deviceToken, [
        { sensor: 'temp', ts: '2150-01-01T00:00:00Z', value: 1 },
        { sensor: 'temp', ts: '1901-01-01T00:00:00Z', value: 2 },
      ]);
      expect(res.statusCode).toBe(200);
      const far = body(await get(readKey, `/v1/sensors/${org.sensors.temp}/readings?from=2100-01-01T00:00:00Z`));
      expect(far.data.map((r: any) => r.ts)).toEqual(['2150-01-01T00:00:00.000Z']);
      const past = body(await get(readKey, `/v1/sensors/${org.sensors.temp}/readings?to=1902-01-01T00:00:00Z`));
      expect(past.data.map((r: any) => r.ts)).toEqual(['1901-01-01T00:00:00.000Z']);
    });
  });

  describe('GET readings', () => {
    let sensor: string;
    const points: { ts: number; value: number }[] = [];
    const START = Date.parse('2024-09-29T00:00:00Z');

    beforeAll(async () => {
      sensor = await addSensor(database.db, org, 'series');
      for (let i = 0; i < 2 * 24 * 12; i += 1)
        points.push({ ts: START + i * 5 * 60_000 + (i % 3) * 1000, value: Math.round(Math.sin(i / 7) * 1e6) / 1e3 });
      for (let i = 0; i < points.length; i += 250) {
        const res = await ingest(
          org.deviceToken,
          points.slice(i, i + 250).map((p) => ({ sensor: 'series', ts: new Date(p.ts).toISOString(), value: p.value })),
        );
        expect(res.statusCode).toBe(200);
      }
    });

    it('pages through a time range with links.next, in order, nothing repeated or skipped', async () => {
      const from = START + 3 * HOUR + 1;
      const to = START + 40 * HOUR;
      let url: string | undefined =
        `/v1/sensors/${sensor}/readings?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&limit=100`;
      const seen: string[] = [];
      let pages = 0;
      while (url) {
        const res = await get(readKey, url);
        expect(res.statusCode).toBe(200);
        const doc = body(res);
        expect(doc.links.self).toMatch(/^http:\/\/sensorcloud\.test\/v1\/sensors\//);
        seen.push(...doc.data.map((r: any) => r.ts));
        pages += 1;
        url = doc.links.next ? doc.links.next.replace(PUBLIC_URL, '') : undefined;
      }
      const expected = points.filter((p) => p.ts >= from && p.ts < to).map((p) => new Date(p.ts).toISOString());
      expect(seen).toEqual(expected);
      expect(pages).toBe(Math.ceil(expected.length / 100));

      const descending = await get(readKey, `/v1/sensors/${sensor}/readings?sort=-ts&limit=3`);
      expect(descending.statusCode, descending.body).toBe(200);
      const desc = body(descending);
      expect(desc.data.map((r: any) => r.ts)).toEqual(
        points
          .slice(-3)
          .reverse()
          .map((p) => new Date(p.ts).toISOString()),
      );
    });

    it('downsamples in SQL: avg/min/max/count per bin match the values computed here', async () => {
      for (const [interval, width] of [
        ['PT1H', HOUR],
        ['PT15M', 15 * 60_000],
        ['P1D', 24 * HOUR],
      ] as const) {
        for (const aggregate of ['avg', 'min', 'max', 'count'] as const) {
          const from = START + 30 * 60_000 + 7;
          const to = START + 47 * HOUR;
          const expected = new Map<number, number[]>();
          for (const p of points) {
            if (p.ts < from || p.ts >= to) continue;
            const bin = Math.floor(p.ts / width) * width;
            expected.set(bin, [...(expected.get(bin) ?? []), p.value]);
          }
          const got: any[] = [];
          let url: string | undefined =
            `/v1/sensors/${sensor}/readings?interval=${interval}&aggregate=${aggregate}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&limit=40`;
          while (url) {
            const doc = body(await get(readKey, url));
            expect(doc.meta).toMatchObject({ aggregate, interval_seconds: width / 1000 });
            got.push(...doc.data);
            url = doc.links.next?.replace(PUBLIC_URL, '');
          }
          expect(got.map((b) => b.ts)).toEqual([...expected.keys()].map((t) => new Date(t).toISOString()));
          for (const b of got) {
            const values = expected.get(Date.parse(b.ts))!;
            const want = {
              avg: values.reduce((s, v) => s + v, 0) / values.length,
              min: Math.min(...values),
              max: Math.max(...values),
              count: values.length,
            }[aggregate];
            expect(b.value).toBeCloseTo(want, 9);
            expect(b.count).toBe(values.length);
          }
        }
      }
    });

    it('validates the query (400 naming the parameter)', async () => {
      const cases: [string, string][] = [
        ['from=yesterday', 'from'],
        ['from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z', 'from'],
        ['interval=P1M', 'interval'],
        ['interval=PT0S', 'interval'],
        ['interval=1h', 'interval'],
        ['aggregate=avg', 'interval'],
        ['interval=PT1H&aggregate=median', 'aggregate'],
        ['limit=1001', 'limit'],
        ['cursor=garbage', 'cursor'],
      ];
      for (const [query, parameter] of cases) {
        const res = await get(readKey, `/v1/sensors/${sensor}/readings?${query}`);
        expect(res.statusCode, query).toBe(400);
        expect(JSON.stringify(body(res).errors), query).toContain(`/query/${parameter}`);
      }
      const jsonApi = await get(readKey, `/v1/sensors/${sensor}/readings?interval=P1Y`, 'application/vnd.api+json');
      expect(jsonApi.statusCode).toBe(400);
      expect(body(jsonApi).errors[0].source).toEqual({ parameter: 'interval' });
    });

    it('serves JSON:API resource objects when asked', async () => {
      const res = await get(readKey, `/v1/sensors/${sensor}/readings?limit=2`, 'application/vnd.api+json');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toContain('application/vnd.api+json');
      const doc = body(res);
      expect(doc.jsonapi).toEqual({ version: '1.1' });
      expect(doc.data[0]).toMatchObject({
        type: 'readings',
        attributes: { ts: new Date(points[0]!.ts).toISOString(), value: points[0]!.value },
        relationships: { sensor: { data: { type: 'sensors', id: sensor } } },
      });
      expect(doc.links.next).toContain('cursor=');

      // Both formats carry the same readings and bins (the JSON envelope is serialized by fast-json-stringify).
      for (const query of ['limit=50', 'limit=50&interval=PT1H&aggregate=max', 'limit=5&interval=PT7M&aggregate=count']) {
        const json = body(await get(readKey, `/v1/sensors/${sensor}/readings?${query}`));
        const api = body(await get(readKey, `/v1/sensors/${sensor}/readings?${query}`, 'application/vnd.api+json'));
        expect(json.data.length).toBeGreaterThan(0);
        expect(json.data).toEqual(api.data.map((r: any) => r.attributes));
        expect(api.data.every((r: any) => r.relationships.sensor.data.id === sensor)).toBe(true);
        expect(json.links).toEqual(api.links);
        expect(json.meta).toEqual(api.meta);
      }
      // And over several sensors, where JSON items name their sensor (JSON:API: the relationship).
      const ids = `${sensor},${org.sensors.humidity}`;
      for (const query of ['limit=50&from=2024-09-29T01:00:00Z', 'limit=20&sort=-ts', 'limit=30&interval=PT1H&aggregate=avg']) {
        const json = body(await get(readKey, `/v1/readings?sensor_ids=${ids}&${query}`));
        const api = body(await get(readKey, `/v1/readings?sensor_ids=${ids}&${query}`, 'application/vnd.api+json'));
        expect(json.data.length).toBeGreaterThan(0);
        expect(json.data).toEqual(api.data.map((r: any) => ({ sensor_id: r.relationships.sensor.data.id, ...r.attributes })));
        expect(json.links).toEqual(api.links);
        expect(json.meta).toEqual(api.meta);
      }
    });

    it('latest reading: polled answers are the same bytes, and a write through this node shows at once', async () => {
      const sensor = await addSensor(database.db, org, 'polled');
      const at = (minute: number) => new Date(Date.parse('2026-02-01T00:00:00Z') + minute * 60_000).toISOString();
      expect((await ingest(org.deviceToken, [{ sensor: 'polled', ts: at(0), value: 1.5 }])).statusCode).toBe(200);
      const first = await get(readKey, `/v1/sensors/${sensor}/readings/latest`);
      const second = await get(readKey, `/v1/sensors/${sensor}/readings/latest`);
      expect(body(first).data).toMatchObject({ sensor_id: sensor, ts: at(0), value: 1.5 });
      expect(second.body).toBe(first.body);
      expect(second.headers['content-type']).toBe('application/json; charset=utf-8');
      expect((await ingest(org.deviceToken, [{ sensor: 'polled', ts: at(1), value: 2.5 }])).statusCode).toBe(200);
      expect(body(await get(readKey, `/v1/sensors/${sensor}/readings/latest`)).data).toMatchObject({ ts: at(1), value: 2.5 });
      // Another organization's key still gets 404, cached body or not.
      expect((await get(foreignKey, `/v1/sensors/${sensor}/readings/latest`)).statusCode).toBe(404);
    });

    it('latest reading of a sensor, and of several', async () => {
      const latest = await get(readKey, `/v1/sensors/${sensor}/readings/latest`);
      expect(latest.statusCode).toBe(200);
      const last = points[points.length - 1]!;
      expect(body(latest).data).toMatchObject({ sensor_id: sensor, ts: new Date(last.ts).toISOString(), value: last.value });
      const empty = await addSensor(database.db, org, 'silent');
      expect(body(await get(readKey, `/v1/sensors/${empty}/readings/latest`)).data).toBeNull();

      const several = body(await get(readKey, `/v1/readings?latest=true&sensor_ids=${sensor},${org.sensors.temp},${empty}`));
      expect(several.data.map((r: any) => r.sensor_id).sort()).toEqual([sensor, org.sensors.temp].sort());
      const all = body(await get(readKey, '/v1/readings?latest=true&limit=1000'));
      expect(all.data.every((r: any) => Object.values(org.sensors).includes(r.sensor_id))).toBe(true);
      expect(all.data.length).toBeGreaterThanOrEqual(4);
      // Paginated by sensor.
      const first = body(await get(readKey, '/v1/readings?latest=true&limit=1'));
      expect(first.data).toHaveLength(1);
      const second = body(await get(readKey, first.links.next.replace(PUBLIC_URL, '')));
      expect(second.data[0].sensor_id > first.data[0].sensor_id).toBe(true);
    });

    it('reads several sensors at once, ordered by sensor then time, with pages', async () => {
      const ids = [sensor, org.sensors.humidity!];
      let url: string | undefined = `/v1/readings?sensor_ids=${ids.join(',')}&limit=200`;
      const seen: any[] = [];
      while (url) {
        const doc = body(await get(readKey, url));
        seen.push(...doc.data);
        url = doc.links.next?.replace(PUBLIC_URL, '');
      }
      expect(seen.length).toBe(points.length + 3);
      const keys = seen.map((r) => `${r.sensor_id} ${r.ts}`);
      expect(keys).toEqual([...keys].sort());
      const hourly = body(await get(readKey, `/v1/readings?sensor_ids=${ids.join(',')}&interval=PT1H&aggregate=count&limit=1000`));
      expect(hourly.data.filter((b: any) => b.sensor_id === sensor).reduce((s: number, b: any) => s + b.value, 0)).toBe(points.length);
    });

    it('writes a non-finite stored value as null, in both formats (ingest never stores one)', async () => {
      const odd = await addSensor(database.db, org, 'non-finite');
      await sql`insert into readings (organization_id, sensor_id, ts, value, raw_value) values
        (${org.organizationId}, ${odd}, '2024-02-01T00:00:00Z', 'NaN'::float8, 'Infinity'::float8),
        (${org.organizationId}, ${odd}, '2024-02-01T00:01:00Z', '-Infinity'::float8, 1.25)`.execute(database.db);
      const range = await get(readKey, `/v1/sensors/${odd}/readings`);
      expect(range.statusCode, range.body).toBe(200);
      expect(body(range).data).toEqual([
        { ts: '2024-02-01T00:00:00.000Z', value: null, raw_value: null },
        { ts: '2024-02-01T00:01:00.000Z', value: null, raw_value: 1.25 },
      ]);
      const several = body(await get(readKey, `/v1/readings?sensor_ids=${odd}`));
      expect(several.data.map((r: any) => [r.sensor_id, r.value, r.raw_value])).toEqual([
        [odd, null, null],
        [odd, null, 1.25],
      ]);
      for (const query of ['', '?interval=PT7M&aggregate=max', '?interval=PT7M&aggregate=avg']) {
        const json = await get(readKey, `/v1/sensors/${odd}/readings${query}`);
        const api = body(await get(readKey, `/v1/sensors/${odd}/readings${query}`, 'application/vnd.api+json'));
        expect(json.statusCode, query).toBe(200);
        expect(body(json).data, query).toEqual(api.data.map((r: any) => r.attributes));
        if (query) expect(body(json).data, query).toEqual([{ ts: '2024-02-01T00:00:00.000Z', value: null, count: 2 }]);
      }
    });

    it('404 for a sensor of another organization (or none), 403 without readings:read', async () => {
      for (const url of [
        `/v1/sensors/${foreign.sensors.temp}/readings`,
        `/v1/sensors/${foreign.sensors.temp}/readings?interval=PT1H`,
        `/v1/sensors/${foreign.sensors.temp}/readings/latest`,
        `/v1/readings?sensor_ids=${sensor},${foreign.sensors.temp}`,
        `/v1/readings?latest=true&sensor_ids=${foreign.sensors.temp}`,
        '/v1/sensors/not-a-uuid/readings',
        '/v1/sensors/00000000-0000-0000-0000-000000000000/readings/latest',
      ]) {
        expect((await get(readKey, url)).statusCode, url).toBe(404);
      }
      // The other organization sees none of ours, and its own list has none of ours either.
      expect((await get(foreignKey, `/v1/sensors/${sensor}/readings`)).statusCode).toBe(404);
      const theirs = body(await get(foreignKey, '/v1/readings?latest=true'));
      expect(theirs.data.some((r: any) => Object.values(org.sensors).includes(r.sensor_id))).toBe(false);

      for (const url of [`/v1/sensors/${sensor}/readings`, `/v1/sensors/${sensor}/readings/latest`, `/v1/readings?latest=true`]) {
        const res = await get(devicesOnlyKey, url);
        expect(res.statusCode, url).toBe(403);
        expect(res.headers['www-authenticate']).toContain('insufficient_scope');
        // A device token writes readings but cannot read them.
        expect((await get(org.deviceToken, url)).statusCode, url).toBe(403);
      }
    });
  });
});
