import { type RawBuilder, sql } from 'kysely';
import { recordNotification } from '../alarms/alarms.repo.js';
import type { StoredEvent } from '../events/event-types.js';
import type { Db } from '../storage/database.js';
import type { NotificationReason } from './notifications.schema.js';

/**
 * Storage side of notifications: a task per recipient and event, written in the event's
 * transaction; repeats and escalations written by the periodic check, once per step (unique
 * keys: writing one again is a no-op); tasks claimed by one worker at a time under a lease.
 */

/** The events that tell people something. */
export const NOTIFIED_TYPES: ReadonlySet<string> = new Set(['alarm.triggered', 'sensor.offline', 'alarm.acknowledged', 'alarm.resolved']);

const rank = (severity: RawBuilder<unknown>) => sql`array_position(array['info', 'warning', 'critical'], ${severity})`;

/** Rule `r` covers alarm (or event) `a`: its threshold, or a sensor of its group; severe enough. */
const ruleMatches = sql`
  r.organization_id = a.organization_id and r.enabled
  and (r.threshold_id = a.threshold_id
    or (r.group_id is not null and exists (
      select 1 from group_sensors gs where gs.organization_id = r.organization_id and gs.group_id = r.group_id and gs.sensor_id = a.sensor_id)))
  and ${rank(sql`a.severity`)} >= ${rank(sql`r.min_severity`)}`;

/** The people on rule `r`'s first list (`escalation` false) or escalation list: users named, and members of the groups named. */
const listOf = (escalation: boolean) => sql`
  select nu.user_id from notification_rule_users nu where nu.rule_id = r.id and nu.escalation = ${escalation}
  union
  select gu.user_id from notification_rule_groups ng
  join group_users gu on gu.organization_id = ng.organization_id and gu.group_id = ng.group_id
  where ng.rule_id = r.id and ng.escalation = ${escalation}`;

/** Only active members of the organization are told. */
const activeMember = sql`
  join memberships m on m.organization_id = r.organization_id and m.user_id = rec.user_id and m.deactivated_at is null
  join users u on u.id = rec.user_id and u.deactivated_at is null`;

/**
 * Inside the producer's transaction: one task per recipient of every enabled rule covering each
 * alarm event. Acknowledgements and resolutions also reach the escalation list when the alarm was
 * escalated.
 */
export async function enqueueForEvents(tx: Db, events: readonly StoredEvent[]): Promise<void> {
  const keys = events
    .filter((e) => NOTIFIED_TYPES.has(e.type) && typeof e.data.id === 'string')
    .map((e) => ({
      id: e.id,
      organization_id: e.organizationId,
      type: e.type,
      alarm_id: e.data.id,
      sensor_id: e.data.sensor_id ?? null,
      threshold_id: e.data.threshold_id ?? null,
      severity: e.data.severity ?? 'info',
    }));
  if (keys.length === 0) return;
  await sql`
    insert into notification_tasks (organization_id, event_id, alarm_id, rule_id, user_id, reason, severity)
    select distinct on (a.id, rec.user_id) a.organization_id, a.id, a.alarm_id, r.id, rec.user_id, a.type, a.severity
    from jsonb_to_recordset(${JSON.stringify(keys)}::jsonb)
      as a (id uuid, organization_id uuid, type text, alarm_id uuid, sensor_id uuid, threshold_id uuid, severity text)
    join notification_rules r on ${ruleMatches}
    cross join lateral (
      ${listOf(false)}
      union
      select t.user_id from notification_tasks t
      where a.type in ('alarm.acknowledged', 'alarm.resolved') and t.alarm_id = a.alarm_id and t.rule_id = r.id and t.reason = 'escalation'
    ) rec
    ${activeMember}
    order by a.id, rec.user_id, r.created_at
    on conflict do nothing`.execute(tx);
}

/**
 * The periodic check: for every active (unacknowledged) alarm, the repeat now due under each rule
 * with a repeat interval (step n at n intervals after the alarm was raised; to the escalation
 * list too once the alarm escalated), and the escalation once its delay passed. A step already
 * written is not written again, whichever node or run gets there first. Answers how many tasks
 * were written.
 */
export async function enqueueRepeatsAndEscalations(db: Db): Promise<number> {
  const repeats = await sql`
    insert into notification_tasks (organization_id, alarm_id, rule_id, user_id, reason, step, severity)
    select distinct on (a.id, r.id, rec.user_id) a.organization_id, a.id, r.id, rec.user_id, 'repeat',
      floor(extract(epoch from now() - a.created_at) / r.repeat_every_seconds)::integer, a.severity
    from alarms a
    join notification_rules r on ${ruleMatches}
      and r.repeat_every_seconds is not null and a.created_at <= now() - r.repeat_every_seconds * interval '1 second'
    cross join lateral (
      ${listOf(false)}
      union
      select eu.user_id from (${listOf(true)}) eu
      where r.escalate_after_seconds is not null and a.created_at <= now() - r.escalate_after_seconds * interval '1 second'
    ) rec
    ${activeMember}
    where a.status = 'active'
    order by a.id, r.id, rec.user_id
    on conflict do nothing`.execute(db);
  const escalations = await sql`
    insert into notification_tasks (organization_id, alarm_id, rule_id, user_id, reason, step, severity)
    select distinct on (a.id, r.id, rec.user_id) a.organization_id, a.id, r.id, rec.user_id, 'escalation', 0, a.severity
    from alarms a
    join notification_rules r on ${ruleMatches}
      and r.escalate_after_seconds is not null and a.created_at <= now() - r.escalate_after_seconds * interval '1 second'
    cross join lateral (${listOf(true)}) rec
    ${activeMember}
    where a.status = 'active'
    order by a.id, r.id, rec.user_id
    on conflict do nothing`.execute(db);
  return Number(repeats.numAffectedRows ?? 0n) + Number(escalations.numAffectedRows ?? 0n);
}

export interface ClaimedNotification {
  id: string;
  organizationId: string;
  alarmId: string;
  userId: string;
  reason: NotificationReason;
  step: number;
  severity: string;
  attempts: number;
  permanentFailures: number;
  email: string;
  userName: string | null;
  /** Still an active member of the organization. */
  member: boolean;
  emailEnabled: boolean;
  /** Quiet hours held it before: it waited while the alarm could be handled. */
  wasHeld: boolean;
  quietHours: { start: string; end: string; timezone: string } | null;
  alarm: {
    status: string;
    kind: string;
    condition: string;
    value: number | null;
    limit: number | null;
    severity: string;
    startedAt: Date;
    triggeredAt: Date;
    acknowledgedAt: Date | null;
    resolvedAt: Date | null;
    sensorKey: string;
    sensorName: string | null;
    sensorKind: string;
    unit: string;
    deviceName: string;
    thresholdName: string | null;
  };
}

interface ClaimRow {
  id: string;
  organization_id: string;
  alarm_id: string;
  user_id: string;
  reason: NotificationReason;
  step: number;
  severity: string;
  attempts: number;
  permanent_failures: number;
  email: string;
  user_name: string | null;
  member: boolean;
  email_enabled: boolean;
  was_held: boolean;
  quiet_start: string | null;
  quiet_end: string | null;
  quiet_timezone: string | null;
  status: string;
  kind: string;
  condition: string;
  value: number | null;
  limit_value: number | null;
  alarm_severity: string;
  started_at: Date;
  triggered_at: Date;
  acknowledged_at: Date | null;
  resolved_at: Date | null;
  sensor_key: string;
  sensor_name: string | null;
  sensor_kind: string;
  unit: string;
  device_name: string;
  threshold_name: string | null;
}

/**
 * Takes up to `limit` due tasks for this worker until `leaseMs` from now (SKIP LOCKED: rows another
 * worker is claiming are skipped; leased rows wait until their lease runs out), with what the
 * email needs: the recipient, their preferences, the alarm as it is now, its sensor and device.
 */
export async function claimDueNotifications(db: Db, leaseId: string, leaseMs: number, limit: number): Promise<ClaimedNotification[]> {
  const { rows } = await sql<ClaimRow>`
    with due as (
      select id from notification_tasks
      where state = 'pending' and next_attempt_at <= now() and (lease_expires_at is null or lease_expires_at < now())
      order by next_attempt_at
      limit ${limit}
      for update skip locked
    ), claimed as (
      update notification_tasks t
      set lease_id = ${leaseId}, lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from due where t.id = due.id
      returning t.*
    )
    select c.id, c.organization_id, c.alarm_id, c.user_id, c.reason, c.step, c.severity, c.attempts, c.permanent_failures,
      u.email, u.name as user_name, (m.user_id is not null and m.deactivated_at is null and u.deactivated_at is null) as member,
      coalesce(p.email_enabled, true) as email_enabled, c.held_until is not null as was_held, p.quiet_start, p.quiet_end, p.quiet_timezone,
      a.status, a.kind, a.condition, a.value, a.limit_value, a.severity as alarm_severity, a.started_at, a.triggered_at,
      a.acknowledged_at, a.resolved_at,
      s.key as sensor_key, s.name as sensor_name, s.kind as sensor_kind, s.unit, d.name as device_name, th.name as threshold_name
    from claimed c
    join users u on u.id = c.user_id
    left join memberships m on m.organization_id = c.organization_id and m.user_id = c.user_id
    left join notification_preferences p on p.user_id = c.user_id
    join alarms a on a.id = c.alarm_id
    join sensors s on s.id = a.sensor_id
    join devices d on d.id = s.device_id
    left join alarm_thresholds th on th.id = a.threshold_id`.execute(db);
  return rows.map((r) => ({
    id: r.id,
    organizationId: r.organization_id,
    alarmId: r.alarm_id,
    userId: r.user_id,
    reason: r.reason,
    step: r.step,
    severity: r.severity,
    attempts: r.attempts,
    permanentFailures: r.permanent_failures,
    email: r.email,
    userName: r.user_name,
    member: r.member,
    emailEnabled: r.email_enabled,
    wasHeld: r.was_held,
    quietHours:
      r.quiet_start && r.quiet_end && r.quiet_timezone ? { start: r.quiet_start, end: r.quiet_end, timezone: r.quiet_timezone } : null,
    alarm: {
      status: r.status,
      kind: r.kind,
      condition: r.condition,
      value: r.value,
      limit: r.limit_value,
      severity: r.alarm_severity,
      startedAt: r.started_at,
      triggeredAt: r.triggered_at,
      acknowledgedAt: r.acknowledged_at,
      resolvedAt: r.resolved_at,
      sensorKey: r.sensor_key,
      sensorName: r.sensor_name,
      sensorKind: r.sensor_kind,
      unit: r.unit,
      deviceName: r.device_name,
      thresholdName: r.threshold_name,
    },
  }));
}

/** What became of a claimed task. */
export type NotificationOutcome =
  | { state: 'sent' }
  /** Not sent and never will be: email off for the person, no mail server, no longer a member. */
  | { state: 'skipped'; reason: string }
  /** A repeat or escalation, or an email quiet hours held, of an alarm acknowledged or resolved meanwhile. */
  | { state: 'cancelled'; reason: string }
  /** Quiet hours: tried again when they end (not an attempt). */
  | { state: 'held'; until: Date }
  | { state: 'retry'; at: Date; error: string; permanent: boolean }
  | { state: 'failed'; error: string; permanent: boolean };

/**
 * Moves the task on, if this worker still holds its lease. A sent notification is written to the
 * alarm's history (`notified`, or `escalated` for an escalation) in the same transaction.
 */
export async function recordOutcome(db: Db, task: ClaimedNotification, leaseId: string, outcome: NotificationOutcome): Promise<void> {
  const mine = (query: RawBuilder<unknown>) => sql`${query} where id = ${task.id} and lease_id = ${leaseId}`;
  switch (outcome.state) {
    case 'sent':
      await db.transaction().execute(async (tx) => {
        const { numAffectedRows } = await mine(
          sql`update notification_tasks set state = 'sent', sent_at = now(), attempts = attempts + 1, last_error = null,
            lease_id = null, lease_expires_at = null`,
        ).execute(tx);
        if (!numAffectedRows) return;
        await recordNotification(tx, {
          alarmId: task.alarmId,
          organizationId: task.organizationId,
          action: task.reason === 'escalation' ? 'escalated' : 'notified',
          email: task.email,
        });
      });
      return;
    case 'skipped':
    case 'cancelled':
      await mine(
        sql`update notification_tasks set state = ${outcome.state}, last_error = ${outcome.reason}, lease_id = null, lease_expires_at = null`,
      ).execute(db);
      return;
    case 'held':
      await mine(
        sql`update notification_tasks set next_attempt_at = ${outcome.until.toISOString()}, held_until = ${outcome.until.toISOString()}, lease_id = null, lease_expires_at = null`,
      ).execute(db);
      return;
    case 'retry':
    case 'failed':
      await mine(
        sql`update notification_tasks set attempts = attempts + 1, permanent_failures = permanent_failures + ${outcome.permanent ? 1 : 0},
          state = ${outcome.state === 'failed' ? 'failed' : 'pending'}, last_error = ${outcome.error.slice(0, 500)},
          next_attempt_at = ${outcome.state === 'retry' ? outcome.at.toISOString() : sql`next_attempt_at`},
          lease_id = null, lease_expires_at = null`,
      ).execute(db);
      return;
  }
}
