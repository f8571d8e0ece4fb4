import { pageRequest } from '../api/list-query.js';
import { badRequest } from '../http/problem.js';
import { isUuid } from '../storage/sql.js';
import type { Aggregate } from './readings.repo.js';
import { isTimeInRange, parseDuration, parseRfc3339 } from './time.js';

/**
 * The query of a readings range, as `/v1/sensors/{id}/readings`, `/v1/readings` and GraphQL's
 * `readings` take it: `from`, `to` (RFC 3339), `interval` (ISO 8601 duration) with `aggregate`,
 * `sort`, and a page. Malformed values are 400 problems naming the parameter.
 */

export interface RangeQuery {
  from?: string | undefined;
  to?: string | undefined;
  interval?: string | undefined;
  aggregate?: Aggregate | undefined;
  sort?: 'ts' | '-ts' | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
  'page[size]'?: number | undefined;
  'page[after]'?: string | undefined;
}

export interface ParsedRange {
  from: number | undefined;
  to: number | undefined;
  intervalMs: number | undefined;
  aggregate: Aggregate;
  descending: boolean;
  limit: number;
  after: { sensorId: string; ts: number } | undefined;
}

function parseTime(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseRfc3339(value);
  if (ms === undefined)
    throw badRequest(`${name} must be an RFC 3339 date-time, e.g. 2024-05-01T00:00:00Z.`, [
      { pointer: `/query/${name}`, detail: `${name} must be an RFC 3339 date-time with a time zone offset` },
    ]);
  return ms;
}

export const invalidCursor = () =>
  badRequest('The cursor is not valid for this query; use links.next as given.', [
    { pointer: '/query/cursor', detail: 'cursor is not valid for this query' },
  ]);

export function parseRange(query: RangeQuery): ParsedRange {
  const from = parseTime(query.from, 'from');
  const to = parseTime(query.to, 'to');
  if (from !== undefined && to !== undefined && from >= to)
    throw badRequest('from must be before to.', [{ pointer: '/query/from', detail: 'from must be before to' }]);
  let intervalMs: number | undefined;
  if (query.interval !== undefined) {
    const parsed = parseDuration(query.interval);
    if (!parsed.ok) throw badRequest(`interval ${parsed.problem}.`, [{ pointer: '/query/interval', detail: `interval ${parsed.problem}` }]);
    intervalMs = Math.round(parsed.seconds * 1000);
  } else if (query.aggregate !== undefined) {
    throw badRequest('aggregate needs interval (the width of each bin, e.g. PT1H).', [
      { pointer: '/query/interval', detail: 'interval is required with aggregate' },
    ]);
  }
  if (intervalMs !== undefined && query.sort === '-ts')
    throw badRequest('Bins are returned in ascending order only.', [
      { pointer: '/query/sort', detail: 'sort=-ts is not supported with interval' },
    ]);
  const page = pageRequest(query);
  let after: ParsedRange['after'];
  if (page.after) {
    const [sensorId, ts] = page.after;
    if (typeof sensorId !== 'string' || !isUuid(sensorId) || !isTimeInRange(ts)) throw invalidCursor();
    after = { sensorId, ts };
  }
  return { from, to, intervalMs, aggregate: query.aggregate ?? 'avg', descending: query.sort === '-ts', limit: page.limit, after };
}
