import { type Expression, type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import { isUuid } from './sql.js';

/**
 * Keyset pagination for repositories: `ORDER BY sort, id` pages whose position is carried by an
 * opaque base64url cursor (the sort value and id of the last row of the previous page), so pages
 * never repeat or skip rows whatever is inserted meanwhile. The API kit parses `limit`, `cursor`
 * and `sort` (api/list-query.ts) and renders `links.next` (api/links.ts).
 */

export interface PageRequest {
  limit: number;
  /** Decoded keyset values of the last row of the previous page. */
  after: unknown[] | undefined;
}

export interface Page<Row> {
  items: Row[];
  nextCursor: string | undefined;
  limit?: number;
}

export type SortDirection = 'asc' | 'desc';

/** One sortable field of a list: the API name and the SQL column it orders by (never null). */
export interface SortField {
  column: string;
  /** SQL type for the cursor value comparison. */
  cast: 'text' | 'timestamptz' | 'uuid' | 'double precision' | 'integer';
  /**
   * A timestamp column stored to the millisecond (the precision a cursor carries): ordered and
   * compared as it is, so an index on it serves the order (others are truncated, see sortExpression).
   */
  exact?: boolean;
}

export interface Sort {
  field: string;
  column: string;
  cast: SortField['cast'];
  exact?: boolean | undefined;
  direction: SortDirection;
}

/**
 * A cursor that does not fit the list it is used with (made up, or from another list or sort
 * order). The HTTP error handler answers it 400, pointing at `pointer` (http/errors.ts).
 */
export class InvalidCursorError extends Error {
  readonly pointer = '/query/cursor';
  constructor(
    message: string,
    readonly detail: string,
  ) {
    super(message);
    this.name = 'InvalidCursorError';
  }
}

export function encodeCursor(values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify({ v: values.map((v) => (v instanceof Date ? v.toISOString() : v)) })).toString('base64url');
}

/** The values of a cursor made by encodeCursor, or undefined when it is not one (throws nothing). */
export function cursorValues(cursor: string): unknown[] | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown };
    if (Array.isArray(parsed.v)) return parsed.v;
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Builds a page from rows fetched with `limit + 1`: the extra row only says there is more, and the
 * cursor is made from the last row kept.
 */
export function toPage<Row>(rows: Row[], limit: number, keyOf: (row: Row) => unknown[]): Page<Row> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : undefined, limit };
}

/**
 * The SQL a sort orders by. Timestamps are truncated to milliseconds, the precision a cursor
 * (and a JavaScript Date) carries, so a row is never repeated because of its microseconds.
 * A column stored to the millisecond (`exact`) is ordered as it is.
 */
export function sortExpression(sort: Pick<Sort, 'column' | 'cast' | 'exact'>): RawBuilder<unknown> {
  return sort.cast === 'timestamptz' && !sort.exact
    ? sql`date_trunc('milliseconds', ${sql.ref(sort.column)})`
    : sql`${sql.ref(sort.column)}`;
}

/**
 * Keyset condition for "after this cursor": `(sortColumn, idColumn) > (value, id)` (or `<` when
 * descending). The id column breaks ties, so pages never repeat or skip rows.
 */
export function afterCursor(sort: Sort, idColumn: string, after: unknown[]): Expression<SqlBool> {
  const [value, id] = after;
  if (after.length !== 2 || typeof id !== 'string' || (typeof value !== 'string' && typeof value !== 'number')) {
    throw new InvalidCursorError(
      'The cursor does not fit this list or sort order; use links.next as given.',
      'cursor is not valid for this list',
    );
  }
  const badValue =
    (sort.cast === 'timestamptz' && !isIsoInstant(value)) ||
    (sort.cast === 'double precision' && (typeof value !== 'number' || !Number.isFinite(value))) ||
    (sort.cast === 'integer' && !(Number.isInteger(value) && Math.abs(value as number) <= 2 ** 31 - 1)) ||
    (sort.cast === 'uuid' && !isUuid(value));
  if (!isUuid(id) || badValue) {
    throw new InvalidCursorError('The cursor is not valid; use links.next as given.', 'cursor is not valid');
  }
  const op = sort.direction === 'asc' ? sql`>` : sql`<`;
  return sql<SqlBool>`(${sortExpression(sort)}, ${sql.ref(idColumn)}) ${op} (cast(${value} as ${sql.raw(sort.cast)}), cast(${id} as uuid))`;
}

/** Cursors carry instants as Date#toISOString() writes them; nothing else is accepted. */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isIsoInstant = (value: unknown): boolean => {
  if (typeof value !== 'string' || !ISO_INSTANT.test(value)) return false;
  const date = new Date(value);
  // Year 0000 is a valid JavaScript date but not a PostgreSQL one.
  return !Number.isNaN(date.getTime()) && date.toISOString() === value && !value.startsWith('0000');
};

/** The cursor key of a row: its sort value and id. */
export function sortKey(value: unknown, id: string): unknown[] {
  return [value instanceof Date ? value.toISOString() : value, id];
}

/**
 * Applies a keyset page to a select: the cursor condition, `ORDER BY sort, id` and `LIMIT n + 1`.
 * Fetch it, then `keysetPage(rows, sort, page)` to build the Page.
 *
 *   const sort = parseSort(query.sort, SORTS, 'name');
 *   const page = pageRequest(query);
 *   const rows = await paginate(db.selectFrom('devices').selectAll().where(...), sort, 'devices.id', page).execute();
 *   return keysetPage(rows, sort, page);
 */
// biome-ignore lint/suspicious/noExplicitAny: any table's select: only WHERE, ORDER BY and LIMIT are added.
export function paginate<QB extends SelectQueryBuilder<any, any, any>>(query: QB, sort: Sort, idColumn: string, page: PageRequest): QB {
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  let q: SelectQueryBuilder<any, any, any> = query;
  if (page.after) q = q.where(afterCursor(sort, idColumn, page.after));
  return q
    .orderBy(sortExpression(sort), sort.direction)
    .orderBy(sql.ref(idColumn), sort.direction)
    .limit(page.limit + 1) as QB;
}

/** The Page of rows fetched with paginate(); the sort value is read from the row's column of that name. */
export function keysetPage<Row extends { id: string }>(rows: Row[], sort: Sort, page: PageRequest): Page<Row> {
  const property = sort.column.split('.').pop() as string;
  return toPage(rows, page.limit, (row) => sortKey((row as Record<string, unknown>)[property], row.id));
}
