import type { FastifyReply, FastifyRequest } from 'fastify';
import fastJson from 'fast-json-stringify';
import { Type } from 'typebox';
import { sendDocument } from '../api/documents.js';
import { pageLinks } from '../api/links.js';
import { pageQueryProperties, pageRequest } from '../api/list-query.js';
import { negotiate } from '../api/negotiation.js';
import { type Page, encodeCursor } from '../storage/keyset.js';
import { principalOf, protect, securitySchema } from '../auth/guard.js';
import { HttpProblem, badRequest, notFound } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import {
  AGGREGATES,
  type Aggregate,
  type Bucket,
  type LatestRow,
  type Reading,
  aggregateOf,
  bucketsPage,
  latestReadings,
  readingsPage,
  sensorsOfOrganization,
} from './readings.repo.js';
import type { LatestReadingCache } from './latest-cache.js';
import { finite, readingJson } from './reading-json.js';
import { type ParsedRange, invalidCursor, parseRange } from './range.js';
import { formatTime } from './time.js';
import { isUuid } from '../storage/sql.js';

/**
 * Read side of readings:
 *   GET /v1/sensors/{id}/readings         range (from, to) in ts order, cursor pages; or bins
 *                                         (interval + aggregate) computed in SQL
 *   GET /v1/sensors/{id}/readings/latest  the newest reading of the sensor
 *   GET /v1/readings?sensor_ids=a,b       the same over several sensors; latest=true for the
 *                                         newest reading of each (all the organization's sensors
 *                                         when sensor_ids is absent)
 */

const SCOPES = ['readings:read'] as const;
export const MAX_SENSORS_PER_QUERY = 100;

const rangeQuery = {
  from: Type.Optional(Type.String({ maxLength: 64, description: 'Inclusive start, RFC 3339 (e.g. 2024-05-01T00:00:00Z).' })),
  to: Type.Optional(Type.String({ maxLength: 64, description: 'Exclusive end, RFC 3339.' })),
  interval: Type.Optional(
    Type.String({
      maxLength: 32,
      description:
        'Downsample into bins of this ISO 8601 duration (PT5M, PT1H, P1D; PT1S to P366D, no years or months). Bins are aligned on the Unix epoch, UTC.',
    }),
  ),
  aggregate: Type.Optional(
    Type.Union(
      AGGREGATES.map((a) => Type.Literal(a)),
      { description: 'Aggregate of each bin (default avg); needs interval.' },
    ),
  ),
  sort: Type.Optional(
    Type.Union([Type.Literal('ts'), Type.Literal('-ts')], {
      description: 'Raw readings: ts ascending (default) or -ts descending. Bins are always ascending.',
    }),
  ),
  ...pageQueryProperties,
};

const ReadingItem = Type.Object({
  sensor_id: Type.Optional(Type.String({ format: 'uuid', description: 'On /v1/readings (several sensors) only.' })),
  ts: Type.String({ format: 'date-time', description: 'Time of the reading (as sent by the device).' }),
  value: Type.Number({ description: 'Reported value: scaled, calibration offset applied.' }),
  raw_value: Type.Number({ description: 'Value as the device sent it.' }),
});
const BucketItem = Type.Object({
  sensor_id: Type.Optional(Type.String({ format: 'uuid', description: 'On /v1/readings (several sensors) only.' })),
  ts: Type.String({ format: 'date-time', description: 'Start of the bin.' }),
  value: Type.Number({ description: 'The aggregate over the bin.' }),
  count: Type.Integer({ description: 'Readings in the bin.' }),
});
const LatestItem = Type.Object({
  sensor_id: Type.String({ format: 'uuid' }),
  ts: Type.String({ format: 'date-time', description: 'Time of the reading (as sent by the device).' }),
  value: Type.Number({ description: 'Reported value: scaled, calibration offset applied.' }),
  raw_value: Type.Number({ description: 'Value as the device sent it.' }),
  received_at: Type.String({ format: 'date-time', description: 'When the reading was stored.' }),
  seen_at: Type.String({ format: 'date-time', description: 'When the sensor last delivered a new reading (of any ts).' }),
});
const pageDoc = Type.Object(
  {
    data: Type.Array(Type.Union([ReadingItem, BucketItem, LatestItem])),
    links: Type.Object({ self: Type.String(), next: Type.Optional(Type.String()) }),
    meta: Type.Record(Type.String(), Type.Unknown()),
  },
  { description: 'A page of readings (or bins) in the JSON envelope; JSON:API 1.1 with Accept: application/vnd.api+json.' },
);

// ---------------------------------------------------------------------------------------------
// Representations

/** The JSON envelope of a sensor's latest reading, by cached row (the sensor id is in the row). */
const renderedLatest = new WeakMap<LatestRow, string>();
const latestJson = (r: LatestRow) => ({
  sensor_id: r.sensorId,
  ts: formatTime(r.ts),
  value: r.value,
  raw_value: r.rawValue,
  received_at: formatTime(r.receivedAt),
  seen_at: formatTime(r.seenAt),
});

function jsonApiReading(r: Reading | LatestRow) {
  const { sensor_id, ...attributes } = 'seenAt' in r ? latestJson(r) : { sensor_id: r.sensorId, ...readingJson(r, false) };
  return {
    type: 'readings',
    id: `${sensor_id}:${attributes.ts}`,
    attributes,
    relationships: { sensor: { data: { type: 'sensors', id: sensor_id } } },
  };
}

function bucketJson(b: Bucket, aggregate: Aggregate, withSensor: boolean) {
  const value = finite(aggregateOf(b, aggregate));
  return withSensor
    ? { sensor_id: b.sensorId, ts: formatTime(b.ts), value, count: b.count }
    : { ts: formatTime(b.ts), value, count: b.count };
}

function jsonApiBucket(b: Bucket, aggregate: Aggregate) {
  const attributes = bucketJson(b, aggregate, false);
  return {
    type: 'reading-aggregates',
    id: `${b.sensorId}:${attributes.ts}`,
    attributes,
    relationships: { sensor: { data: { type: 'sensors', id: b.sensorId } } },
  };
}

/**
 * Serializers of the JSON envelope of a page ({data, links, meta}), compiled once by
 * fast-json-stringify (what Fastify uses for response schemas) for each item shape: a page of
 * 1,000 small items is where JSON.stringify's generic walk costs most (it takes about twice as
 * long). Only the properties named here are written (meta also passes any others through
 * JSON.stringify); the JSON:API form, and pages of latest readings, go through sendDocument().
 */
type PageSerializer = (document: { data: unknown[]; links: Record<string, string>; meta: Record<string, unknown> }) => string;
type ItemSchema = Record<string, { type: 'string'; format?: 'unsafe' } | { type: 'integer' } | { type: readonly ['number', 'null'] }>;

function pageSerializer(item: ItemSchema): PageSerializer {
  return fastJson({
    type: 'object',
    properties: {
      data: { type: 'array', items: { type: 'object', properties: item, required: Object.keys(item) } },
      links: { type: 'object', properties: { self: { type: 'string' }, next: { type: 'string' } }, required: ['self'] },
      meta: {
        type: 'object',
        properties: {
          count: { type: 'integer' },
          limit: { type: 'integer' },
          from: { type: 'string' },
          to: { type: 'string' },
          interval_seconds: { type: 'number' },
          aggregate: { type: 'string' },
        },
        required: ['count', 'limit'],
        additionalProperties: true,
      },
    },
    required: ['data', 'links', 'meta'],
  } as const);
}

// fast-json-stringify writes NaN as an error (Infinity as null): finite() maps both to null first.
const NUMBER_OR_NULL = { type: ['number', 'null'] } as const;
// Written without escaping (the library's 'unsafe' string format, which halves the cost of these
// pages): times come from formatTime() (digits, '-', ':', '.', 'T', 'Z', '+') and sensor ids are
// UUIDs (hex and '-': from the database, or request ids the routes matched against UUID before
// any query), so neither can hold a character JSON must escape.
const NO_ESCAPE = { type: 'string', format: 'unsafe' } as const;
const READING = { ts: NO_ESCAPE, value: NUMBER_OR_NULL, raw_value: NUMBER_OR_NULL } as const;
const BUCKET = { ts: NO_ESCAPE, value: NUMBER_OR_NULL, count: { type: 'integer' } } as const;
const SENSOR_ID = { sensor_id: NO_ESCAPE } as const;
const readingsPageJson = { one: pageSerializer(READING), several: pageSerializer({ ...SENSOR_ID, ...READING }) };
const bucketsPageJson = { one: pageSerializer(BUCKET), several: pageSerializer({ ...SENSOR_ID, ...BUCKET }) };

function sendPage<Row>(
  services: AppServices,
  request: FastifyRequest,
  reply: FastifyReply,
  page: Page<Row>,
  render: (row: Row, jsonApi: boolean) => unknown,
  meta: Record<string, unknown>,
  /** Serializes the JSON envelope of the page, whose items are render(row, false). */
  serialize?: PageSerializer,
) {
  const jsonApi = negotiate(request) === 'jsonapi';
  const links = pageLinks(services.config.publicUrl, request, page);
  const fullMeta = { count: page.items.length, limit: page.limit, ...meta };
  const data = page.items.map((row) => render(row, jsonApi));
  if (!jsonApi && serialize)
    return reply
      .code(200)
      .type('application/json; charset=utf-8')
      .send(serialize({ data, links, meta: fullMeta }));
  return sendDocument(request, reply, { data, links, meta: fullMeta });
}

function toPage<Row extends { sensorId: string; ts: number }>(rows: Row[], limit: number): Page<Row> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor([last.sensorId, last.ts]) : undefined, limit };
}

function rangeMeta(range: ParsedRange): Record<string, unknown> {
  return {
    ...(range.from !== undefined && { from: formatTime(range.from) }),
    ...(range.to !== undefined && { to: formatTime(range.to) }),
    ...(range.intervalMs !== undefined && { interval_seconds: range.intervalMs / 1000, aggregate: range.aggregate }),
  };
}

/**
 * Readings or bins of the given (already authorized) sensors, as one page, from the read replica
 * when there is one: a reading stored a moment ago may be missing for the replica's lag. Whether a
 * sensor exists is asked of the primary (requireSensors, onEmpty), so a sensor created a moment
 * ago is an empty page, never a 404.
 */
async function sendRange(
  services: AppServices,
  request: FastifyRequest,
  reply: FastifyReply,
  organizationId: string,
  sensorIds: string[],
  range: ParsedRange,
  options: { withSensor: boolean; onEmpty?: () => Promise<void> },
) {
  const { withSensor, onEmpty } = options;
  const { intervalMs } = range;
  if (intervalMs !== undefined) {
    const { items, more } = await services.readReplica.read((db) =>
      bucketsPage(db, { organizationId, sensorIds, from: range.from, to: range.to, intervalMs, limit: range.limit, after: range.after }),
    );
    if (items.length === 0 && onEmpty) await onEmpty();
    const aggregate = range.aggregate;
    const last = items[items.length - 1];
    const page: Page<Bucket> = { items, nextCursor: more && last ? encodeCursor([last.sensorId, last.ts]) : undefined, limit: range.limit };
    return sendPage(
      services,
      request,
      reply,
      page,
      (b, jsonApi) => (jsonApi ? jsonApiBucket(b, aggregate) : bucketJson(b, aggregate, withSensor)),
      rangeMeta(range),
      withSensor ? bucketsPageJson.several : bucketsPageJson.one,
    );
  }
  const rows = await services.readReplica.read((db) =>
    readingsPage(db, {
      organizationId,
      sensorIds,
      from: range.from,
      to: range.to,
      limit: range.limit,
      after: range.after,
      descending: range.descending,
    }),
  );
  if (rows.length === 0 && onEmpty) await onEmpty();
  return sendPage(
    services,
    request,
    reply,
    toPage(rows, range.limit),
    (r, jsonApi) => (jsonApi ? jsonApiReading(r) : readingJson(r, withSensor)),
    rangeMeta(range),
    withSensor ? readingsPageJson.several : readingsPageJson.one,
  );
}

const sensorNotFound = () => notFound('The sensor does not exist.');

function parseSensorIds(raw: string): string[] {
  const ids = [
    ...new Set(
      raw
        .split(',')
        .map((id) => id.trim().toLowerCase())
        .filter((id) => id !== ''),
    ),
  ];
  if (ids.length === 0)
    throw badRequest('sensor_ids must list at least one sensor id.', [
      { pointer: '/query/sensor_ids', detail: 'sensor_ids must not be empty' },
    ]);
  if (ids.length > MAX_SENSORS_PER_QUERY) {
    throw badRequest(`At most ${MAX_SENSORS_PER_QUERY} sensors per request.`, [
      { pointer: '/query/sensor_ids', detail: `sensor_ids lists more than ${MAX_SENSORS_PER_QUERY} sensors` },
    ]);
  }
  return ids;
}

async function requireSensors(services: AppServices, organizationId: string, ids: string[]): Promise<void> {
  const known = await sensorsOfOrganization(services.db, organizationId, ids);
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length > 0) {
    throw new HttpProblem({
      status: 404,
      detail: `No such sensor: ${missing.join(', ')}.`,
      errors: missing.map((id) => ({ pointer: '/query/sensor_ids', detail: `sensor ${id} does not exist` })),
    });
  }
}

export function registerReadingRoutes(app: App, services: AppServices, latestCache: LatestReadingCache): void {
  const guard = protect(services.bearer, SCOPES);
  const security = securitySchema(SCOPES);

  app.get(
    '/v1/sensors/:id/readings',
    {
      ...guard,
      schema: {
        tags: ['readings'],
        summary: "A sensor's readings in a time range, or downsampled into bins",
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        querystring: Type.Object(rangeQuery),
        response: { 200: pageDoc },
        ...security,
      },
    },
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const sensorId = request.params.id.toLowerCase();
      if (!isUuid(sensorId)) throw sensorNotFound();
      const range = parseRange(request.query);
      if (range.after && range.after.sensorId !== sensorId) throw invalidCursor();
      // The common case (the sensor has readings) costs one query; only an empty answer checks
      // whether the sensor exists at all (another organization's sensor: 404).
      return sendRange(services, request, reply, organizationId, [sensorId], range, {
        withSensor: false,
        onEmpty: async () => {
          if ((await sensorsOfOrganization(services.db, organizationId, [sensorId])).size === 0) throw sensorNotFound();
        },
      });
    },
  );

  app.get(
    '/v1/sensors/:id/readings/latest',
    {
      ...guard,
      schema: {
        tags: ['readings'],
        summary: "A sensor's latest reading (data is null until it has one)",
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: {
          200: Type.Object({
            data: Type.Union([LatestItem, Type.Null()]),
            links: Type.Object({ self: Type.String() }),
          }),
        },
        ...security,
      },
    },
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const sensorId = request.params.id.toLowerCase();
      const latest = await latestCache.get(organizationId, sensorId);
      if (latest === undefined) throw sensorNotFound();
      const self = `${services.config.publicUrl}/v1/sensors/${sensorId}/readings/latest`;
      if (latest === null || negotiate(request) === 'jsonapi')
        return sendDocument(request, reply, { data: latest && jsonApiReading(latest), links: { self } });
      // Dashboards poll this: the JSON body is rendered once per cached row (the cache hands out
      // the same row object until the entry is refreshed or invalidated), not on every request.
      let body = renderedLatest.get(latest);
      if (body === undefined) {
        body = JSON.stringify({ data: latestJson(latest), links: { self } });
        renderedLatest.set(latest, body);
      }
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(body);
    },
  );

  app.get(
    '/v1/readings',
    {
      ...guard,
      schema: {
        tags: ['readings'],
        summary: 'Readings of several sensors (ordered by sensor, then time), or the latest reading of each',
        querystring: Type.Object({
          sensor_ids: Type.Optional(
            Type.String({ maxLength: 4000, description: `Comma-separated sensor ids (at most ${MAX_SENSORS_PER_QUERY}).` }),
          ),
          latest: Type.Optional(
            Type.Boolean({
              description:
                'The latest reading of each sensor (of every sensor of the organization when sensor_ids is absent), ordered by sensor id.',
            }),
          ),
          ...rangeQuery,
        }),
        response: { 200: pageDoc },
        ...security,
      },
    },
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const query = request.query;
      const ids = query.sensor_ids === undefined ? undefined : parseSensorIds(query.sensor_ids);
      if (ids) await requireSensors(services, organizationId, ids);
      if (query.latest) {
        for (const name of ['from', 'to', 'interval', 'aggregate', 'sort'] as const) {
          if (query[name] !== undefined)
            throw badRequest(`${name} does not apply with latest=true.`, [
              { pointer: `/query/${name}`, detail: `${name} does not apply with latest=true` },
            ]);
        }
        const page = pageRequest(query);
        const afterSensorId = page.after?.[0];
        if (page.after && (typeof afterSensorId !== 'string' || !isUuid(afterSensorId))) throw invalidCursor();
        const rows = await latestReadings(services.db, organizationId, {
          sensorIds: ids,
          limit: page.limit,
          afterSensorId: afterSensorId as string | undefined,
        });
        const items = rows.slice(0, page.limit);
        const last = items[items.length - 1];
        const result: Page<LatestRow> = {
          items,
          nextCursor: rows.length > page.limit && last ? encodeCursor([last.sensorId]) : undefined,
          limit: page.limit,
        };
        return sendPage(services, request, reply, result, (r, jsonApi) => (jsonApi ? jsonApiReading(r) : latestJson(r)), { latest: true });
      }
      if (!ids)
        throw badRequest('sensor_ids is required (or latest=true).', [{ pointer: '/query/sensor_ids', detail: 'sensor_ids is required' }]);
      const range = parseRange(query);
      if (range.after && !ids.includes(range.after.sensorId)) throw invalidCursor();
      return sendRange(services, request, reply, organizationId, ids, range, { withSensor: true });
    },
  );
}
