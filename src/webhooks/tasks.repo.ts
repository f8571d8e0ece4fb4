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

/** An attempt that ends its task for good: the schedule ran out, or the receiver answered 410. */
export type FinalOutcome = Extract<TaskOutcome, { state: 'failed' | 'gone' }>;

/**
 * Logs an attempt that ends its task and moves the subscription on, in one statement: `gone`
 * disables it, `failed` counts one more event in a row that failed its whole schedule. Only while
 * this worker still holds the lease: a worker that stalled past it (another took the task over)
 * changes nothing, so an event never counts twice. Answers why the subscription was disabled by
 * this attempt (410, or the fifth event in a row to fail its whole schedule: SPEC §8), with its
 * organization, or null.
 */
export async function recordFinalAttempt(
  db: Db,
  attempt: Attempt,
  outcome: FinalOutcome,
  failedEventsToDisable: number,
): Promise<{ reason: string; organizationId: string } | null> {
  const { task } = attempt;
  const number = task.attempts + 1;
  const subscription =
    outcome.state === 'gone'
      ? sql`disabled as (
          update webhooks set enabled = false, disabled_reason = 'gone', updated_at = now()
          where id = ${task.webhookId} and enabled and exists (select from moved) returning 'gone'::text as reason, organization_id)`
      : sql`disabled as (
          update webhooks set failed_events = failed_events + 1,
            enabled = enabled and failed_events + 1 < ${failedEventsToDisable},
            disabled_reason = case when enabled and failed_events + 1 >= ${failedEventsToDisable} then 'failing' else disabled_reason end,
            updated_at = now()
          where id = ${task.webhookId} and exists (select from moved)
          returning case when not enabled and disabled_reason = 'failing' and failed_events = ${failedEventsToDisable} then 'failing' end as reason,
            organization_id)`;
  const { rows } = await sql<{ reason: string | null; organization_id: string }>`
    with moved as (
      update webhook_tasks
      set attempts = ${number}, state = 'failed', lease_id = null, lease_expires_at = null
      where id = ${task.id} and lease_id = ${attempt.leaseId}
      returning id
    ), logged as (
      insert into webhook_deliveries (task_id, webhook_id, event_id, attempt, status_code, error, duration_ms, next_attempt_at)
      select ${task.id}, ${task.webhookId}, ${task.eventId}, ${number}, ${attempt.statusCode}::int, ${attempt.error}::text,
        ${attempt.durationMs}::int, null
      from moved
    ), ${subscription}
    select reason, organization_id from disabled`.execute(db);
  const row = rows[0];
  return row?.reason ? { reason: row.reason, organizationId: row.organization_id } : null;
}

/** An attempt whose outcome leaves the subscription as it is, unless to reset its run of failed events. */
export interface RoutineAttempt extends Attempt {
  outcome: Extract<TaskOutcome, { state: 'delivered' | 'pending' }>;
}

/**
 * Logs routine attempts and moves their tasks on, many in one statement (and one commit): the
 * delivery worker group-commits them; a success resets the subscription's run of failed events.
 * Only tasks whose lease the worker still holds are touched. At-least-once delivery allows it: an attempt whose record is lost is
 * made again under the same `webhook-id`. Subscriptions to reset are locked in id order, so two
 * nodes' batches cannot deadlock on them.
 */
export async function recordRoutineAttempts(db: Db, attempts: readonly RoutineAttempt[]): Promise<void> {
  const rows = attempts.map(({ task, leaseId, statusCode, error, durationMs, outcome }) => ({
    task_id: task.id,
    lease_id: leaseId,
    webhook_id: task.webhookId,
    event_id: task.eventId,
    attempt: task.attempts + 1,
    schedule_step: outcome.state === 'pending' ? outcome.scheduleStep : task.scheduleStep,
    state: outcome.state,
    next_attempt_at: outcome.state === 'pending' ? outcome.nextAttemptAt.toISOString() : null,
    status_code: statusCode,
    error,
    duration_ms: durationMs,
  }));
  await sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as i (
        task_id uuid, lease_id uuid, webhook_id uuid, event_id uuid, attempt int, schedule_step int, state text,
        next_attempt_at timestamptz, status_code int, error text, duration_ms int)
    ), moved as (
      update webhook_tasks t
      set attempts = i.attempt, schedule_step = i.schedule_step, state = i.state,
        next_attempt_at = coalesce(i.next_attempt_at, t.next_attempt_at), lease_id = null, lease_expires_at = null
      from input i
      where t.id = i.task_id and t.lease_id = i.lease_id
      returning t.id
    ), logged as (
      insert into webhook_deliveries (task_id, webhook_id, event_id, attempt, status_code, error, duration_ms, next_attempt_at)
      select i.task_id, i.webhook_id, i.event_id, i.attempt, i.status_code, i.error, i.duration_ms, i.next_attempt_at
      from input i join moved m on m.id = i.task_id
    ), to_reset as (
      select w.id from webhooks w
      where w.failed_events <> 0
        and w.id in (select i.webhook_id from input i join moved m on m.id = i.task_id where i.state = 'delivered')
      order by w.id
      for update of w
    )
    update webhooks w set failed_events = 0 from to_reset r where w.id = r.id`.execute(db);
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
