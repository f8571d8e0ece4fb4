import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { sendDocument } from '../api/representation.js';
import { principalOf, protect, securitySchema } from '../auth/guard.js';
import { HttpProblem, badRequest } from '../http/problem.js';
import type { App } from '../server/app.js';
import type { AppServices } from '../server/context.js';
import { formatTime } from '../readings/time.js';
import { Collector, type LineError, NdjsonBody, type ParsedBatch, locate, parseJsonBatch, parseNdjsonBatch } from './ingest.parse.js';
import { type IngestTarget, ingestTargets } from '../inventory/sensors.repo.js';
import { reportedValue } from '../inventory/scaling.js';
import { writeBatch } from './ingest.repo.js';

/**
 * POST /v1/ingest: a batch of readings, JSON or NDJSON, from a device token (sensors by key, only
 * the device's own) or an API key / access token holding readings:write (sensors by id, only the
 * organization's). The batch is checked whole before anything is written (any bad line refuses
 * it, naming every bad line), written in one statement, and answered after it committed.
 */

export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

export interface IngestSettings {
  /** Most readings in one batch (INGEST_MAX_READINGS, default 10,000); more is 413. */
  maxReadings: number;
  /** Largest ingest body in bytes (INGEST_MAX_BYTES, default the server's BODY_LIMIT); more is 413. */
  maxBytes: number;
}

export function ingestSettings(env: NodeJS.ProcessEnv, bodyLimit: number): IngestSettings {
  const read = (name: string, fallback: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max)
      throw new Error(`${name} must be an integer between 1 and ${max}, got "${raw}"`);
    return value;
  };
  return { maxReadings: read('INGEST_MAX_READINGS', 10_000, 1_000_000), maxBytes: read('INGEST_MAX_BYTES', bodyLimit, 1024 * 1024 * 1024) };
}

const Reading = Type.Object({
  sensor: Type.Optional(Type.String({ description: 'Device tokens: the sensor key. Others: the sensor id.' })),
  sensor_id: Type.Optional(Type.String({ format: 'uuid', description: 'The sensor id (a device may name only its own sensors).' })),
  ts: Type.String({
    format: 'date-time',
    description: 'Time of the reading, RFC 3339; (sensor, ts) identifies a reading: a resend is not duplicated.',
  }),
  value: Type.Number({ description: "The raw value; the sensor's scaling profile and calibration offset give the reported value." }),
});

const IngestResult = Type.Object({
  data: Type.Object({
    received: Type.Integer({ description: 'Readings in the batch.' }),
    accepted: Type.Integer({ description: 'Readings stored by this request.' }),
    duplicates: Type.Integer({ description: 'Readings already stored (same sensor and ts), left unchanged.' }),
  }),
  meta: Type.Object({ received_at: Type.String({ format: 'date-time' }) }),
});

/** Refuses a batch with its bad lines: 422 (the JSON was fine, its content was not). */
function refused(errors: LineError[], more: number, received: number): HttpProblem {
  const count = errors.length + more;
  const detail =
    `The batch was refused, nothing was stored: ${count} of ${received} reading${received === 1 ? '' : 's'} ${count === 1 ? 'is' : 'are'} invalid` +
    (more > 0 ? ` (the first ${errors.length} are listed).` : '.');
  return new HttpProblem({ status: 422, title: 'Invalid readings', detail, errors });
}

interface Resolved {
  target: IngestTarget;
  index: number;
}

/** Devices whose last_seen_at this node wrote recently; the SQL skips fresher rows anyway. */
const SEEN_THROTTLE_MS = 30_000;

export interface IngestHooks {
  /** Called after a batch committed, with the sensors it named (e.g. to drop cached latest readings). */
  written?(sensorIds: readonly string[]): void;
}

export function registerIngestRoutes(app: App, services: AppServices, settings: IngestSettings, hooks: IngestHooks = {}): void {
  const SCOPES = ['readings:write'] as const;
  const guard = protect(services.bearer, SCOPES);
  const lastSeenWrite = new Map<string, number>();

  const tooLarge = () =>
    new HttpProblem({
      status: 413,
      detail: `A batch holds at most ${settings.maxReadings} readings (INGEST_MAX_READINGS); split it.`,
      headers: { 'accept-post': ['application/json', ...NDJSON_TYPES].join(', ') },
    });

  // These parsers only exist inside this plugin: no other route accepts NDJSON, or skips the
  // prototype-poisoning scan of the shared JSON parser. That scan is not needed here: the handler
  // only reads named fields of each reading, never merges the body into another object.
  void app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: settings.maxBytes },
      (_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
        const text = typeof body === 'string' ? body : body.toString('utf8');
        if (text.trim() === '') {
          done(Object.assign(new Error('The body is empty; send {"readings": [...]}.'), { statusCode: 400 }));
          return;
        }
        try {
          done(null, JSON.parse(text));
        } catch (error) {
          done(Object.assign(new Error(`The body is not valid JSON: ${(error as Error).message}`), { statusCode: 400 }));
        }
      },
    );
    scope.addContentTypeParser(
      NDJSON_TYPES,
      { parseAs: 'string', bodyLimit: settings.maxBytes },
      (_request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
        done(null, new NdjsonBody(typeof body === 'string' ? body : body.toString('utf8')));
      },
    );

    scope.post(
      '/v1/ingest',
      {
        ...guard,
        bodyLimit: settings.maxBytes,
        // Readings are checked one by one (ingest.parse.ts), each bad line named.
        config: { ...guard.config, checksOwnBody: true },
        // The batch is validated by the handler, line by line, so that every bad line is named;
        // the body schema below is documentation (OpenAPI) only.
        validatorCompiler: () => () => true,
        schema: {
          tags: ['ingest'],
          summary: 'Ingest a batch of readings (JSON or NDJSON); answered once durable',
          description:
            `Up to ${settings.maxReadings} readings per batch (413 beyond). Device tokens (sc_dev_…) name sensors by key (sensor) and may write only their own; ` +
            'API keys and access tokens with readings:write name them by id. Any invalid reading refuses the whole batch (422, each bad line named). ' +
            'The answer comes after the batch is committed; resending a reading (same sensor and ts) stores nothing new.',
          body: {
            content: {
              'application/json': { schema: Type.Union([Type.Object({ readings: Type.Array(Reading) }), Type.Array(Reading)]) },
              'application/x-ndjson': { schema: Type.String({ description: 'One reading object per line.' }) },
            },
          },
          response: { 200: IngestResult },
          ...securitySchema(SCOPES),
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const isDevice = principal.kind === 'device';
        const deviceId = isDevice ? principal.deviceId : undefined;
        if (isDevice && !deviceId) throw new HttpProblem({ status: 403, detail: 'The device credential names no device.' });
        const addressing = isDevice ? 'key' : 'id';

        const body = request.body;
        let parsed: ParsedBatch;
        if (body instanceof NdjsonBody) parsed = parseNdjsonBatch(body.text, addressing, settings.maxReadings);
        else {
          const json = parseJsonBatch(body, addressing, settings.maxReadings);
          if ('shapeError' in json) throw badRequest(json.shapeError, [{ pointer: '/body', detail: json.shapeError }]);
          parsed = json;
        }
        if (parsed.tooMany) throw tooLarge();
        const received = parsed.received;
        if (parsed.errors.length > 0) throw refused(parsed.errors, parsed.moreErrors, received);
        if (received === 0)
          throw badRequest('The batch holds no readings.', [{ pointer: '/body', detail: 'at least one reading is required' }]);

        // Resolve every sensor the batch names, with its scaling and calibration, in one query.
        const n = parsed.count;
        const ids = new Set<string>();
        const keys = new Set<string>();
        for (let i = 0; i < n; i += 1) (parsed.byId[i] ? ids : keys).add(parsed.sensor[i]!);
        const targets = new Map<string, IngestTarget>();
        const add = (found: IngestTarget[]) => {
          for (const t of found) if (!isDevice || t.sensor.device_id === deviceId) targets.set(t.sensor.id, t);
        };
        if (isDevice && keys.size > 0)
          add(await ingestTargets(services.db, principal.organizationId, { deviceId: deviceId!, keys: [...keys] }));
        if (ids.size > 0) add(await ingestTargets(services.db, principal.organizationId, { ids: [...ids] }));
        // Each sensor gets its 1-based position in the statement's distinct-sensor array.
        const sensors = [...targets.values()];
        const byId = new Map<string, Resolved>();
        const byKey = new Map<string, Resolved>();
        sensors.forEach((target, i) => {
          const resolved = { target, index: i + 1 };
          byId.set(target.sensor.id, resolved);
          byKey.set(target.sensor.key, resolved);
        });

        const sensorIndex = new Int32Array(n);
        const values = new Float64Array(n);
        const errors = new Collector();
        const used = new Set<IngestTarget>();
        let scaled = false;
        for (let i = 0; i < n; i += 1) {
          const resolved = parsed.byId[i] ? byId.get(parsed.sensor[i]!) : byKey.get(parsed.sensor[i]!);
          if (!resolved) {
            errors.add(
              locate(parsed.base, parsed.position[i]!),
              parsed.byId[i] ? 'sensor_id' : 'sensor',
              isDevice ? 'is not a sensor of this device' : 'is not a sensor of this organization',
            );
            continue;
          }
          const { target } = resolved;
          const value = reportedValue(target.scaling, target.calibrationOffset, parsed.raw[i]!);
          if (!Number.isFinite(value)) {
            errors.add(locate(parsed.base, parsed.position[i]!), 'value', 'gives a non-finite reported value after scaling');
            continue;
          }
          sensorIndex[i] = resolved.index;
          values[i] = value;
          if (value !== parsed.raw[i]) scaled = true;
          used.add(target);
        }
        if (errors.count > 0) throw refused(errors.errors, errors.more, received);

        const now = Date.now();
        const seen = [...new Set([...used].map((t) => t.sensor.device_id))].filter(
          (id) => (lastSeenWrite.get(id) ?? 0) < now - SEEN_THROTTLE_MS,
        );
        const { accepted } = await writeBatch(
          services.db,
          principal.organizationId,
          {
            count: n,
            sensors: sensors.map((t) => t.sensor.id),
            sensorIndex,
            ts: parsed.ts,
            values: scaled ? values : null,
            rawValues: parsed.raw,
          },
          seen,
        );
        hooks.written?.(sensors.map((t) => t.sensor.id));
        for (const id of seen) lastSeenWrite.set(id, now);
        if (lastSeenWrite.size > 100_000) lastSeenWrite.clear();

        return sendDocument(request, reply, {
          data: { received, accepted, duplicates: received - accepted },
          meta: { received_at: formatTime(now) },
        });
      },
    );
  });
}
