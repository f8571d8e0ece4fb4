import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { preparedStatement } from '../storage/prepared.js';

/**
 * Storage side of ingest: writing a batch in one statement. (The sensors a batch names, with their
 * scaling profile and active calibration, come from the inventory's `ingestTargets`, one query per
 * batch, so a change to either applies from the next batch on, on every node.)
 */

export interface BatchColumns {
  /** Readings in the batch. */
  count: number;
  /** The distinct sensors of the batch. */
  sensors: readonly string[];
  /** Per reading: 1-based index into `sensors`. */
  sensorIndex: Int32Array;
  /** Per reading: epoch milliseconds (integers, years 1700-2249). */
  ts: Float64Array;
  /** Per reading: reported and raw values (finite); `values` null when every one equals its raw value. */
  values: Float64Array | null;
  rawValues: Float64Array;
}

/** A reading the batch stored (a resent one, already stored, is not among them). */
export interface WrittenReading {
  sensorId: string;
  /** Epoch milliseconds. */
  ts: number;
  value: number;
  rawValue: number;
}

export interface BatchOutcome {
  accepted: number;
  /** The stored readings, when asked for (ingest stages need them; returning them costs). */
  rows?: WrittenReading[];
}

/**
 * A PostgreSQL array literal of numbers, built directly (not by the driver's generic array
 * serializer, which escapes every element): these are finite numbers, whose shortest JavaScript
 * form PostgreSQL reads back exactly. `minus` is subtracted from each (small numbers print fast).
 */
function numberArray(values: Float64Array | Int32Array, count: number, minus = 0): string {
  let out = '{';
  for (let i = 0; i < count; i += 1) {
    if (i > 0) out += ',';
    out += values[i]! - minus;
  }
  return `${out}}`;
}

/**
 * The statement of `writeBatch`, prepared once per connection: its text is the same for every
 * batch (whole arrays as parameters, the devices' update always present, empty when none is due),
 * so PostgreSQL neither parses nor plans it per batch (MQTT messages make a statement every few
 * milliseconds).
 */
const WRITE_BATCH = preparedStatement(
  'ingest_write_batch',
  `
  with ins as (
    insert into readings (organization_id, sensor_id, ts, value, raw_value)
    select $1::uuid, ($2::uuid[])[u.i],
      timestamptz 'epoch' + ($3::float8 + u.d * 1000) * interval '1 microsecond', coalesce(u.v, u.r), u.r
    from unnest($4::int4[], $5::float8[], $6::float8[], $7::float8[]) as u(i, d, v, r)
    on conflict do nothing
    returning sensor_id, ts, value, raw_value, received_at
  ), latest as (
    insert into sensor_latest as l (sensor_id, organization_id, ts, value, raw_value, received_at, seen_at)
    select distinct on (sensor_id) sensor_id, $1::uuid, ts, value, raw_value, received_at, received_at
    from ins order by sensor_id, ts desc
    on conflict (sensor_id) do update set
      ts = greatest(l.ts, excluded.ts),
      value = case when excluded.ts > l.ts then excluded.value else l.value end,
      raw_value = case when excluded.ts > l.ts then excluded.raw_value else l.raw_value end,
      received_at = case when excluded.ts > l.ts then excluded.received_at else l.received_at end,
      seen_at = excluded.seen_at
  ), hourly as (
    insert into readings_hourly as h (sensor_id, bucket, organization_id, n, sum, min, max)
    select sensor_id, date_bin(interval '1 hour', ts, timestamptz 'epoch'), $1::uuid, count(*), sum(value), min(value), max(value)
    from ins group by 1, 2 order by 1, 2
    on conflict (sensor_id, bucket) do update set
      n = h.n + excluded.n, sum = h.sum + excluded.sum, min = least(h.min, excluded.min), max = greatest(h.max, excluded.max)
  ), seen as (
    update devices set last_seen_at = now()
    where organization_id = $1::uuid and id = any($8::uuid[])
      and (last_seen_at is null or last_seen_at < now() - interval '60 seconds')
  )
  select count(*)::int as accepted from ins`,
);

/**
 * Writes a batch in ONE statement, so it is atomic and durable when it returns (autocommit; with
 * PostgreSQL's default synchronous_commit the WAL is flushed before the answer). Parameters are
 * whole arrays, so the statement text is the same whatever the batch size:
 *
 * - the readings, ON CONFLICT (sensor_id, ts) DO NOTHING: a resent reading is not duplicated.
 *   Sensors travel as the batch's distinct ids plus a small index per reading, timestamps as
 *   millisecond offsets from the batch's first one (added in exact integer microseconds: no
 *   timestamp text to format or parse), reported values only when scaling changed them;
 * - from the rows actually inserted: the latest reading per sensor, and the hourly rollup;
 * - the devices' last_seen_at, at most once a minute per device (the WHERE skips fresher rows
 *   without writing them).
 *
 * With `returnRows` it also answers the inserted readings (inside a transaction, so that ingest
 * stages see them; it is durable when that transaction commits).
 */
export async function writeBatch(
  db: Db,
  organizationId: string,
  batch: BatchColumns,
  seenDeviceIds: readonly string[],
  returnRows = false,
): Promise<BatchOutcome> {
  const n = batch.count;
  let first = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i += 1) if (batch.ts[i]! < first) first = batch.ts[i]!;
  const { rows } = await db.executeQuery<{ accepted: number }>(
    WRITE_BATCH.compile([
      organizationId,
      `{${batch.sensors.join(',')}}`,
      first * 1000,
      numberArray(batch.sensorIndex, n),
      numberArray(batch.ts, n, first),
      batch.values === null ? null : numberArray(batch.values, n),
      numberArray(batch.rawValues, n),
      `{${seenDeviceIds.join(',')}}`,
    ]),
  );
  const accepted = Number(rows[0]?.accepted ?? 0);
  if (!returnRows) return { accepted };
  // Usually every reading was new: the rows stored are the batch itself, known here without
  // sending 1,000 rows back (which cost ingest with stages a fifth of its throughput). Only when
  // some were resends are the stored ones asked for: those this transaction inserted.
  if (accepted === n) {
    const written: WrittenReading[] = new Array(n);
    for (let i = 0; i < n; i += 1) {
      const raw = batch.rawValues[i]!;
      written[i] = {
        sensorId: batch.sensors[batch.sensorIndex[i]! - 1]!,
        ts: batch.ts[i]!,
        value: batch.values ? batch.values[i]! : raw,
        rawValue: raw,
      };
    }
    return { accepted, rows: written };
  }
  let last = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i += 1) if (batch.ts[i]! > last) last = batch.ts[i]!;
  const inserted = await sql<{ sensor_id: string; ts: number | string; value: number; raw_value: number }>`
    select sensor_id, extract(epoch from ts) * 1000 as ts, value, raw_value from readings
    where sensor_id = any(${`{${batch.sensors.join(',')}}`}::uuid[])
      and ts between timestamptz 'epoch' + ${first * 1000}::float8 * interval '1 microsecond'
        and timestamptz 'epoch' + ${last * 1000}::float8 * interval '1 microsecond'
      and xmin = pg_current_xact_id()::xid`.execute(db);
  return {
    accepted,
    rows: inserted.rows.map((row) => ({ sensorId: row.sensor_id, ts: Number(row.ts), value: row.value, rawValue: row.raw_value })),
  };
}
