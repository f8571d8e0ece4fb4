import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RangeLimits, type RangeState, evaluateDue, evaluateRange, outOfRange } from '../../src/alarms/evaluate.js';

/** The pure range rules (alarms/evaluate.ts), against a plain model, on random series. */

const closed: RangeState = { breachSince: null, breachValue: null, open: false };

describe('range evaluation', () => {
  it('a delay: triggers only at the first reading at least the delay after the excursion began', () => {
    const limits: RangeLimits = { min: 2, max: 8, delaySeconds: 60 };
    const at = (s: number, value: number) => ({ ts: s * 1000, value });
    const first = evaluateRange(limits, closed, [at(0, 9), at(30, 9.5)]);
    expect(first.actions).toEqual([]);
    expect(first.state).toEqual({ breachSince: 0, breachValue: 9, open: false });
    const second = evaluateRange(limits, first.state, [at(59, 10), at(60, 10.5), at(90, 11)]);
    expect(second.actions).toEqual([{ kind: 'trigger', at: 60_000, startedAt: 0, value: 10.5, condition: 'above_max', limit: 8 }]);
    const third = evaluateRange(limits, second.state, [at(120, 5)]);
    expect(third.actions).toEqual([{ kind: 'resolve', at: 120_000 }]);
    expect(third.state).toEqual(closed);
  });

  it('an excursion interrupted by a reading in range starts over', () => {
    const limits: RangeLimits = { min: null, max: 0, delaySeconds: 10 };
    const { actions } = evaluateRange(limits, closed, [
      { ts: 0, value: 1 },
      { ts: 5_000, value: 0 },
      { ts: 12_000, value: 1 },
      { ts: 20_000, value: 1 },
    ]);
    expect(actions).toEqual([]);
  });

  it('readings older than the excursion (a backlog arriving late) neither end it nor resolve its alarm', () => {
    const limits: RangeLimits = { min: null, max: 8, delaySeconds: 0 };
    const open = evaluateRange(limits, closed, [{ ts: 100_000, value: 9 }]);
    expect(open.actions).toHaveLength(1);
    const late = evaluateRange(limits, open.state, [{ ts: 50_000, value: 5 }]);
    expect(late).toEqual({ state: open.state, actions: [] });
    expect(evaluateRange(limits, open.state, [{ ts: 150_000, value: 5 }]).actions).toEqual([{ kind: 'resolve', at: 150_000 }]);
  });

  it('the limits themselves are in range', () => {
    expect(outOfRange({ min: 2, max: 8, delaySeconds: 0 }, 2)).toBeNull();
    expect(outOfRange({ min: 2, max: 8, delaySeconds: 0 }, 8)).toBeNull();
    expect(outOfRange({ min: 2, max: 8, delaySeconds: 0 }, 1.999)).toBe('below_min');
  });

  it('a due excursion triggers at the check, once', () => {
    const limits: RangeLimits = { min: null, max: 5, delaySeconds: 60 };
    const state: RangeState = { breachSince: 1_000, breachValue: 7, open: false };
    expect(evaluateDue(limits, state, 60_999).actions).toEqual([]);
    const due = evaluateDue(limits, state, 61_000);
    expect(due.actions).toEqual([{ kind: 'trigger', at: 61_000, startedAt: 1_000, value: 7, condition: 'above_max', limit: 5 }]);
    expect(evaluateDue(limits, due.state, 70_000).actions).toEqual([]);
  });

  it('matches the model on random series, whether given at once or in any split', () => {
    const reading = fc.record({ ts: fc.integer({ min: 0, max: 1_000 }).map((s) => s * 1000), value: fc.integer({ min: -5, max: 15 }) });
    fc.assert(
      fc.property(
        fc.uniqueArray(reading, { selector: (r) => r.ts, maxLength: 40 }),
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 1, max: 39 }),
        (readings, delaySeconds, split) => {
          const limits: RangeLimits = { min: 0, max: 10, delaySeconds };
          const sorted = [...readings].sort((a, b) => a.ts - b.ts);
          // The model: walk the series, alarms open and close as the rules say.
          const expected: string[] = [];
          let since: number | null = null;
          let open = false;
          for (const r of sorted) {
            const out = r.value < 0 || r.value > 10;
            if (!out) {
              since = null;
              if (open) expected.push(`resolve@${r.ts}`);
              open = false;
              continue;
            }
            since ??= r.ts;
            if (!open && r.ts - since >= delaySeconds * 1000) {
              expected.push(`trigger@${r.ts}`);
              open = true;
            }
          }
          const name = (a: { kind: string; at: number }) => `${a.kind}@${a.at}`;
          const whole = evaluateRange(limits, closed, readings);
          expect(whole.actions.map(name)).toEqual(expected);
          // Batches arriving in time order decide the same.
          const first = evaluateRange(limits, closed, sorted.slice(0, split));
          const rest = evaluateRange(limits, first.state, sorted.slice(split));
          expect([...first.actions, ...rest.actions].map(name)).toEqual(expected);
          // At most one open alarm: triggers and resolves alternate.
          for (const [i, a] of whole.actions.entries()) expect(a.kind).toBe(i % 2 === 0 ? 'trigger' : 'resolve');
        },
      ),
      { numRuns: 300 },
    );
  });
});
