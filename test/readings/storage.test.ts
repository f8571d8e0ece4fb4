import fc from 'fast-check';
import { type CompiledQuery, type QueryExecutor, sql } from 'kysely';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { LatestReadingCache } from '../../src/readings/latest-cache.js';
import { listReadingPartitions, maintainReadingPartitions, monthStart, partitionName } from '../../src/readings/partitions.js';
import {
  type Aggregate,
  type Bucket,
  aggregateOf,
  bucketsPage,
  latestReading,
  latestReadings,
  readingsPage,
} from '../../src/readings/readings.repo.js';
import type { Db } from '../../src/storage/database.js';
import { backends, useDatabase } from '../support/databases.js';
import { type Point, type SeededOrg, addSensor, partitionOf, seedOrganization, store } from './fixtures.js';

/** Bins computed in the test: the reference the SQL downsampling is checked against. */
function expectedBuckets(
  points: Point[],
  intervalMs: number,
  from: number,
  to: number,
): Map<number, { n: number; sum: number; min: number; max: number }> {
  const bins = new Map<number, { n: number; sum: number; min: number; max: number }>();
  for (const p of points) {
    if (p.ts < from || p.ts >= to) continue;
    const start = Math.floor(p.ts / intervalMs) * intervalMs;
    const bin = bins.get(start) ?? { n: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
    bin.n += 1;
    bin.sum += p.value;
    bin.min = Math.min(bin.min, p.value);
    bin.max = Math.max(bin.max, p.value);
    bins.set(start, bin);
  }
  return bins;
}

async function allBuckets(
  db: Db,
  org: SeededOrg,
  sensorIds: string[],
  intervalMs: number,
  from: number | undefined,
  to: number | undefined,
  limit: number,
): Promise<Bucket[]> {
  const out: Bucket[] = [];
  let after: { sensorId: string; ts: number } | undefined;
  for (let guard = 0; guard < 10_000; guard += 1) {
    const { items: page, more } = await bucketsPage(db, {
      organizationId: org.organizationId,
      sensorIds,
      intervalMs,
      from,
      to,
      limit,
      after,
    });
    expect(page.length).toBeLessThanOrEqual(limit);
    if (after) expect(page.length).toBeGreaterThan(0);
    out.push(...page);
    if (!more) return out;
    // A page announcing more is full, and the next one is not empty.
    expect(page.length).toBe(limit);
    const last = page[page.length - 1]!;
    after = { sensorId: last.sensorId, ts: last.ts };
  }
  throw new Error('pagination did not end');
}

const HOUR = 3_600_000;
const T0 = Date.parse('2024-03-10T00:00:00Z');

/** Kysely's classes keep private fields, so a proxy must call their methods on the real object. */
function intercept<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get: (object, property) => {
      if (property in overrides) return overrides[property as keyof T];
      const value = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

/** The database, recording every statement executed through it. */
function recording(db: Db): { db: Db; statements: CompiledQuery[] } {
  const statements: CompiledQuery[] = [];
  const executor = db.getExecutor();
  const recorder = intercept(executor, {
    executeQuery: (query: CompiledQuery, ...rest: unknown[]) => {
      statements.push(query);
      return (executor.executeQuery as (...args: unknown[]) => unknown).call(executor, query, ...rest);
    },
  }) as QueryExecutor;
  return { db: intercept(db, { getExecutor: () => recorder }), statements };
}

describe.each(backends)('readings storage on $name', (backend) => {
  const database = useDatabase(backend);
  let org: SeededOrg;
  let foreign: SeededOrg;

  beforeAll(async () => {
    await maintainReadingPartitions(database.db);
    org = await seedOrganization(database.db, 'acme');
    foreign = await seedOrganization(database.db, 'globex');
  });

  it("a sensor's range is an index-only scan of the covering primary key, and tenancy still holds", async () => {
    const sensor = await addSensor(database.db, org, 'index-only');
    const start = Date.parse('2026-03-01T00:00:00Z');
    await store(
      database.db,
      org,
      Array.from({ length: 500 }, (_, i) => ({ sensorId: sensor, ts: start + i * 60_000, value: i })),
    );
    await sql`vacuum (analyze) readings`.execute(database.db);
    const { db, statements } = recording(database.db);
    const query = { sensorIds: [sensor], from: start, to: start + 3_600_000, limit: 100 };
    const page = await readingsPage(db, { organizationId: org.organizationId, ...query });
    expect(page.map((r) => r.value)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(statements).toHaveLength(1);
    const [statement] = statements;
    const { rows } = await database.db.transaction().execute(async (trx) => {
      await sql`set local enable_seqscan = off`.execute(trx); // a few hundred rows: the planner would rather not bother
      return trx.executeQuery<{ 'QUERY PLAN': string }>({ ...statement!, sql: `explain ${statement!.sql}` });
    });
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Index Only Scan using readings_p2026_03_pkey/);
    expect(await readingsPage(database.db, { organizationId: foreign.organizationId, ...query })).toEqual([]);
  });

  describe('partitions', () => {
    it('has monthly partitions around now and a default partition', async () => {
      const names = (await listReadingPartitions(database.db)).map((p) => p.name);
      const now = new Date();
      for (const offset of [-12, -1, 0, 1, 3]) expect(names).toContain(partitionName(monthStart(now, offset)));
      expect(names).toContain('readings_default');
      const again = await maintainReadingPartitions(database.db);
      expect(again).toEqual({ created: [], split: [] });
    });

    it('stores readings far in the past and the future (default partition) and finds them', async () => {
      const sensor = org.sensors.pressure!;
      const far = [Date.parse('1950-06-01T12:00:00Z'), Date.parse('2090-01-01T00:00:00Z')];
      expect(
        await store(
          database.db,
          org,
          far.map((ts) => ({ sensorId: sensor, ts, value: 1 })),
        ),
      ).toBe(2);
      expect(await partitionOf(database.db, sensor, '1950-06-01T12:00:00Z')).toBe('readings_default');
      expect(await partitionOf(database.db, sensor, '2090-01-01T00:00:00Z')).toBe('readings_default');
      const rows = await readingsPage(database.db, { organizationId: org.organizationId, sensorIds: [sensor], limit: 10 });
      expect(rows.map((r) => r.ts)).toEqual(far);
    });

    it('creates a month ahead of time, moving rows the default partition already held', async () => {
      const sensor = await addSensor(database.db, org, 'future');
      const now = new Date();
      const month = monthStart(now, 8); // beyond the 3 months created ahead
      const ts = new Date(month.getTime() + 5 * 86_400_000).toISOString();
      expect(await store(database.db, org, [{ sensorId: sensor, ts: Date.parse(ts), value: 42 }])).toBe(1);
      expect(await partitionOf(database.db, sensor, ts)).toBe('readings_default');

      // Months later, the job reaches that month: it gets its own partition, the row moves with it.
      const later = monthStart(now, 6);
      const result = await maintainReadingPartitions(database.db, later);
      expect(result.split).toContainEqual({ name: partitionName(month), rows: 1 });
      expect(await partitionOf(database.db, sensor, ts)).toBe(partitionName(month));
      // A reading of that month now goes straight to it.
      const next = new Date(month.getTime() + 6 * 86_400_000).toISOString();
      expect(await store(database.db, org, [{ sensorId: sensor, ts: Date.parse(next), value: 43 }])).toBe(1);
      expect(await partitionOf(database.db, sensor, next)).toBe(partitionName(month));
    });

    it('readers never miss rows while a month moves out of the default partition', async () => {
      const sensor = await addSensor(database.db, org, 'moving');
      const month = monthStart(new Date(), -40);
      const points = Array.from({ length: 300 }, (_, i) => ({ sensorId: sensor, ts: month.getTime() + i * 60_000, value: i }));
      await store(database.db, org, points);
      expect(await partitionOf(database.db, sensor, new Date(points[0]!.ts).toISOString())).toBe('readings_default');
      let moving = true;
      const counts: number[] = [];
      const reader = async () => {
        while (moving) {
          const rows = await readingsPage(database.db, { organizationId: org.organizationId, sensorIds: [sensor], limit: 1000 });
          counts.push(rows.length);
        }
      };
      const readers = [reader(), reader(), reader()];
      const result = await maintainReadingPartitions(database.db).finally(() => {
        moving = false;
      });
      await Promise.all(readers);
      expect(result.split).toContainEqual({ name: partitionName(month), rows: 300 });
      expect(counts.length).toBeGreaterThan(0);
      expect(counts.every((n) => n === 300)).toBe(true);
      expect(await partitionOf(database.db, sensor, new Date(points[0]!.ts).toISOString())).toBe(partitionName(month));
    });

    it.runIf(backend.name === 'postgres')('a reading written while its month is being attached lands in the new partition', async () => {
      const sensor = await addSensor(database.db, org, 'attaching');
      const month = monthStart(new Date(), -70); // a month no other test creates
      const ts = new Date(month.getTime() + 3600_000).toISOString();
      // Another session holds a lock the attach needs, so the job stays mid-way while we write.
      const blocker = new pg.Client({ connectionString: database.current.databaseUrl });
      await blocker.connect();
      try {
        await blocker.query('begin');
        await blocker.query('lock table readings in share update exclusive mode');
        const onlyThatMonth = { monthsBehind: 0, monthsAhead: 0, splitYearsBehind: 0, splitYearsAhead: 0, maxSplitsPerRun: 0 };
        const job = maintainReadingPartitions(database.db, month, onlyThatMonth);
        const waiting = async () =>
          Number((await blocker.query("select count(*) as n from pg_locks where not granted and locktype = 'relation'")).rows[0].n);
        await expect.poll(waiting, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
        let written = false;
        const write = store(database.db, org, [{ sensorId: sensor, ts: Date.parse(ts), value: 7 }]).finally(() => {
          written = true;
        });
        // Give the write time to either finish or queue behind the job.
        for (let i = 0; i < 25 && !written && (await waiting()) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
        await blocker.query('commit');
        expect(await write).toBe(1);
        expect((await job).created.concat((await job).split.map((s) => s.name))).toEqual([partitionName(month)]);
      } finally {
        await blocker.end();
      }
      expect(await partitionOf(database.db, sensor, ts)).toBe(partitionName(month));
    });

    it('splits months of the default partition within the split window', async () => {
      const sensor = await addSensor(database.db, org, 'backfill');
      const now = new Date();
      const old = monthStart(now, -30); // older than the 12 months kept ready, within 10 years
      const ts = new Date(old.getTime() + 3600_000).toISOString();
      await store(database.db, org, [{ sensorId: sensor, ts: Date.parse(ts), value: 1 }]);
      expect(await partitionOf(database.db, sensor, ts)).toBe('readings_default');
      const result = await maintainReadingPartitions(database.db, now);
      expect(result.split).toContainEqual({ name: partitionName(old), rows: 1 });
      expect(await partitionOf(database.db, sensor, ts)).toBe(partitionName(old));
      // 1950 and 2090 are outside the split window: they stay in the default partition.
      expect(await partitionOf(database.db, org.sensors.pressure!, '2090-01-01T00:00:00Z')).toBe('readings_default');
    });
  });

  describe('writing', () => {
    it('is idempotent on (sensor, ts) and keeps the latest reading and the hourly rollup in step', async () => {
      const sensor = await addSensor(database.db, org, 'idem');
      const points = Array.from({ length: 50 }, (_, i) => ({ sensorId: sensor, ts: T0 + i * 60_000, value: i }));
      expect(await store(database.db, org, points)).toBe(50);
      expect(await store(database.db, org, points)).toBe(0);
      // Overlapping resend: only the new half is stored; a changed value for a stored ts is ignored.
      const overlap = Array.from({ length: 50 }, (_, i) => ({ sensorId: sensor, ts: T0 + (25 + i) * 60_000, value: 1000 + i }));
      expect(await store(database.db, org, overlap)).toBe(25);
      // The same reading twice in one batch is stored once.
      expect(
        await store(database.db, org, [
          { sensorId: sensor, ts: T0 - 60_000, value: 7 },
          { sensorId: sensor, ts: T0 - 60_000, value: 8 },
        ]),
      ).toBe(1);

      const { rows } = await sql<{ n: number | string }>`select count(*) as n from readings where sensor_id = ${sensor}`.execute(
        database.db,
      );
      expect(Number(rows[0]!.n)).toBe(76);
      const latest = await latestReading(database.db, org.organizationId, sensor);
      expect(latest).toMatchObject({ sensorId: sensor, ts: T0 + 74 * 60_000, value: 1049, rawValue: 1049 });
      // An older reading arriving later does not replace the latest.
      await store(database.db, org, [{ sensorId: sensor, ts: T0 - 3600_000, value: -1 }]);
      expect((await latestReading(database.db, org.organizationId, sensor))?.ts).toBe(T0 + 74 * 60_000);

      const hourly = await sql<{ n: number | string; sum: number; min: number; max: number }>`
        select n, sum, min, max from readings_hourly where sensor_id = ${sensor} order by bucket`.execute(database.db);
      const raw = await sql<{ n: number | string; sum: number; min: number; max: number }>`
        select count(*) as n, sum(value) as sum, min(value) as min, max(value) as max from readings where sensor_id = ${sensor}
        group by date_bin('1 hour', ts, timestamptz 'epoch') order by date_bin('1 hour', ts, timestamptz 'epoch')`.execute(database.db);
      expect(hourly.rows.map((r) => ({ ...r, n: Number(r.n) }))).toEqual(raw.rows.map((r) => ({ ...r, n: Number(r.n) })));
    });

    it('latest: undefined for a foreign or unknown sensor, null before the first reading', async () => {
      const fresh = await addSensor(database.db, org, 'fresh');
      expect(await latestReading(database.db, org.organizationId, fresh)).toBeNull();
      expect(await latestReading(database.db, foreign.organizationId, fresh)).toBeUndefined();
      expect(await latestReading(database.db, org.organizationId, 'not-a-uuid')).toBeUndefined();
      await store(database.db, org, [{ sensorId: fresh, ts: T0, value: 3 }]);
      const listed = await latestReadings(database.db, org.organizationId, { sensorIds: [fresh, org.sensors.other!], limit: 10 });
      expect(listed.map((r) => [r.sensorId, r.value])).toEqual([[fresh, 3]]);
      expect(await latestReadings(database.db, foreign.organizationId, { sensorIds: [fresh], limit: 10 })).toEqual([]);
    });
  });

  describe('latest-reading cache', () => {
    it('serves within its TTL, sees invalidations at once, keeps tenancy', async () => {
      const sensor = await addSensor(database.db, org, 'cached');
      let now = 1_000_000;
      const cache = new LatestReadingCache(database.db, () => now, 1000);
      expect(await cache.get(org.organizationId, sensor)).toBeNull();
      await store(database.db, org, [{ sensorId: sensor, ts: T0, value: 1 }]);
      // Written behind the cache's back (another node): still the cached answer within the TTL…
      expect(await cache.get(org.organizationId, sensor)).toBeNull();
      now += 1001;
      // …and the fresh one after it.
      expect((await cache.get(org.organizationId, sensor))?.value).toBe(1);
      await store(database.db, org, [{ sensorId: sensor, ts: T0 + 1000, value: 2 }]);
      cache.invalidate([sensor]);
      expect((await cache.get(org.organizationId, sensor))?.value).toBe(2);
      // Cached for its organization only.
      expect(await cache.get(foreign.organizationId, sensor)).toBeUndefined();
      expect(await cache.get(org.organizationId, '00000000-0000-0000-0000-000000000000')).toBeUndefined();
    });
  });

  describe('range queries', () => {
    let a: string;
    let b: string;
    const points: Point[] = [];

    beforeAll(async () => {
      a = await addSensor(database.db, org, 'range-a');
      b = await addSensor(database.db, org, 'range-b');
      for (let i = 0; i < 250; i += 1) {
        points.push({ sensorId: a, ts: T0 + i * 60_000, value: i });
        if (i % 2 === 0) points.push({ sensorId: b, ts: T0 + i * 60_000 + 1, value: -i });
      }
      await store(database.db, org, points);
    });

    it('pages through one sensor in order, both directions, without gaps or repeats', async () => {
      for (const descending of [false, true]) {
        const seen: number[] = [];
        let after: { sensorId: string; ts: number } | undefined;
        let pages = 0;
        for (;;) {
          const rows = await readingsPage(database.db, {
            organizationId: org.organizationId,
            sensorIds: [a],
            from: T0 + 10 * 60_000,
            to: T0 + 200 * 60_000,
            limit: 40,
            after,
            descending,
          });
          const page = rows.slice(0, 40);
          seen.push(...page.map((r) => r.ts));
          pages += 1;
          if (rows.length <= 40) break;
          after = { sensorId: a, ts: page[page.length - 1]!.ts };
        }
        const expected = points.filter((p) => p.sensorId === a && p.ts >= T0 + 10 * 60_000 && p.ts < T0 + 200 * 60_000).map((p) => p.ts);
        expect(seen).toEqual(descending ? [...expected].reverse() : expected);
        expect(pages).toBe(5);
      }
    });

    it('pages through several sensors ordered by (sensor, ts)', async () => {
      const seen: string[] = [];
      let after: { sensorId: string; ts: number } | undefined;
      for (;;) {
        const rows = await readingsPage(database.db, { organizationId: org.organizationId, sensorIds: [b, a], limit: 70, after });
        const page = rows.slice(0, 70);
        seen.push(...page.map((r) => `${r.sensorId}/${r.ts}`));
        if (rows.length <= 70) break;
        const last = page[page.length - 1]!;
        after = { sensorId: last.sensorId, ts: last.ts };
      }
      const expected = [...points]
        .sort((x, y) => (x.sensorId < y.sensorId ? -1 : x.sensorId > y.sensorId ? 1 : x.ts - y.ts))
        .map((p) => `${p.sensorId}/${p.ts}`);
      expect(seen).toEqual(expected);
    });

    it('never returns another organization’s readings', async () => {
      expect(await readingsPage(database.db, { organizationId: foreign.organizationId, sensorIds: [a], limit: 10 })).toEqual([]);
      expect(
        await bucketsPage(database.db, { organizationId: foreign.organizationId, sensorIds: [a], intervalMs: HOUR, limit: 10 }),
      ).toEqual({ items: [], more: false });
    });
  });

  describe('downsampling', () => {
    let s: string;
    let t: string;
    const points: Point[] = [];
    const START = Date.parse('2024-05-30T00:00:00Z');

    beforeAll(async () => {
      s = await addSensor(database.db, org, 'ds-s');
      t = await addSensor(database.db, org, 'ds-t');
      // Three days across a month boundary (two partitions): a reading every 7 minutes with a
      // deterministic pseudo-random value, plus a sparse second sensor.
      let seed = 12345;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return (seed / 2 ** 31) * 100 - 50;
      };
      for (let ts = START; ts < START + 3 * 86_400_000; ts += 7 * 60_000)
        points.push({ sensorId: s, ts, value: Math.round(rand() * 1000) / 1000 });
      for (let ts = START + 13 * 60_000; ts < START + 3 * 86_400_000; ts += 5 * HOUR)
        points.push({ sensorId: t, ts, value: Math.round(rand() * 1000) / 1000 });
      for (let i = 0; i < points.length; i += 500) await store(database.db, org, points.slice(i, i + 500));
    });

    const check = (got: Bucket[], sensorId: string, intervalMs: number, from: number, to: number) => {
      const expected = expectedBuckets(
        points.filter((p) => p.sensorId === sensorId),
        intervalMs,
        from,
        to,
      );
      const mine = got.filter((b) => b.sensorId === sensorId);
      expect(mine.map((b) => b.ts)).toEqual([...expected.keys()].sort((x, y) => x - y));
      for (const bucket of mine) {
        const want = expected.get(bucket.ts)!;
        const wanted: Record<Aggregate, number> = { avg: want.sum / want.n, min: want.min, max: want.max, count: want.n };
        for (const aggregate of ['avg', 'min', 'max', 'count'] as const) {
          expect(aggregateOf(bucket, aggregate)).toBeCloseTo(wanted[aggregate], 9);
        }
      }
    };

    it.each([
      ['PT1H', HOUR],
      ['PT5M', 5 * 60_000],
      ['P1D', 86_400_000],
      ['PT90M', 90 * 60_000],
      ['PT3H', 3 * HOUR],
    ])('bins of %s match the values computed here (aligned and unaligned ranges)', async (_name, intervalMs) => {
      const ranges: [number, number][] = [
        [START, START + 3 * 86_400_000],
        [START + 17 * 60_000 + 123, START + 2 * 86_400_000 + 41 * 60_000],
        [START + 5 * HOUR + 10 * 60_000, START + 5 * HOUR + 50 * 60_000],
      ];
      for (const [from, to] of ranges) {
        const got = await allBuckets(database.db, org, [s, t], intervalMs, from, to, 25);
        check(got, s, intervalMs, from, to);
        check(got, t, intervalMs, from, to);
      }
    });

    it('bins without from/to cover every reading', async () => {
      const got = await allBuckets(database.db, org, [s], HOUR, undefined, undefined, 1000);
      check(got, s, HOUR, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    });

    it('property: any range and whole-second interval agrees with the reference', async () => {
      const span = 3 * 86_400_000;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: -HOUR, max: span }),
          fc.integer({ min: 1, max: span }),
          fc.oneof(fc.constantFrom(60, 300, 3600, 7200, 86_400), fc.integer({ min: 30, max: 2 * 86_400 })),
          fc.integer({ min: 1, max: 200 }),
          async (offset, length, seconds, limit) => {
            const from = START + offset;
            const to = from + length;
            const got = await allBuckets(database.db, org, [s, t], seconds * 1000, from, to, limit);
            check(got, s, seconds * 1000, from, to);
            check(got, t, seconds * 1000, from, to);
          },
        ),
        { numRuns: 25 },
      );
    });
  });
});
