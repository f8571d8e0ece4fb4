import { flatResource } from '../api/documents.js';
import type { Principal } from '../auth/principal.js';
import type { EventDraft, EventType } from '../events/event-types.js';
import type { EventOutbox } from '../events/outbox.js';
import { conflict, notFound } from '../http/problem.js';
import type { Db } from '../storage/database.js';
import { AlarmResource } from './alarm-json.js';
import {
  type Actor,
  type ThresholdState,
  addActivity,
  changeAlarmStatus,
  findAlarm,
  insertAlarm,
  insertComment,
  readThresholdStates,
  saveThresholdState,
} from './alarms.repo.js';
import type { Alarm, AlarmComment } from './alarms.schema.js';
import { type RangeLimits, type SensorReading, evaluateDue, evaluateRange } from './evaluate.js';
import { type ActiveThreshold, silentSensors } from './thresholds.repo.js';

const SYSTEM: Actor = { userId: null, kind: 'system' };

/** Longest note on an acknowledgement or resolution, and longest comment (/v1/alarms and the console). */
export const ALARM_NOTE_MAX = 2000;
export const ALARM_COMMENT_MAX = 10_000;

export function actorOf(principal: Principal): Actor {
  return principal.userId ? { userId: principal.userId, kind: 'user' } : { userId: null, kind: 'client' };
}

const limitsOf = (t: ActiveThreshold): RangeLimits => ({ min: t.min, max: t.max, delaySeconds: t.delaySeconds });

/** Whether these readings would change the threshold's state (or raise or resolve an alarm). */
function wouldChange(threshold: ActiveThreshold, state: ThresholdState, readings: readonly SensorReading[]): boolean {
  if (readings.length === 0) return false;
  if (state.openOfflineAlarmId) return true;
  if (threshold.min === null && threshold.max === null) return false;
  const before = { breachSince: state.breachSince, breachValue: state.breachValue, open: state.openRangeAlarmId !== null };
  const outcome = evaluateRange(limitsOf(threshold), before, readings);
  return outcome.actions.length > 0 || outcome.state.breachSince !== before.breachSince || outcome.state.breachValue !== before.breachValue;
}

/**
 * Every change of an alarm goes through here, inside a transaction that also records its history
 * and emits its event through the outbox: an alarm, its history and its event exist together or
 * not at all. Evaluation first locks the thresholds' state rows; a user's resolve locks the same
 * row before the alarm, so both orders of arrival serialize without deadlock.
 */
export class AlarmService {
  constructor(
    private readonly db: Db,
    private readonly events: EventOutbox,
    private readonly publicUrl: string,
  ) {}

  /**
   * New readings of these thresholds' sensors (an ingest stage, in the batch's transaction).
   * Most batches change nothing (readings in range, no excursion, no open alarm): the states are
   * read without a lock, and only thresholds whose state the readings would change are locked,
   * re-read and evaluated again. A batch that changes nothing writes nothing, so it is equivalent
   * to one ordered before any concurrent batch, and concurrent batches of the same sensors do not
   * queue on the lock (they did: 67% of plain ingest in the bench, against 85% required).
   */
  async evaluateReadings(tx: Db, thresholds: readonly ActiveThreshold[], readings: ReadonlyMap<string, SensorReading[]>): Promise<void> {
    const snapshot = await readThresholdStates(
      tx,
      thresholds.map((t) => t.id),
      false,
    );
    const changing = thresholds.filter((t) => {
      const state = snapshot.get(t.id);
      const sensorReadings = readings.get(t.sensorId);
      return state !== undefined && sensorReadings !== undefined && wouldChange(t, state, sensorReadings);
    });
    if (changing.length === 0) return;
    const states = await readThresholdStates(
      tx,
      changing.map((t) => t.id),
      true,
    );
    const drafts: EventDraft[] = [];
    for (const threshold of changing) {
      const state = states.get(threshold.id);
      const sensorReadings = readings.get(threshold.sensorId);
      if (!state || !sensorReadings?.length) continue;
      const before = JSON.stringify(state);
      if (threshold.min !== null || threshold.max !== null) {
        const outcome = evaluateRange(
          limitsOf(threshold),
          { breachSince: state.breachSince, breachValue: state.breachValue, open: state.openRangeAlarmId !== null },
          sensorReadings,
        );
        state.breachSince = outcome.state.breachSince;
        state.breachValue = outcome.state.breachValue;
        for (const action of outcome.actions) {
          if (action.kind === 'trigger') {
            await this.trigger(tx, threshold, state, drafts, {
              kind: 'range',
              condition: action.condition,
              value: action.value,
              limit: action.limit,
              startedAt: action.startedAt,
              triggeredAt: action.at,
            });
          } else if (state.openRangeAlarmId) {
            await this.autoResolve(tx, threshold.organizationId, state.openRangeAlarmId, action.at, drafts);
            state.openRangeAlarmId = null;
          }
        }
      }
      // The sensor reports again: its offline alarm clears.
      if (state.openOfflineAlarmId) {
        let at = Number.NEGATIVE_INFINITY;
        for (const r of sensorReadings) if (r.ts > at) at = r.ts;
        await this.autoResolve(tx, threshold.organizationId, state.openOfflineAlarmId, Math.min(at, Date.now()), drafts);
        state.openOfflineAlarmId = null;
      }
      if (JSON.stringify(state) !== before) await saveThresholdState(tx, state);
    }
    await this.events.emit(tx, drafts);
  }

  /** An excursion that lasted its delay with no reading since: triggers now (the periodic check). */
  async triggerDueBreach(threshold: ActiveThreshold, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const state = (await readThresholdStates(tx, [threshold.id], true)).get(threshold.id);
      if (!state) return false;
      const outcome = evaluateDue(
        limitsOf(threshold),
        { breachSince: state.breachSince, breachValue: state.breachValue, open: state.openRangeAlarmId !== null },
        now,
      );
      const drafts: EventDraft[] = [];
      for (const action of outcome.actions) {
        if (action.kind !== 'trigger') continue;
        await this.trigger(tx, threshold, state, drafts, {
          kind: 'range',
          condition: action.condition,
          value: action.value,
          limit: action.limit,
          startedAt: action.startedAt,
          triggeredAt: action.at,
        });
      }
      if (drafts.length === 0) return false;
      await saveThresholdState(tx, state);
      await this.events.emit(tx, drafts);
      return true;
    });
  }

  /** The sensor silent for the threshold's offline period (the periodic check). */
  async raiseOffline(threshold: ActiveThreshold & { lastHeard: number }, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const state = (await readThresholdStates(tx, [threshold.id], true)).get(threshold.id);
      if (!state || state.openOfflineAlarmId) return false;
      // Heard from since the check listed it? Asked again under the lock.
      if ((await silentSensors(tx, 1, threshold.id)).length === 0) return false;
      const drafts: EventDraft[] = [];
      await this.trigger(tx, threshold, state, drafts, {
        kind: 'offline',
        condition: 'offline',
        value: null,
        limit: threshold.offlineAfterSeconds,
        startedAt: threshold.lastHeard,
        triggeredAt: now,
      });
      if (drafts.length === 0) return false;
      await saveThresholdState(tx, state);
      await this.events.emit(tx, drafts);
      return true;
    });
  }

  async acknowledge(organizationId: string, id: string, actor: Actor, note: string | null): Promise<Alarm> {
    return this.db.transaction().execute(async (tx) => {
      const alarm = await changeAlarmStatus(tx, organizationId, id, 'acknowledged', actor, new Date());
      if (!alarm) throw await this.cannotMove(tx, organizationId, id, 'acknowledged');
      await addActivity(tx, { alarmId: id, organizationId, action: 'acknowledged', actor, note });
      await this.events.emit(tx, [this.draft('alarm.acknowledged', alarm, alarm.acknowledged_at!.getTime())]);
      return alarm;
    });
  }

  async resolve(organizationId: string, id: string, actor: Actor, note: string | null): Promise<Alarm> {
    return this.db.transaction().execute(async (tx) => {
      const current = await findAlarm(tx, organizationId, id);
      if (!current) throw notFound('The alarm does not exist.');
      const state = current.threshold_id
        ? (await readThresholdStates(tx, [current.threshold_id], true)).get(current.threshold_id)
        : undefined;
      const alarm = await changeAlarmStatus(tx, organizationId, id, 'resolved', actor, new Date(), 'user');
      if (!alarm) throw await this.cannotMove(tx, organizationId, id, 'resolved');
      if (state && (state.openRangeAlarmId === id || state.openOfflineAlarmId === id)) {
        if (state.openRangeAlarmId === id) {
          state.openRangeAlarmId = null;
          // A range still exceeded raises a new alarm with the next reading out of range (after its delay).
          state.breachSince = null;
          state.breachValue = null;
        }
        if (state.openOfflineAlarmId === id) state.openOfflineAlarmId = null;
        await saveThresholdState(tx, state);
      }
      await addActivity(tx, { alarmId: id, organizationId, action: 'resolved', actor, note });
      await this.events.emit(tx, [this.draft('alarm.resolved', alarm, alarm.resolved_at!.getTime())]);
      return alarm;
    });
  }

  async comment(organizationId: string, id: string, actor: Actor, body: string): Promise<AlarmComment> {
    return this.db.transaction().execute(async (tx) => {
      const alarm = await findAlarm(tx, organizationId, id);
      if (!alarm) throw notFound('The alarm does not exist.');
      const comment = await insertComment(tx, organizationId, id, actor.userId, body);
      await addActivity(tx, { alarmId: id, organizationId, action: 'commented', actor, note: body.slice(0, 200) });
      return comment;
    });
  }

  private async trigger(
    tx: Db,
    threshold: ActiveThreshold,
    state: ThresholdState,
    drafts: EventDraft[],
    details: {
      kind: 'range' | 'offline';
      condition: string;
      value: number | null;
      limit: number | null;
      startedAt: number;
      triggeredAt: number;
    },
  ): Promise<void> {
    const alarm = await insertAlarm(tx, {
      organizationId: threshold.organizationId,
      thresholdId: threshold.id,
      sensorId: threshold.sensorId,
      severity: threshold.severity,
      ...details,
    });
    if (!alarm) return; // Already open (the unique index): nothing new to tell.
    if (details.kind === 'range') state.openRangeAlarmId = alarm.id;
    else state.openOfflineAlarmId = alarm.id;
    await addActivity(tx, { alarmId: alarm.id, organizationId: alarm.organization_id, action: 'triggered', actor: SYSTEM, note: null });
    drafts.push(this.draft(details.kind === 'offline' ? 'sensor.offline' : 'alarm.triggered', alarm, details.triggeredAt));
  }

  private async autoResolve(tx: Db, organizationId: string, alarmId: string, at: number, drafts: EventDraft[]): Promise<void> {
    const alarm = await changeAlarmStatus(tx, organizationId, alarmId, 'resolved', SYSTEM, new Date(at), 'auto');
    if (!alarm) return; // A user resolved it meanwhile.
    await addActivity(tx, { alarmId, organizationId, action: 'resolved', actor: SYSTEM, note: 'back to normal' });
    drafts.push(this.draft('alarm.resolved', alarm, at));
  }

  private draft(type: EventType, alarm: Alarm, occurredAt: number): EventDraft {
    return { organizationId: alarm.organization_id, type, occurredAt, data: flatResource(this.publicUrl, AlarmResource, alarm) };
  }

  private async cannotMove(tx: Db, organizationId: string, id: string, to: string): Promise<Error> {
    const alarm = await findAlarm(tx, organizationId, id);
    if (!alarm) return notFound('The alarm does not exist.');
    return conflict(`The alarm is ${alarm.status}; it cannot be ${to}.`);
  }
}
