import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reportedValue } from '../../src/inventory/scaling.js';
import { parseNdjsonBatch, parseJsonBatch } from '../../src/ingest/ingest.parse.js';
import { formatTime, parseDuration, parseRfc3339 } from '../../src/readings/time.js';

// The scaling math is the inventory's (src/inventory/scaling.ts); these pin what ingest relies on.
describe('scaling as applied at ingest', () => {
  it('linear: raw * scale + offset, then the calibration offset', () => {
    expect(reportedValue({ kind: 'linear', scale: 0.5, offset: -10 }, 0, 100)).toBe(40);
    expect(reportedValue({ kind: 'linear', scale: 0.5, offset: -10 }, 1.5, 100)).toBe(41.5);
    expect(reportedValue(null, -2, 7)).toBe(5);
  });

  it('piecewise-linear: interpolates, passes through its points, extrapolates along the end segments', () => {
    const f = (raw: number) =>
      reportedValue(
        {
          kind: 'piecewise_linear',
          points: [
            { raw: 4, value: 0 },
            { raw: 12, value: 40 },
            { raw: 20, value: 100 },
          ],
        },
        0,
        raw,
      );
    expect(f(4)).toBe(0);
    expect(f(8)).toBe(20);
    expect(f(12)).toBe(40);
    expect(f(16)).toBe(70);
    expect(f(20)).toBe(100);
    expect(f(0)).toBe(-20); // below the first point: slope of 4→12 (5/unit)
    expect(f(24)).toBe(130); // beyond the last: slope of 12→20 (7.5/unit)
  });

  it('property: continuous and between its neighbours inside the range', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 2, maxLength: 8 }),
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 8, maxLength: 8 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (raws, values, t) => {
          const points = raws.sort((a, b) => a - b).map((raw, i) => ({ raw, value: values[i]! }));
          const f = (raw: number) => reportedValue({ kind: 'piecewise_linear', points }, 0, raw);
          for (const p of points) expect(f(p.raw)).toBeCloseTo(p.value, 9);
          for (let i = 0; i + 1 < points.length; i += 1) {
            const a = points[i]!;
            const b = points[i + 1]!;
            const y = f(a.raw + t * (b.raw - a.raw));
            expect(y).toBeGreaterThanOrEqual(Math.min(a.value, b.value) - 1e-9);
            expect(y).toBeLessThanOrEqual(Math.max(a.value, b.value) + 1e-9);
          }
        },
      ),
    );
  });
});

describe('time values', () => {
  it('parses RFC 3339 date-times, refusing the rest', () => {
    expect(parseRfc3339('2024-05-01T12:00:00Z')).toBe(Date.UTC(2024, 4, 1, 12));
    expect(parseRfc3339('2024-05-01t12:00:00.5+02:00')).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 500));
    expect(parseRfc3339('2024-05-01 12:00:00.123456Z')).toBe(Date.UTC(2024, 4, 1, 12, 0, 0, 123));
    for (const bad of [
      '2024-05-01',
      '2024-05-01T12:00:00',
      '2024-02-30T00:00:00Z',
      '2024-13-01T00:00:00Z',
      'yesterday',
      '1714564800',
      '2024-05-01T25:00:00Z',
    ]) {
      expect(parseRfc3339(bad), bad).toBeUndefined();
    }
  });

  it('formats instants exactly as Date#toISOString, and parses them back', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62135596800000, max: 253402300799999 }), (ms) => {
        expect(formatTime(ms)).toBe(new Date(ms).toISOString());
        expect(parseRfc3339(formatTime(ms))).toBe(ms);
      }),
      { numRuns: 2000 },
    );
  });

  it('parses ISO 8601 durations within bounds', () => {
    expect(parseDuration('PT1H')).toEqual({ ok: true, seconds: 3600 });
    expect(parseDuration('PT5M')).toEqual({ ok: true, seconds: 300 });
    expect(parseDuration('P1D')).toEqual({ ok: true, seconds: 86_400 });
    expect(parseDuration('P1DT12H')).toEqual({ ok: true, seconds: 129_600 });
    expect(parseDuration('P2W')).toEqual({ ok: true, seconds: 1_209_600 });
    expect(parseDuration('PT1.5S')).toEqual({ ok: true, seconds: 1.5 });
    expect(parseDuration('pt90m')).toEqual({ ok: true, seconds: 5400 });
    for (const bad of ['P1M', 'P1Y', 'PT', 'P', '1h', 'PT0S', 'PT0.5S', 'P367D', 'PT-1H', 'P1H']) {
      expect(parseDuration(bad).ok, bad).toBe(false);
    }
    expect(parseDuration('P1M')).toMatchObject({ problem: expect.stringContaining('months') });
  });
});

describe('batch parsing', () => {
  it('names every bad line, with its index or line number', () => {
    const json = parseJsonBatch(
      {
        readings: [
          { sensor: 'a', ts: '2024-01-01T00:00:00Z', value: 1 },
          { sensor: 'a', ts: 'x', value: null },
        ],
      },
      'key',
      10,
    );
    expect('shapeError' in json).toBe(false);
    if ('shapeError' in json) return;
    expect(json.errors.map((e) => e.pointer)).toEqual(['/body/readings/1/ts', '/body/readings/1/value']);
    const nd = parseNdjsonBatch('\n{"sensor":"a","ts":"2024-01-01T00:00:00Z","value":1}\n\n[1]\n', 'key', 10);
    expect(nd.errors).toEqual([expect.objectContaining({ line: 4, pointer: '/body/line/4' })]);
    expect(nd.count).toBe(1);
    expect(nd.received).toBe(2);
    expect([nd.sensor[0], nd.byId[0], nd.ts[0], nd.raw[0], nd.position[0]]).toEqual(['a', 0, Date.UTC(2024, 0, 1), 1, 2]);
  });

  it('counts readings against the limit before checking them', () => {
    expect(parseNdjsonBatch('{}\n{}\n{}', 'id', 2).tooMany).toBe(true);
    const json = parseJsonBatch([{}, {}, {}], 'id', 2);
    expect('tooMany' in json && json.tooMany).toBe(true);
  });

  it('bounds ingest timestamps to years 1700-2249', () => {
    const json = parseJsonBatch(
      [
        { sensor: 'a', ts: '1699-12-31T23:59:59Z', value: 1 },
        { sensor: 'a', ts: '2250-01-01T00:00:00Z', value: 1 },
        { sensor: 'a', ts: '2249-12-31T23:59:59.999Z', value: 1 },
      ],
      'key',
      10,
    );
    if ('shapeError' in json) throw new Error('shape');
    expect(json.errors.map((e) => e.index)).toEqual([0, 1]);
    expect(json.count).toBe(1);
  });

  it('API keys name sensors by id only', () => {
    const json = parseJsonBatch([{ sensor: 'temp', ts: '2024-01-01T00:00:00Z', value: 1 }], 'id', 10);
    if ('shapeError' in json) throw new Error('shape');
    expect(json.errors[0]?.detail).toContain('UUID');
  });
});
