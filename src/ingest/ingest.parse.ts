import { unstorableText } from '../http/boundary.js';
import type { FieldError } from '../http/problem.js';
import { parseRfc3339 } from '../readings/time.js';
import { isUuid } from '../storage/sql.js';

/**
 * Reading a batch: the JSON forms `{"readings": [...]}` and `[...]`, and NDJSON (one reading per
 * line). Each reading is `{sensor | sensor_id, ts, value}`. Every bad line is collected (up to a
 * cap) so the refusal names them all, not just the first.
 *
 * The result is columnar (one array per field, no object per reading): a batch of thousands of
 * readings is parsed without allocating thousands of small objects.
 */

/** What the NDJSON content-type parser hands the route: the raw text, split by the route. */
export class NdjsonBody {
  constructor(readonly text: string) {}
}

export interface LineError extends FieldError {
  /** 0-based index in the JSON array, or 1-based line number of NDJSON. */
  index?: number;
  line?: number;
}

/** Where a reading sits in the body, for naming it. */
export interface Location {
  pointer: string;
  label: string;
  index?: number;
  line?: number;
}

export interface ParsedBatch {
  /** Valid readings parsed (the arrays below hold this many entries). */
  count: number;
  /** The sensor as named: an id (lower-cased UUID) or a key, per `byId`. */
  sensor: string[];
  byId: Uint8Array;
  /** Epoch milliseconds. */
  ts: Float64Array;
  raw: Float64Array;
  /** Position of each reading in the body: JSON array index, or NDJSON line number. */
  position: Int32Array;
  errors: LineError[];
  /** Count of errors beyond those listed. */
  moreErrors: number;
  /** Readings with at least one error (one reading may have several). */
  invalidReadings: number;
  /** The batch counted more readings than the limit (nothing else was checked). */
  tooMany: boolean;
  /** Readings in the body, valid or not. */
  received: number;
  /** Where readings sit in the body: `/body` (array), `/body/readings` (object), or NDJSON lines. */
  base: '/body' | '/body/readings' | 'ndjson';
}

export const MAX_LISTED_ERRORS = 100;

/**
 * Readings are stored at millisecond precision and sent to SQL as exact integers of
 * microseconds, which bounds ingest timestamps to years 1700-2249 (queries accept any RFC 3339).
 */
export const MIN_INGEST_MS = Date.UTC(1700, 0, 1);
export const MAX_INGEST_MS = Date.UTC(2250, 0, 1) - 1;

/** How a principal addresses sensors: devices by key (or their own ids), others by id. */
export type Addressing = 'key' | 'id';

export class Collector {
  readonly errors: LineError[] = [];
  more = 0;
  private readonly readings = new Set<string>();
  add(at: Location, field: string | undefined, problem: string): void {
    this.readings.add(at.pointer);
    if (this.errors.length >= MAX_LISTED_ERRORS) {
      this.more += 1;
      return;
    }
    const pointer = field ? `${at.pointer}/${field}` : at.pointer;
    const detail = field ? `${at.label}: ${field} ${problem}` : `${at.label}: ${problem}`;
    this.errors.push({
      pointer,
      detail,
      ...(at.index !== undefined && { index: at.index }),
      ...(at.line !== undefined && { line: at.line }),
    });
  }
  get count(): number {
    return this.errors.length + this.more;
  }
  get invalidReadings(): number {
    return this.readings.size;
  }
}

function newBatch(capacity: number, base: ParsedBatch['base']): ParsedBatch {
  return {
    count: 0,
    sensor: new Array<string>(capacity),
    byId: new Uint8Array(capacity),
    ts: new Float64Array(capacity),
    raw: new Float64Array(capacity),
    position: new Int32Array(capacity),
    errors: [],
    moreErrors: 0,
    invalidReadings: 0,
    tooMany: false,
    received: 0,
    base,
  };
}

/** Where the reading at `position` sits in the body of `batch`. */
export function locate(base: ParsedBatch['base'], position: number): Location {
  if (base === 'ndjson') return { pointer: `/body/line/${position}`, label: `line ${position}`, line: position };
  return { pointer: `${base}/${position}`, label: `readings[${position}]`, index: position };
}

/** Checks one reading and appends it to the batch, or notes its errors. */
function readOne(item: unknown, position: number, batch: ParsedBatch, addressing: Addressing, errors: Collector): void {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    errors.add(locate(batch.base, position), undefined, 'must be an object {sensor|sensor_id, ts, value}');
    return;
  }
  const record = item as Record<string, unknown>;
  const { sensor, sensor_id: id, ts, value } = record;
  let name: string | undefined;
  let byId = 1;
  const bad: [string, string][] = [];
  if (id !== undefined) {
    if (typeof id === 'string' && isUuid(id)) name = id.toLowerCase();
    else bad.push(['sensor_id', 'must be a sensor id (UUID)']);
  } else if (sensor !== undefined) {
    if (typeof sensor !== 'string' || sensor === '' || sensor.length > 200) bad.push(['sensor', 'must be a non-empty string']);
    else if (unstorableText(sensor)) bad.push(['sensor', unstorableText(sensor)!]);
    else if (addressing === 'key') {
      name = sensor;
      byId = 0;
    } else if (isUuid(sensor)) name = sensor.toLowerCase();
    else bad.push(['sensor', 'must be a sensor id (UUID); only device tokens address sensors by key']);
  } else {
    bad.push(['sensor', addressing === 'key' ? 'is required (the sensor key, or sensor_id)' : 'is required (sensor_id)']);
  }
  const time = typeof ts === 'string' ? parseRfc3339(ts) : undefined;
  if (time === undefined)
    bad.push(['ts', ts === undefined ? 'is required' : 'must be an RFC 3339 date-time with offset, e.g. 2024-05-01T12:00:00Z']);
  else if (time < MIN_INGEST_MS || time > MAX_INGEST_MS) bad.push(['ts', 'must be between the years 1700 and 2249']);
  if (typeof value !== 'number' || !Number.isFinite(value))
    bad.push(['value', value === undefined ? 'is required' : 'must be a finite number']);
  if (bad.length > 0) {
    const at = locate(batch.base, position);
    for (const [field, problem] of bad) errors.add(at, field, problem);
    return;
  }
  const i = batch.count;
  batch.sensor[i] = name!;
  batch.byId[i] = byId;
  batch.ts[i] = time!;
  batch.raw[i] = value as number;
  batch.position[i] = position;
  batch.count = i + 1;
}

function finish(batch: ParsedBatch, errors: Collector): ParsedBatch {
  batch.errors = errors.errors;
  batch.moreErrors = errors.more;
  batch.invalidReadings = errors.invalidReadings;
  batch.sensor.length = batch.count;
  return batch;
}

/** Parses a JSON body (already JSON-parsed by Fastify). */
export function parseJsonBatch(body: unknown, addressing: Addressing, maxReadings: number): ParsedBatch | { shapeError: string } {
  let items: unknown[];
  let base: ParsedBatch['base'];
  if (Array.isArray(body)) {
    items = body;
    base = '/body';
  } else if (body && typeof body === 'object' && Array.isArray((body as { readings?: unknown }).readings)) {
    items = (body as { readings: unknown[] }).readings;
    base = '/body/readings';
  } else {
    return { shapeError: 'The body must be {"readings": [...]}, an array of readings, or NDJSON (application/x-ndjson).' };
  }
  if (items.length > maxReadings) return { ...newBatch(0, base), tooMany: true, received: items.length };
  const batch = newBatch(items.length, base);
  batch.received = items.length;
  const errors = new Collector();
  for (let i = 0; i < items.length; i += 1) readOne(items[i], i, batch, addressing, errors);
  return finish(batch, errors);
}

/** Parses NDJSON text: one JSON object per line; blank lines are ignored; lines are 1-based. */
export function parseNdjsonBatch(text: string, addressing: Addressing, maxReadings: number): ParsedBatch {
  // Lines are counted first so the columns are allocated once.
  let lines = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines += 1;
  const batch = newBatch(Math.min(lines, maxReadings + 1), 'ndjson');
  const errors = new Collector();
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNo += 1;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    batch.received += 1;
    if (batch.received > maxReadings) {
      batch.tooMany = true;
      return batch;
    }
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch {
      errors.add(locate('ndjson', lineNo), undefined, 'is not valid JSON');
      continue;
    }
    readOne(item, lineNo, batch, addressing, errors);
  }
  return finish(batch, errors);
}
