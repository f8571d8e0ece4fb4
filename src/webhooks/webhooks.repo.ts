import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import { type Db, inTransaction } from '../storage/database.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { rowsPerOwner } from '../storage/per-owner.js';
import { isUuid } from '../storage/sql.js';
import type { WebhooksTable } from './webhooks.schema.js';

/** Subscriptions and their delivery log. Every query is scoped by organization_id. */

export type Webhook = Selectable<WebhooksTable>;

export const WEBHOOK_SORTS: Record<string, SortField> = {
  created_at: { column: 'webhooks.created_at', cast: 'timestamptz' },
  url: { column: 'webhooks.url', cast: 'text' },
};

export interface WebhookFilter {
  enabled?: boolean | undefined;
  eventType?: string | undefined;
}

export async function listWebhooks(
  db: Db,
  organizationId: string,
  filter: WebhookFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<Webhook>> {
  let query = db.selectFrom('webhooks').selectAll().where('organization_id', '=', organizationId);
  if (filter.enabled !== undefined) query = query.where('enabled', '=', filter.enabled);
  if (filter.eventType !== undefined) query = query.where(sql<boolean>`${filter.eventType} = any (event_types)`);
  const rows = await paginate(query, sort, 'webhooks.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findWebhook(db: Db, organizationId: string, id: string): Promise<Webhook | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('webhooks').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

export interface WebhookFields {
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
}

/** `seal` encrypts the secret bound to the new row's id (made here for that reason). */
export async function insertWebhook(db: Db, organizationId: string, fields: WebhookFields, seal: (id: string) => string): Promise<Webhook> {
  const id = randomUUID();
  return db
    .insertInto('webhooks')
    .values({ id, organization_id: organizationId, ...fields, secret_sealed: seal(id) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Turning a subscription back on clears why it was off and its run of failed events. */
export async function updateWebhook(
  db: Db,
  organizationId: string,
  id: string,
  fields: Partial<WebhookFields>,
): Promise<Webhook | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('webhooks')
    .set({
      ...fields,
      ...(fields.enabled === true && { disabled_reason: null, failed_events: 0 }),
      ...(fields.enabled === false && { disabled_reason: 'disabled by a user' }),
      updated_at: new Date(),
    })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Its tasks go first, in the order a worker recording an attempt takes its locks (task, then
 * subscription), so the two cannot deadlock.
 */
export async function deleteWebhook(db: Db, organizationId: string, id: string): Promise<boolean> {
  if (!isUuid(id)) return false;
  return inTransaction(db, async (tx) => {
    const owned = await tx
      .selectFrom('webhooks')
      .select('id')
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!owned) return false;
    await tx.deleteFrom('webhook_tasks').where('webhook_id', '=', id).execute();
    const result = await tx.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  });
}

/** The new secret signs from now on; the current one keeps signing too until `previousValidUntil`. */
export async function rotateWebhookSecret(
  db: Db,
  organizationId: string,
  id: string,
  sealed: string,
  previousValidUntil: Date,
): Promise<Webhook | undefined> {
  if (!isUuid(id)) return undefined;
  return db
    .updateTable('webhooks')
    .set((eb) => ({
      previous_secret_sealed: eb.ref('secret_sealed'),
      previous_secret_expires_at: previousValidUntil,
      secret_sealed: sealed,
      updated_at: new Date(),
    }))
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
}

export interface Delivery {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  attempt: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  createdAt: Date;
  nextAttemptAt: Date | null;
}

export const DELIVERY_SORTS: Record<string, SortField> = {
  created_at: { column: 'd.created_at', cast: 'timestamptz' },
};

function deliveries(db: Db, organizationId: string, webhookId: string) {
  return deliveryRows(db, organizationId).where('d.webhook_id', '=', webhookId);
}

function deliveryRows(db: Db, organizationId: string) {
  return db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .select([
      'd.id as id',
      'd.webhook_id as webhookId',
      'd.event_id as eventId',
      'e.type as eventType',
      'd.attempt as attempt',
      'd.status_code as statusCode',
      'd.error as error',
      'd.duration_ms as durationMs',
      'd.created_at as createdAt',
      'd.next_attempt_at as nextAttemptAt',
    ])
    .where('w.organization_id', '=', organizationId);
}

/**
 * The delivery log of these webhooks, newest first (`include`): one statement; with `limit`, only
 * the latest `limit` of each (a `reading.created` subscription logs a delivery per reading).
 */
export async function deliveriesOfWebhooks(
  db: Db,
  organizationId: string,
  webhookIds: readonly string[],
  limit?: number,
): Promise<Delivery[]> {
  const valid = webhookIds.filter(isUuid);
  if (valid.length === 0) return [];
  return rowsPerOwner(db, deliveryRows(db, organizationId).where('d.webhook_id', 'in', valid), {
    owner: 'd.webhook_id',
    order: [
      ['d.created_at', 'desc'],
      ['d.id', 'asc'],
    ],
    limit,
  });
}

export async function listDeliveries(
  db: Db,
  organizationId: string,
  webhookId: string,
  filter: { eventType?: string | undefined; failed?: boolean | undefined },
  sort: Sort,
  page: PageRequest,
): Promise<Page<Delivery>> {
  let query = deliveries(db, organizationId, webhookId);
  if (filter.eventType !== undefined) query = query.where('e.type', '=', filter.eventType);
  if (filter.failed === true)
    query = query.where((eb) => eb.or([eb('d.status_code', 'is', null), eb('d.status_code', '<', 200), eb('d.status_code', '>=', 300)]));
  if (filter.failed === false) query = query.where('d.status_code', '>=', 200).where('d.status_code', '<', 300);
  const rows = await paginate(query, sort, 'd.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findDelivery(db: Db, organizationId: string, webhookId: string, id: string): Promise<Delivery | undefined> {
  if (!isUuid(webhookId) || !isUuid(id)) return undefined;
  return deliveries(db, organizationId, webhookId).where('d.id', '=', id).executeTakeFirst();
}

/**
 * Sends a delivery's event again, with the same `webhook-id`: its task is due now and starts the
 * retry schedule afresh. Answers false when the organization has no such delivery or the
 * subscription is disabled (nothing would be sent).
 */
export async function redeliver(db: Db, organizationId: string, webhookId: string, deliveryId: string): Promise<boolean> {
  if (!isUuid(webhookId) || !isUuid(deliveryId)) return false;
  const { rows } = await sql<{ id: string }>`
    update webhook_tasks t
    set state = 'pending', schedule_step = 0, next_attempt_at = now()
    from webhook_deliveries d join webhooks w on w.id = d.webhook_id
    where d.id = ${deliveryId} and d.webhook_id = ${webhookId} and w.organization_id = ${organizationId} and t.id = d.task_id
      and w.enabled
    returning t.id`.execute(db);
  return rows.length > 0;
}
