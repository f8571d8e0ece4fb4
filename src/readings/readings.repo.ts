import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { isUuid } from '../storage/sql.js';

/**
 * Queries over stored readings. Every function is scoped by organization_id: rows of another
 * organization are never returned, whatever ids are passed.
 *
 * Times are epoch milliseconds (readings are stored at millisecond precision); SQL returns them
 * as int8 so no timestamp text is parsed per row.
 */

export interface Reading {
  sensorId: string;
  ts: number;
  value: number;
  rawValue: number;
}

export type Aggregate = 'avg' | 'min' | 'max' | 'count';
export const AGGREGATES: readonly Aggregate[] = ['avg', 'min', 'max', 'count'];

export interface Bucket {
  sensorId: string;
  /** Start of the bin (epoch ms), bins aligned on the Unix epoch in UTC. */
  ts: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

export interface TimeRange {
  /** Inclusive lower bound, epoch ms. */
  from?: number | undefined;
  /** Exclusive upper bound, epoch ms. */
  to?: number | undefined;
}

export interface ReadingsPageQuery extends TimeRange {
  organizationId: string;
  /** Sensors to read; several are returned ordered by (sensor_id, ts). */
  sensorIds: readonly string[];
  limit: number;
  /** Keyset of the last row of the previous page. */
  after?: { sensorId: string; ts: number } | undefined;
  descending?: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();
const tsArg = (ms: number) => sql`${iso(ms)}::timestamptz`;

interface ReadingRow {
  sensor_id: string;
  t: number | string;
  value: number;
  raw_value: number;
}

/**
 * Epoch milliseconds come out of SQL as `date_part('epoch', …) * 1000`, a double: far cheaper per
 * row than numeric `extract()`, and within half a millisecond of the exact value for every year
 * 0001-9999, so rounding gives the exact millisecond back.
 */
const ms = (value: number | string) => Math.round(Number(value));
const epochMs = (column: RawBuilder<unknown>) => sql`date_part('epoch', ${column}) * 1000`;

const toReading = (row: ReadingRow): Reading => ({ sensorId: row.sensor_id, ts: ms(row.t), value: row.value, rawValue: row.raw_value });

const READING_COLUMNS = sql`sensor_id, ${epochMs(sql.ref('ts'))} as t, value, raw_value`;

/**
 * Tenancy for scans of `readings` (and `readings_hourly`): the sensor ids are checked against the
 * organization once, through the sensors table (one primary-key probe per statement), rather than
 * on every reading row. That keeps every column a range scan needs inside the covering primary
 * key of `readings` (sensor_id, ts) INCLUDE (value, raw_value), so it is an index-only scan that
 * never visits the heap (migration 0006). A foreign or unknown sensor matches no row.
 */
const ownSensor = (organizationId: string, sensorId: string) =>
  sql`sensor_id = (select s.id from sensors s where s.id = ${sensorId} and s.organization_id = ${organizationId})`;
const ownSensors = (organizationId: string, sensorIds: readonly string[]) =>
  sql`sensor_id = any(array(select s.id from sensors s where s.id = any(${`{${sensorIds.join(',')}}`}::uuid[]) and s.organization_id = ${organizationId}))`;

function rangeConditions(range: TimeRange): RawBuilder<unknown>[] {
  const conditions: RawBuilder<unknown>[] = [];
  if (range.from !== undefined) conditions.push(sql`ts >= ${tsArg(range.from)}`);
  if (range.to !== undefined) conditions.push(sql`ts < ${tsArg(range.to)}`);
  return conditions;
}

/** Which of `sensorIds` are sensors of the organization (malformed ids are simply absent). */
export async function sensorsOfOrganization(db: Db, organizationId: string, sensorIds: readonly string[]): Promise<Set<string>> {
  const ids = [...new Set(sensorIds.filter((id) => isUuid(id)).map((id) => id.toLowerCase()))];
  if (ids.length === 0) return new Set();
  const { rows } = await sql<{
    id: string;
  }>`select id from sensors where organization_id = ${organizationId} and id = any(${ids}::uuid[])`.execute(db);
  return new Set(rows.map((r) => r.id));
}

/**
 * One page of raw readings, `limit + 1` rows (the extra row tells the caller there is more).
 * One sensor: a single ordered range scan of the primary key, partitions pruned by ts.
 * Several: sensor by sensor (a LATERAL scan per sensor, each ordered and limited).
 */
export async function readingsPage(db: Db, query: ReadingsPageQuery): Promise<Reading[]> {
  const { organizationId, limit, after } = query;
  const descending = query.descending === true;
  const sensorIds = [...new Set(query.sensorIds.map((id) => id.toLowerCase()))].sort();
  if (sensorIds.length === 0) return [];
  const order = descending ? sql`desc` : sql`asc`;
  const cmp = descending ? sql`<` : sql`>`;

  if (sensorIds.length === 1) {
    const conditions = [ownSensor(organizationId, sensorIds[0]!), ...rangeConditions(query)];
    if (after) conditions.push(sql`ts ${cmp} ${tsArg(after.ts)}`);
    // The sensor id is known: not selected, so not transferred and parsed 1,000 times.
    const sensorId = sensorIds[0]!;
    const { rows } = await sql<Omit<ReadingRow, 'sensor_id'>>`
      select ${epochMs(sql.ref('ts'))} as t, value, raw_value from readings
      where ${sql.join(conditions, sql` and `)}
      order by ts ${order} limit ${limit + 1}`.execute(db);
    return rows.map((row) => ({ sensorId, ts: ms(row.t), value: row.value, rawValue: row.raw_value }));
  }

  // Sensors before the cursor's sensor are done; the cursor's own sensor resumes after its ts.
  const remaining = after ? sensorIds.filter((id) => id >= after.sensorId) : sensorIds;
  if (remaining.length === 0) return [];
  const conditions = [sql`r.sensor_id = s.id`, ...rangeConditions(query)];
  if (after) conditions.push(sql`(s.id <> ${after.sensorId}::uuid or r.ts ${cmp} ${tsArg(after.ts)})`);
  const { rows } = await sql<ReadingRow>`
    select x.* from sensors s
    cross join lateral (
      select ${READING_COLUMNS} from readings r
      where ${sql.join(conditions, sql` and `)}
      order by r.ts ${order} limit ${limit + 1}
    ) x
    where s.id = any(${remaining}::uuid[]) and s.organization_id = ${organizationId}
    order by x.sensor_id, x.t ${order}
    limit ${limit + 1}`.execute(db);
  return rows.map(toReading);
}

// ---------------------------------------------------------------------------------------------
// Latest readings

export interface LatestRow extends Reading {
  receivedAt: number;
  seenAt: number;
}

interface LatestSqlRow extends ReadingRow {
  id: string;
  r: number | string;
  s: number | string | null;
}

const LATEST_COLUMNS = sql`l.sensor_id, ${epochMs(sql.ref('l.ts'))} as t, l.value, l.raw_value,
  ${epochMs(sql.ref('l.received_at'))} as r, ${epochMs(sql.ref('l.seen_at'))} as s`;

const toLatest = (row: LatestSqlRow): LatestRow | null =>
  row.t === null || row.sensor_id === null ? null : { ...toReading(row), receivedAt: ms(row.r), seenAt: ms(row.s!) };

/**
 * The latest reading of one sensor: `undefined` when the sensor is not the organization's,
 * `null` when it has no reading yet. One primary-key lookup on each of sensors and sensor_latest.
 */
export async function latestReading(db: Db, organizationId: string, sensorId: string): Promise<LatestRow | null | undefined> {
  if (!isUuid(sensorId)) return undefined;
  const { rows } = await sql<LatestSqlRow>`
    select s.id, ${LATEST_COLUMNS} from sensors s left join sensor_latest l on l.sensor_id = s.id
    where s.id = ${sensorId} and s.organization_id = ${organizationId}`.execute(db);
  const row = rows[0];
  return row === undefined ? undefined : toLatest(row);
}

/**
 * Latest readings of the organization's sensors (all of them, or those listed) that have one,
 * ordered by sensor id, `limit + 1` rows from after `afterSensorId`.
 */
export async function latestReadings(
  db: Db,
  organizationId: string,
  options: { sensorIds?: readonly string[] | undefined; limit: number; afterSensorId?: string | undefined },
): Promise<LatestRow[]> {
  const conditions = [sql`l.organization_id = ${organizationId}`];
  if (options.sensorIds) conditions.push(sql`l.sensor_id = any(${[...options.sensorIds]}::uuid[])`);
  if (options.afterSensorId) conditions.push(sql`l.sensor_id > ${options.afterSensorId}::uuid`);
  const { rows } = await sql<LatestSqlRow>`
    select l.sensor_id as id, ${LATEST_COLUMNS}
    from sensor_latest l
    where ${sql.join(conditions, sql` and `)}
    order by l.sensor_id limit ${options.limit + 1}`.execute(db);
  return rows.map(toLatest).filter((r): r is LatestRow => r !== null);
}

// ---------------------------------------------------------------------------------------------
// Downsampling

export interface BucketsQuery extends TimeRange {
  organizationId: string;
  sensorIds: readonly string[];
  /** Bin width in milliseconds (whole seconds at least). */
  intervalMs: number;
  limit: number;
  /** Keyset of the last bucket of the previous page. */
  after?: { sensorId: string; ts: number } | undefined;
}

const HOUR_MS = 3_600_000;

export const binFloor = (t: number, width: number) => Math.floor(t / width) * width;
const ceilTo = (t: number, width: number) => Math.ceil(t / width) * width;

interface BucketSqlRow {
  t: number | string;
  n: number | string;
  s: number;
  mn: number;
  mx: number;
}

/** The first ts (epoch ms) of a sensor within a range, or undefined: one index probe per partition at most. */
async function firstReading(db: Db, organizationId: string, sensorId: string, range: TimeRange): Promise<number | undefined> {
  const conditions = [ownSensor(organizationId, sensorId), ...rangeConditions(range)];
  const { rows } = await sql<{ t: number | string }>`
    select ${epochMs(sql.ref('ts'))} as t from readings where ${sql.join(conditions, sql` and `)} order by ts asc limit 1`.execute(db);
  return rows[0] === undefined ? undefined : ms(rows[0].t);
}

/** Whether any of the sensors has a reading within the range. */
async function anyReading(db: Db, organizationId: string, sensorIds: readonly string[], range: TimeRange): Promise<boolean> {
  if (sensorIds.length === 0) return false;
  const conditions = [ownSensors(organizationId, sensorIds), ...rangeConditions(range)];
  const { rows } = await sql<{
    found: boolean;
  }>`select exists (select 1 from readings where ${sql.join(conditions, sql` and `)}) as found`.execute(db);
  return rows[0]?.found === true;
}

/**
 * Bins of one sensor over [from, to) (bounds in ms; `from` need not be aligned), at most `limit`,
 * ascending. When the bin width is a whole number of hours, the whole hours inside the window are
 * read from `readings_hourly` and only the partial hours at its edges from `readings`. Grouping
 * is on the bin's timestamptz (an integer compare); only the output rows are converted.
 */
async function bucketsWindow(
  db: Db,
  organizationId: string,
  sensorId: string,
  intervalMs: number,
  from: number,
  to: number,
  limit: number,
): Promise<Bucket[]> {
  const stride = sql`make_interval(secs => ${intervalMs / 1000})`;
  const bin = (column: RawBuilder<unknown>) => sql`date_bin(${stride}, ${column}, timestamptz 'epoch')`;
  const hFrom = ceilTo(from, HOUR_MS);
  const hTo = binFloor(to, HOUR_MS);
  let rows: BucketSqlRow[];
  const own = ownSensor(organizationId, sensorId);
  if (intervalMs === HOUR_MS && hFrom < hTo) {
    // Hourly bins are the rollup rows themselves: an ordered index-only scan, merged with the
    // (at most two) partial hours at the edges aggregated from the readings.
    const edges: RawBuilder<unknown>[] = [];
    for (const [lo, hi] of [
      [from, hFrom],
      [hTo, to],
    ] as const) {
      if (lo < hi) {
        edges.push(sql`union all select ${bin(sql.ref('ts'))}, count(*), sum(value), min(value), max(value) from readings
          where ${own} and ts >= ${tsArg(lo)} and ts < ${tsArg(hi)} group by 1`);
      }
    }
    ({ rows } = await sql<BucketSqlRow>`
      select ${epochMs(sql.ref('x.b'))} as t, x.n, x.s, x.mn, x.mx
      from (
        select bucket as b, n, sum as s, min as mn, max as mx from readings_hourly
        where ${own} and bucket >= ${tsArg(hFrom)} and bucket < ${tsArg(hTo)}
        ${sql.join(edges, sql` `)}
      ) x
      order by x.b limit ${limit}`.execute(db));
  } else if (intervalMs % HOUR_MS === 0 && hFrom < hTo) {
    const edges: RawBuilder<unknown>[] = [];
    if (from < hFrom) edges.push(sql`(ts >= ${tsArg(from)} and ts < ${tsArg(hFrom)})`);
    if (hTo < to) edges.push(sql`(ts >= ${tsArg(hTo)} and ts < ${tsArg(to)})`);
    const raw = edges.length
      ? sql`union all select ${bin(sql.ref('ts'))}, 1, value, value, value from readings
            where ${own} and (${sql.join(edges, sql` or `)})`
      : sql``;
    ({ rows } = await sql<BucketSqlRow>`
      select ${epochMs(sql.ref('x.b'))} as t, sum(x.n)::int8 as n, sum(x.s) as s, min(x.mn) as mn, max(x.mx) as mx
      from (
        select ${bin(sql.ref('bucket'))} as b, n, sum as s, min as mn, max as mx from readings_hourly
        where ${own} and bucket >= ${tsArg(hFrom)} and bucket < ${tsArg(hTo)}
        ${raw}
      ) x
      group by x.b order by x.b limit ${limit}`.execute(db));
  } else {
    ({ rows } = await sql<BucketSqlRow>`
      select ${epochMs(sql.ref('x.b'))} as t, count(*)::int8 as n, sum(x.value) as s, min(x.value) as mn, max(x.value) as mx
      from (
        select ${bin(sql.ref('ts'))} as b, value from readings
        where ${own} and ts >= ${tsArg(from)} and ts < ${tsArg(to)}
      ) x
      group by x.b order by x.b limit ${limit}`.execute(db));
  }
  return rows.map((r) => ({ sensorId, ts: ms(r.t), count: Number(r.n), sum: r.s, min: r.mn, max: r.mx }));
}

export interface BucketsPage {
  items: Bucket[];
  /** Whether bins remain after the last one returned. */
  more: boolean;
}

/**
 * One page of bins (at most `limit`), ascending by (sensor_id, bin). Each sensor is read in
 * windows of as many bins as the page still needs, so the cost of a page is bounded by the data
 * of the bins it returns, not by the whole range; an empty window jumps to the sensor's next
 * reading (one index probe). A full page asks one more probe whether anything follows it.
 */
export async function bucketsPage(db: Db, query: BucketsQuery): Promise<BucketsPage> {
  const { organizationId, intervalMs, after, limit } = query;
  const sensorIds = [...new Set(query.sensorIds.map((id) => id.toLowerCase()))].sort();
  const items: Bucket[] = [];
  for (let k = 0; k < sensorIds.length; k += 1) {
    const sensorId = sensorIds[k]!;
    if (after && sensorId < after.sensorId) continue;
    let from = query.from;
    if (after && sensorId === after.sensorId) from = Math.max(from ?? Number.NEGATIVE_INFINITY, after.ts + intervalMs);
    const to = query.to;
    if (from !== undefined && to !== undefined && from >= to) continue;
    let cursor: number;
    if (from === undefined) {
      const first = await firstReading(db, organizationId, sensorId, { to });
      if (first === undefined) continue;
      cursor = binFloor(first, intervalMs);
    } else {
      cursor = from;
    }
    for (;;) {
      if (to !== undefined && cursor >= to) break;
      // One bin more than the page still needs: when it comes back, the page is full and known to
      // be followed by more, without another query (the common case over dense data).
      const need = limit - items.length;
      const windowEnd = Math.min(to ?? Number.POSITIVE_INFINITY, binFloor(cursor, intervalMs) + (need + 1) * intervalMs);
      const got = await bucketsWindow(db, organizationId, sensorId, intervalMs, cursor, windowEnd, need + 1);
      if (got.length > need) {
        items.push(...got.slice(0, need));
        return { items, more: true };
      }
      items.push(...got);
      if (items.length >= limit) {
        // Exactly full: one probe says whether anything follows (this sensor, then the others).
        const next = items[items.length - 1]!.ts + intervalMs;
        const more =
          (await anyReading(db, organizationId, [sensorId], { from: Math.max(cursor, next), to })) ||
          (await anyReading(db, organizationId, sensorIds.slice(k + 1), { from: query.from, to: query.to }));
        return { items, more };
      }
      if (got.length === 0) {
        // Nothing in this window: jump to the sensor's next reading, if any.
        const following = await firstReading(db, organizationId, sensorId, { from: windowEnd, to });
        if (following === undefined) break;
        cursor = binFloor(following, intervalMs);
      } else {
        cursor = windowEnd;
      }
    }
  }
  return { items, more: false };
}

export function aggregateOf(bucket: Bucket, aggregate: Aggregate): number {
  switch (aggregate) {
    case 'avg':
      return bucket.sum / bucket.count;
    case 'min':
      return bucket.min;
    case 'max':
      return bucket.max;
    case 'count':
      return bucket.count;
  }
}
