import type { ColumnType } from 'kysely';

/**
 * Tables of readings storage (migration 0005_readings). Only src/readings/*.repo.ts and
 * src/ingest/*.repo.ts write them.
 *
 * - `readings`: every stored reading, PARTITION BY RANGE (ts), monthly partitions plus a default
 *   one, primary key (sensor_id, ts). `value` is the reported value (after scaling and the
 *   calibration offset), `raw_value` what the device sent.
 * - `readings_hourly`: per sensor and UTC hour, count/sum/min/max of the reported values of every
 *   stored reading; maintained by the same statement that inserts the readings, so downsampling by
 *   whole hours reads 24 rows a day instead of 1,440.
 * - `sensor_latest`: the reading with the greatest ts of each sensor, upserted once per batch.
 */

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface ReadingsTable {
  organization_id: string;
  sensor_id: string;
  ts: Timestamp;
  value: number;
  raw_value: number;
  received_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ReadingsHourlyTable {
  sensor_id: string;
  /** Start of the UTC hour. */
  bucket: Timestamp;
  organization_id: string;
  n: number;
  sum: number;
  min: number;
  max: number;
}

export interface SensorLatestTable {
  sensor_id: string;
  organization_id: string;
  /** The greatest ts stored for the sensor, and that reading's values. */
  ts: Timestamp;
  value: number;
  raw_value: number;
  received_at: Timestamp;
  /** When a new reading of the sensor (of any ts) was last stored: the sensor's "last seen". */
  seen_at: Timestamp;
}

export interface ReadingsTables {
  readings: ReadingsTable;
  readings_hourly: ReadingsHourlyTable;
  sensor_latest: SensorLatestTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends ReadingsTables {}
}
