import { sql } from 'kysely';
import type { StoredEvent } from '../events/event-types.js';
import type { Db } from '../storage/database.js';

/**
 * Storage side of delivery: a task per (subscription, event) created in the event's
 * transaction, claimed by one worker at a time under a lease, and one log row per attempt.
 */

/** Inside the producer's transaction: a task for every enabled subscription that wants each event. */
export async function enqueueDeliveries(tx: Db, events: readonly StoredEvent[]): Promise<void> {
  const keys = events.map((e) => ({ id: e.id, organization_id: e.organizationId, type: e.type }));
  await sql`
    insert into webhook_tasks (webhook_id, event_id)
    select w.id, e.id
    from jsonb_to_recordset(${JSON.stringify(keys)}::jsonb) as e (id uuid, organization_id uuid, type text)
    join webhooks w on w.organization_id = e.organization_id and w.enabled and e.type = any (w.event_types)
    on conflict do nothing`.execute(tx);
}

/** The event types some enabled subscription of the organization wants. */
export async function subscribedTypes(db: Db, organizationId: string): Promise<Set<string>> {
  const { rows } = await sql<{ type: string }>`
    select distinct unnest(event_types) as type from webhooks where organization_id = ${organizationId} and enabled`.execute(db);
  return new Set(rows.map((r) => r.type));
}

export interface ClaimedTask {
  id: string;
  webhookId: string;
  eventId: string;
  attempts: number;
  scheduleStep: number;
  url: string;
  enabled: boolean;
  secretSealed: string;
  /** The pre-rotation secret while it is still valid. */
  previousSecretSealed: string | null;
  eventType: string;
  eventData: Record<string, unknown>;
  occurredAt: number;
}

/**
 * Takes up to `limit` due tasks for this worker until `leaseMs` from now, oldest first. Rows
 * another worker is claiming at this instant are skipped (SKIP LOCKED), and rows leased to one
 * are left alone until the lease runs out (its process died mid-attempt): each attempt is made by
 * one process. One statement, with what the attempt needs from the subscription and the event.
 */
export async function claimDueTasks(db: Db, leaseId: string, leaseMs: number, limit: number): Promise<ClaimedTask[]> {
  const { rows } = await sql<{
    id: string;
    webhook_id: string;
    event_id: string;
    attempts: number;
    schedule_step: number;
    url: string;
    enabled: boolean;
    secret_sealed: string;
    previous_secret_sealed: string | null;
    type: string;
    data: Record<string, unknown>;
    occurred_at: Date;
  }>`
    with due as (
      select id from webhook_tasks
      where state = 'pending' and next_attempt_at <= now() and (lease_expires_at is null or lease_expires_at < now())
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    ), claimed as (
      update webhook_tasks t
      set lease_id = ${leaseId}, lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from due where t.id = due.id
      returning t.id, t.webhook_id, t.event_id, t.attempts, t.schedule_step
    )
    select c.id, c.webhook_id, c.event_id, c.attempts, c.schedule_step, w.url, w.enabled, w.secret_sealed,
      case when w.previous_secret_expires_at > now() then w.previous_secret_sealed end as previous_secret_sealed,
      e.type, e.data, e.occurred_at
    from claimed c join webhooks w on w.id = c.webhook_id join events e on e.id = c.event_id`.execute(db);
  return rows.map((r) => ({
    id: r.id,
    webhookId: r.webhook_id,
    eventId: r.event_id,
    attempts: r.attempts,
    scheduleStep: r.schedule_step,
    url: r.url,
    enabled: r.enabled,
    secretSealed: r.secret_sealed,
    previousSecretSealed: r.previous_secret_sealed,
    eventType: r.type,
    eventData: r.data,
    occurredAt: r.occurred_at.getTime(),
  }));
}

/** What became of a task after an attempt. */
export type TaskOutcome =
  | { state: 'delivered' }
  | { state: 'pending'; nextAttemptAt: Date; scheduleStep: number }
  /** The schedule ran out. */
  | { state: 'failed' }
  /** The receiver answered 410 Gone: the subscription is disabled. */
  | { state: 'gone' };

export interface Attempt {
  task: ClaimedTask;
  leaseId: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/**
 * Logs the attempt and moves the task on, in one statement; a success resets the subscription's
 * run of failed events. Only while this worker still holds the lease: a worker that stalled past
 * it (another took the task over) changes nothing, so an event never counts twice. Answers whether the subscription was disabled by this attempt (410, or
 * the fifth event in a row to fail its whole schedule: SPEC §8).
 */
export async function recordAttempt(db: Db, attempt: Attempt, outcome: TaskOutcome, failedEventsToDisable: number): Promise<string | null> {
  const { task } = attempt;
  const number = task.attempts + 1;
  const next = outcome.state === 'pending' ? outcome.nextAttemptAt.toISOString() : null;
  const state = outcome.state === 'gone' ? 'failed' : outcome.state;
  const step = outcome.state === 'pending' ? outcome.scheduleStep : task.scheduleStep;
  const subscription =
    outcome.state === 'delivered'
      ? sql`, reset as (update webhooks set failed_events = 0 where id = ${task.webhookId} and failed_events <> 0 and exists (select from moved))`
      : outcome.state === 'gone'
        ? sql`, disabled as (
            update webhooks set enabled = false, disabled_reason = 'gone', updated_at = now()
            where id = ${task.webhookId} and enabled and exists (select from moved) returning 'gone'::text as reason)`
        : outcome.state === 'failed'
          ? sql`, disabled as (
              update webhooks set failed_events = failed_events + 1,
                enabled = enabled and failed_events + 1 < ${failedEventsToDisable},
                disabled_reason = case when enabled and failed_events + 1 >= ${failedEventsToDisable} then 'failing' else disabled_reason end,
                updated_at = now()
              where id = ${task.webhookId} and exists (select from moved)
              returning case when not enabled and disabled_reason = 'failing' and failed_events = ${failedEventsToDisable} then 'failing' end as reason)`
          : sql``;
  const { rows } = await sql<{ reason: string | null }>`
    with moved as (
      update webhook_tasks
      set attempts = ${number}, schedule_step = ${step}, state = ${state},
        next_attempt_at = coalesce(${next}::timestamptz, next_attempt_at), lease_id = null, lease_expires_at = null
      where id = ${task.id} and lease_id = ${attempt.leaseId}
      returning id
    ), logged as (
      insert into webhook_deliveries (task_id, webhook_id, event_id, attempt, status_code, error, duration_ms, next_attempt_at)
      select ${task.id}, ${task.webhookId}, ${task.eventId}, ${number}, ${attempt.statusCode}::int, ${attempt.error}::text,
        ${attempt.durationMs}::int, ${next}::timestamptz
      from moved
    )${subscription}
    ${outcome.state === 'gone' || outcome.state === 'failed' ? sql`select reason from disabled` : sql`select null::text as reason`}`.execute(
    db,
  );
  return rows[0]?.reason ?? null;
}

/**
 * A task this node cannot attempt now (its server key does not open the secret): released
 * without an attempt, due again at `until`, counted against nothing.
 */
export async function deferTask(db: Db, taskId: string, leaseId: string, until: Date): Promise<void> {
  await sql`update webhook_tasks set next_attempt_at = ${until}, lease_id = null, lease_expires_at = null
    where id = ${taskId} and lease_id = ${leaseId}`.execute(db);
}

/** A task whose subscription was disabled or deleted meanwhile: dropped without an attempt. */
export async function cancelTask(db: Db, taskId: string, leaseId: string): Promise<void> {
  await sql`update webhook_tasks set state = 'cancelled', lease_id = null, lease_expires_at = null where id = ${taskId} and lease_id = ${leaseId}`.execute(
    db,
  );
}
