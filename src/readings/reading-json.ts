import type { Reading } from './readings.repo.js';
import { formatTime } from './time.js';

// Values are finite (ingest refuses others); a non-finite one would be written as null, which is
// what JSON.stringify writes and what the page serializers are given.
export const finite = (value: number): number | null => (Number.isFinite(value) ? value : null);

/**
 * A reading in its /v1 JSON form. Pages carry `sensor_id` per item only where several sensors are
 * read (the one-sensor routes name it in the URL); events always do.
 * (One object literal per shape rather than a conditional spread: a little cheaper per item.)
 */
export const readingJson = (r: Reading, withSensor: boolean) =>
  withSensor
    ? { sensor_id: r.sensorId, ts: formatTime(r.ts), value: finite(r.value), raw_value: finite(r.rawValue) }
    : { ts: formatTime(r.ts), value: finite(r.value), raw_value: finite(r.rawValue) };
