import type { FastifyRequest } from 'fastify';
import type { Environment } from '../config/env.js';
import { Type } from 'typebox';
import { sendDocument } from '../api/documents.js';
import { principalOf, protect, securitySchema } from '../auth/guard.js';
import { HttpProblem, badRequest } from '../http/problem.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { formatTime } from '../readings/time.js';
import { NdjsonBody, type ParsedBatch, parseJsonBatch, parseNdjsonBatch } from './ingest.parse.js';
import { type IngestOutcome, IngestRefusal } from './pipeline.js';

/**
 * POST /v1/ingest: a batch of readings, JSON or NDJSON, from a device token (sensors by key, only
 * the device's own) or an API key / access token holding readings:write (sensors by id, only the
 * organization's). The batch is checked whole before anything is written (any bad line refuses
 * it, naming every bad line), written by the ingest pipeline, and answered after it committed.
 */

export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

export interface IngestSettings {
  /** Most readings in one batch (INGEST_MAX_READINGS, default 10,000); more is 413. */
  maxReadings: number;
  /** Largest ingest body in bytes (INGEST_MAX_BYTES, default the server's BODY_LIMIT); more is 413. */
  maxBytes: number;
}

export function ingestSettings(env: Environment): IngestSettings {
  return { maxReadings: env.INGEST_MAX_READINGS, maxBytes: env.INGEST_MAX_BYTES ?? env.BODY_LIMIT };
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

/** The HTTP answer to a refused batch: 413 (too many), 400 (empty), 422 (bad readings, each named). */
function problemOf(refusal: IngestRefusal, maxReadings: number): HttpProblem {
  switch (refusal.kind) {
    case 'too_many':
      return new HttpProblem({
        status: 413,
        detail: `A batch holds at most ${maxReadings} readings (INGEST_MAX_READINGS); split it.`,
        headers: { 'accept-post': ['application/json', ...NDJSON_TYPES].join(', ') },
      });
    case 'empty':
      return badRequest(refusal.message, [{ pointer: '/body', detail: 'at least one reading is required' }]);
    case 'invalid':
      return new HttpProblem({ status: 422, title: 'Invalid readings', detail: refusal.message, errors: [...refusal.errors] });
  }
}

/** POST /v1/ingest over the ingest pipeline (services.ingest): this route only reads HTTP and answers it. */
export function registerIngestRoutes(app: App, services: AppServices, settings: IngestSettings): void {
  const SCOPES = ['readings:write'] as const;
  const guard = protect(services.bearer, SCOPES);

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
        if (isDevice && !principal.deviceId) throw new HttpProblem({ status: 403, detail: 'The device credential names no device.' });
        const addressing = isDevice ? 'key' : 'id';
        const body = request.body;
        let parsed: ParsedBatch;
        if (body instanceof NdjsonBody) parsed = parseNdjsonBatch(body.text, addressing, settings.maxReadings);
        else {
          const json = parseJsonBatch(body, addressing, settings.maxReadings);
          if ('shapeError' in json) throw badRequest(json.shapeError, [{ pointer: '/body', detail: json.shapeError }]);
          parsed = json;
        }
        let outcome: IngestOutcome;
        try {
          outcome = await services.ingest.ingest(
            { organizationId: principal.organizationId, deviceId: isDevice ? principal.deviceId : undefined },
            parsed,
          );
        } catch (error) {
          throw error instanceof IngestRefusal ? problemOf(error, settings.maxReadings) : error;
        }
        const { received, accepted, receivedAt } = outcome;
        return sendDocument(request, reply, {
          data: { received, accepted, duplicates: received - accepted },
          meta: { received_at: formatTime(receivedAt) },
        });
      },
    );
  });
}
