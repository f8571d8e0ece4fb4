/**
 * Range evaluation, pure: a threshold's state and a sensor's new readings in, the new state and
 * what must happen out. The rules:
 * - a reading is out of range when below `min` or above `max` (the limits themselves are in);
 * - an excursion begins at its first reading out of range; the alarm triggers at the first
 *   reading (or, with no new reading, the first check: `dueAt`) at least `delaySeconds` after it;
 * - a reading back in range ends the excursion and resolves the open alarm (auto); a reading
 *   older than the excursion's start (a backlog arriving late) changes nothing;
 * - one open range alarm per threshold at a time.
 */

export interface RangeLimits {
  min: number | null;
  max: number | null;
  delaySeconds: number;
}

export interface RangeState {
  /** Epoch ms of the excursion's first reading; null when in range. */
  breachSince: number | null;
  breachValue: number | null;
  /** An open range alarm exists. */
  open: boolean;
}

export interface SensorReading {
  ts: number;
  value: number;
}

export type RangeAction =
  | { kind: 'trigger'; at: number; startedAt: number; value: number; condition: 'above_max' | 'below_min'; limit: number }
  | { kind: 'resolve'; at: number };

export interface RangeOutcome {
  state: RangeState;
  actions: RangeAction[];
}

export function outOfRange(limits: RangeLimits, value: number): 'above_max' | 'below_min' | null {
  if (limits.max !== null && value > limits.max) return 'above_max';
  if (limits.min !== null && value < limits.min) return 'below_min';
  return null;
}

/** `readings` in any order; they are taken oldest first. */
export function evaluateRange(limits: RangeLimits, state: RangeState, readings: readonly SensorReading[]): RangeOutcome {
  const sorted = [...readings].sort((a, b) => a.ts - b.ts);
  let { breachSince, breachValue, open } = state;
  const actions: RangeAction[] = [];
  const delayMs = limits.delaySeconds * 1000;
  for (const reading of sorted) {
    // Older than the excursion under way (a gateway's backlog, a backfill): it neither ends the
    // excursion nor resolves its alarm.
    if (breachSince !== null && reading.ts < breachSince) continue;
    const condition = outOfRange(limits, reading.value);
    if (condition) {
      if (breachSince === null) {
        breachSince = reading.ts;
        breachValue = reading.value;
      }
      if (!open && reading.ts - breachSince >= delayMs) {
        actions.push(triggerAction(limits, reading.ts, breachSince, reading.value, condition));
        open = true;
      }
    } else {
      breachSince = null;
      breachValue = null;
      if (open) {
        actions.push({ kind: 'resolve', at: reading.ts });
        open = false;
      }
    }
  }
  return { state: { breachSince, breachValue, open }, actions };
}

/**
 * An excursion whose delay has run out with no reading since (the sensor kept quiet, out of
 * range): it triggers at `now`, with the reading that began it.
 */
export function evaluateDue(limits: RangeLimits, state: RangeState, now: number): RangeOutcome {
  if (state.open || state.breachSince === null || state.breachValue === null) return { state, actions: [] };
  if (now - state.breachSince < limits.delaySeconds * 1000) return { state, actions: [] };
  const condition = outOfRange(limits, state.breachValue);
  if (!condition) return { state, actions: [] };
  return {
    state: { ...state, open: true },
    actions: [triggerAction(limits, now, state.breachSince, state.breachValue, condition)],
  };
}

function triggerAction(
  limits: RangeLimits,
  at: number,
  startedAt: number,
  value: number,
  condition: 'above_max' | 'below_min',
): RangeAction {
  return { kind: 'trigger', at, startedAt, value, condition, limit: (condition === 'above_max' ? limits.max : limits.min)! };
}
