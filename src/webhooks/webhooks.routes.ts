import { Type } from 'typebox';
import { type ResourceType, collectionSchema, envelopeSchema, sendCollection, sendResource } from '../api/documents.js';
import { IdParams, Nullable, Timestamp, found, iso, secured } from '../api/kit.js';
import { pageQueryProperties, pageRequest, parseSort, sortQueryProperty } from '../api/list-query.js';
import { ownedBy, resourceRegistry } from '../api/compound.js';
import { type Caller, WithMeta, callerOf, resourceRoutes } from '../api/resource-routes.js';
import type { AuditAction } from '../audit/actions.js';
import { recordCallerEvent } from '../audit/actor.js';
import { principalOf } from '../auth/guard.js';
import { EVENT_TYPES, messageId } from '../events/event-types.js';
import { badRequest, conflict } from '../http/problem.js';
import type { SecretBox } from '../security/secret-box.js';
import type { App, AppServices } from '../server/context.js';
import type { Db } from '../storage/database.js';
import { announce } from '../storage/invalidations.js';
import { definedOnly } from '../storage/sql.js';
import { destinationProblem } from './destination.js';
import { generateWebhookSecret } from './signing.js';
import type { WebhookConsumer } from './webhook-consumer.js';
import {
  DELIVERY_SORTS,
  type Delivery,
  WEBHOOK_SORTS,
  type Webhook,
  deleteWebhook,
  deliveriesOfWebhooks,
  findDelivery,
  findWebhook,
  insertWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  updateWebhook,
} from './webhooks.repo.js';

/** While a rotation is under way deliveries carry both signatures (SPEC §5: 24 hours). */
const ROTATION_OVERLAP_MS = 24 * 3600_000;

type WebhookView = Webhook & { secret?: string };

export const WebhookResource: ResourceType<WebhookView> = {
  type: 'webhooks',
  id: (row) => row.id,
  path: (row) => `/v1/webhooks/${row.id}`,
  attributes: (row) => ({
    url: row.url,
    description: row.description,
    event_types: row.event_types,
    enabled: row.enabled,
    disabled_reason: row.disabled_reason,
    previous_secret_expires_at:
      row.previous_secret_expires_at && row.previous_secret_expires_at > new Date() ? iso(row.previous_secret_expires_at) : null,
    ...(row.secret !== undefined && { secret: row.secret }),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
  relationships: {
    deliveries: {
      type: 'webhook-deliveries',
      field: 'delivery_ids',
      many: true,
      jsonApiOnly: true,
      get: () => undefined,
      related: (row) => `/v1/webhooks/${row.id}/deliveries`,
      include: {
        byOwners: async (db, organizationId, ids, limit) =>
          ownedBy(await deliveriesOfWebhooks(db, organizationId, ids, limit), 'webhookId'),
      },
    },
  },
};

const DeliveryResource: ResourceType<Delivery> = {
  type: 'webhook-deliveries',
  id: (row) => row.id,
  path: (row) => `/v1/webhooks/${row.webhookId}/deliveries/${row.id}`,
  attributes: (row) => ({
    webhook_id: messageId(row.eventId),
    event_id: row.eventId,
    event_type: row.eventType,
    attempt: row.attempt,
    status_code: row.statusCode,
    error: row.error,
    duration_ms: row.durationMs,
    created_at: iso(row.createdAt),
    next_attempt_at: iso(row.nextAttemptAt),
  }),
};

const EventType = Type.Enum([...EVENT_TYPES]);
const WebhookJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String({ format: 'uri' }),
  description: Nullable(Type.String()),
  event_types: Type.Array(EventType),
  enabled: Type.Boolean(),
  disabled_reason: Nullable(
    Type.String({
      description: '`gone` (the receiver answered 410), `failing` (5 events in a row failed every attempt) or `disabled by a user`.',
    }),
  ),
  previous_secret_expires_at: Nullable(Timestamp('Until then deliveries are also signed with the secret before the last rotation.')),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});
const WebhookWithSecretJson = Type.Intersect([
  WebhookJson,
  Type.Object({ secret: Type.String({ description: 'The signing secret (whsec_…), shown in this answer only.' }) }),
]);
const DeliveryJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  webhook_id: Type.String({ description: 'The event’s `webhook-id` header, the same on every attempt.' }),
  event_id: Type.String({ format: 'uuid' }),
  event_type: EventType,
  attempt: Type.Integer({ minimum: 1 }),
  status_code: Nullable(Type.Integer({ description: 'The receiver’s status; null when it gave none.' })),
  error: Nullable(Type.String({ description: 'Why there was no status (timed out, refused).' })),
  duration_ms: Type.Integer(),
  created_at: Timestamp(),
  next_attempt_at: Nullable(Timestamp('When the next attempt is due; null when this was the last.')),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Url = Type.String({ minLength: 1, maxLength: 2000, description: 'Where events are POSTed (https; private addresses are refused).' });
const EventTypes = Type.Array(EventType, { minItems: 1, maxItems: EVENT_TYPES.length, uniqueItems: true });
const WebhookCreate = Type.Object(
  {
    url: Url,
    event_types: EventTypes,
    description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const WebhookUpdate = Type.Partial(WebhookCreate, { additionalProperties: false });
const DeliveryParams = Type.Object({ id: IdParams.properties.id, delivery_id: Type.String({ maxLength: 100 }) });

export interface WebhookRouteOptions {
  secrets: () => SecretBox;
  consumer: WebhookConsumer;
  allowPrivate: boolean;
}

export function registerWebhookRoutes(app: App, services: AppServices, options: WebhookRouteOptions): void {
  const { db, bearer, config } = services;
  const tags = ['webhooks'];
  const scopes = { read: ['webhooks:read'] as const, write: ['webhooks:write'] as const };

  async function checkUrl(url: string | undefined): Promise<void> {
    if (url === undefined) return;
    const problem = await destinationProblem(url, options.allowPrivate);
    if (problem) throw badRequest(`The webhook URL ${problem}.`, [{ pointer: '/body/url', detail: `url ${problem}` }]);
  }
  const changed = (organizationId: string) => options.consumer.forget(organizationId);
  // A receiver's URL may carry a token of its own (chat services' incoming webhooks): only its origin is recorded.
  const audit = (tx: Db, caller: Caller, action: AuditAction, row: Webhook, details: Record<string, unknown>) =>
    recordCallerEvent(
      tx,
      caller,
      action,
      { type: 'webhook', id: row.id },
      { destination: URL.canParse(row.url) ? new URL(row.url).origin : null, ...details },
    );

  const webhooks = resourceRoutes(app, services, {
    path: '/v1/webhooks',
    resource: WebhookResource,
    schema: WebhookJson,
    noun: 'webhook',
    tags,
    scopes,
  });

  webhooks.list(
    {
      summary: 'List webhook subscriptions',
      sorts: WEBHOOK_SORTS,
      defaultSort: 'created_at',
      filters: { enabled: Type.Optional(Type.Boolean()), event_type: Type.Optional(EventType) },
    },
    ({ organizationId, query, sort, page }) =>
      listWebhooks(db, organizationId, { enabled: query.enabled, eventType: query.event_type }, sort, page),
  );

  webhooks.get({ summary: 'Get a webhook subscription' }, ({ organizationId, id }) => findWebhook(db, organizationId, id));
  // Deliveries are served below, as the webhook's; registered so that `include=deliveries` can render them.
  resourceRegistry(services).register(DeliveryResource, DeliveryJson, scopes.read);

  // The secret is shown in this answer only (stored encrypted), so no cache may keep it.
  webhooks.create(
    {
      summary: 'Subscribe to events (the answer carries the signing secret, once)',
      body: WebhookCreate,
      createdSchema: WebhookWithSecretJson,
    },
    async (caller) => {
      const { organizationId, body, reply } = caller;
      await checkUrl(body.url);
      const secret = generateWebhookSecret();
      const row = await db.transaction().execute(async (tx) => {
        const row = await insertWebhook(
          tx,
          organizationId,
          { url: body.url, event_types: body.event_types, description: body.description ?? null, enabled: body.enabled ?? true },
          (id) => options.secrets().seal(secret, id),
        );
        await audit(tx, caller, 'webhook.created', row, { event_types: row.event_types });
        return row;
      });
      changed(organizationId);
      reply.header('cache-control', 'no-store');
      return new WithMeta<WebhookView>({ ...row, secret }, { secret_shown_once: true });
    },
  );

  webhooks.update(
    { summary: 'Update a webhook subscription (enabling it again clears why it was disabled)', body: WebhookUpdate },
    async (caller) => {
      const { organizationId, id, body } = caller;
      await checkUrl(body.url);
      const row = await db.transaction().execute(async (tx) => {
        const row = await updateWebhook(tx, organizationId, id, body);
        if (row) await audit(tx, caller, 'webhook.updated', row, { changed: Object.keys(definedOnly(body)), enabled: row.enabled });
        return row;
      });
      changed(organizationId);
      return row;
    },
  );

  webhooks.remove({ summary: 'Delete a webhook subscription (pending deliveries are dropped)' }, async (caller) => {
    const { organizationId, id } = caller;
    const removed = await db.transaction().execute(async (tx) => {
      const row = await findWebhook(tx, organizationId, id);
      if (!row || !(await deleteWebhook(tx, organizationId, id))) return false;
      await audit(tx, caller, 'webhook.deleted', row, {});
      return true;
    });
    changed(organizationId);
    return removed;
  });

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    secured(bearer, scopes.write, {
      tags,
      summary: 'Rotate the signing secret: the new one is returned once; for 24 hours deliveries carry signatures with both',
      params: IdParams,
      response: { 200: envelopeSchema(WebhookWithSecretJson) },
    }),
    async (request, reply) => {
      const caller = callerOf(request);
      const { id } = request.params;
      const secret = generateWebhookSecret();
      const previousValidUntil = new Date(Date.now() + ROTATION_OVERLAP_MS);
      const row = await db.transaction().execute(async (tx) => {
        const row = await rotateWebhookSecret(tx, caller.organizationId, id, options.secrets().seal(secret, id), previousValidUntil);
        if (row) await audit(tx, caller, 'webhook.secret_rotated', row, { previous_secret_expires_at: previousValidUntil.toISOString() });
        return row;
      });
      reply.header('cache-control', 'no-store');
      return sendResource(
        config.publicUrl,
        request,
        reply,
        WebhookResource,
        { ...found(row, 'webhook'), secret },
        { meta: { secret_shown_once: true } },
      );
    },
  );

  const deliveriesQuery = Type.Object(
    {
      ...pageQueryProperties,
      sort: sortQueryProperty(DELIVERY_SORTS, '-created_at'),
      event_type: Type.Optional(EventType),
      failed: Type.Optional(Type.Boolean({ description: 'Only failed attempts (true) or only successful ones (false).' })),
    },
    { additionalProperties: false },
  );
  app.get(
    '/v1/webhooks/:id/deliveries',
    secured(bearer, scopes.read, {
      tags,
      summary: 'The delivery log: one item per attempt, newest first',
      params: IdParams,
      querystring: deliveriesQuery,
      response: { 200: collectionSchema(DeliveryJson) },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      found(await findWebhook(db, organizationId, request.params.id), 'webhook');
      const query = request.query;
      const sort = parseSort(query.sort, DELIVERY_SORTS, '-created_at');
      const page = await listDeliveries(
        db,
        organizationId,
        request.params.id,
        { eventType: query.event_type, failed: query.failed },
        sort,
        pageRequest(query),
      );
      return sendCollection(config.publicUrl, request, reply, DeliveryResource, page);
    },
  );

  app.get(
    '/v1/webhooks/:id/deliveries/:delivery_id',
    secured(bearer, scopes.read, {
      tags,
      summary: 'One delivery attempt',
      params: DeliveryParams,
      response: { 200: envelopeSchema(DeliveryJson) },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const delivery = found(await findDelivery(db, organizationId, request.params.id, request.params.delivery_id), 'delivery');
      return sendResource(config.publicUrl, request, reply, DeliveryResource, delivery);
    },
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:delivery_id/redeliver',
    secured(bearer, scopes.write, {
      tags,
      summary: 'Send that delivery’s event again, with the same webhook-id (answered once it is queued)',
      params: DeliveryParams,
      response: { 202: Type.Null() },
    }),
    async (request, reply) => {
      const { organizationId } = principalOf(request);
      const webhook = found(await findWebhook(db, organizationId, request.params.id), 'webhook');
      if (!webhook.enabled) throw conflict('The webhook is disabled; enable it (PATCH enabled: true) to redeliver.');
      found((await redeliver(db, organizationId, request.params.id, request.params.delivery_id)) || undefined, 'delivery');
      await announce(db, { kind: 'events' });
      return reply.code(202).send(null);
    },
  );
}
