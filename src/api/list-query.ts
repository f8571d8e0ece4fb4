import { Type } from 'typebox';
import { findUnstorable } from '../http/boundary.js';
import { badRequest } from '../http/problem.js';
import { type PageRequest, type Sort, type SortDirection, type SortField, cursorValues } from '../storage/keyset.js';

/**
 * The query parameters of a `/v1` list: `limit` (default 100, max 1000) and its JSON:API alias
 * `page[size]`, the opaque `cursor` of `links.next` (alias `page[after]`), and `sort=name` /
 * `sort=-created_at`. Repositories apply them with storage/keyset.ts.
 */

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Querystring properties for paginated lists; spread into a route's querystring schema. */
export const pageQueryProperties = {
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_LIMIT,
      // No schema default: it would always win over `page[size]` (pageRequest applies it).
      description: `Page size (default ${DEFAULT_LIMIT}, at most ${MAX_LIMIT}).`,
    }),
  ),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'Opaque cursor from links.next.' })),
  'page[size]': Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: 'JSON:API alias of limit.' })),
  'page[after]': Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'JSON:API alias of cursor.' })),
};

export interface PageQuery {
  limit?: number | undefined;
  cursor?: string | undefined;
  'page[size]'?: number | undefined;
  'page[after]'?: string | undefined;
}

/** Decodes a cursor; anything malformed is a 400 naming the `cursor` parameter. */
export function decodeCursor(cursor: string, parameter = 'cursor'): unknown[] {
  const values = cursorValues(cursor);
  // A cursor is input like any other: its values reach SQL.
  if (values !== undefined && findUnstorable(values, '/v') === undefined) return values;
  throw badRequest('The cursor is not valid; use links.next as given.', [
    { pointer: `/query/${parameter}`, detail: `${parameter} is not a valid cursor` },
  ]);
}

export function pageRequest(query: PageQuery): PageRequest {
  const limit = query.limit ?? query['page[size]'] ?? DEFAULT_LIMIT;
  // Ajv coerces `1e400` to Infinity and its integer check lets it through: refused here, not in SQL.
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    const parameter = query.limit !== undefined ? 'limit' : 'page[size]';
    throw badRequest(`${parameter} must be an integer from 1 to ${MAX_LIMIT}.`, [
      { pointer: `/query/${parameter}`, detail: `${parameter} must be an integer from 1 to ${MAX_LIMIT}` },
    ]);
  }
  const raw = query.cursor ?? query['page[after]'];
  return { limit, after: raw === undefined ? undefined : decodeCursor(raw, query.cursor !== undefined ? 'cursor' : 'page[after]') };
}

/** Querystring property for `sort=name` / `sort=-created_at` (JSON:API style). */
export function sortQueryProperty(fields: Record<string, SortField>, fallback: string) {
  const names = Object.keys(fields);
  return Type.Optional(
    Type.String({
      pattern: `^-?(${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`,
      description: `Sort field, "-" prefix for descending: ${names.join(', ')}. Default ${fallback}.`,
    }),
  );
}

export function parseSort(value: string | undefined, fields: Record<string, SortField>, fallback: string): Sort {
  const raw = value ?? fallback;
  const direction: SortDirection = raw.startsWith('-') ? 'desc' : 'asc';
  const name = raw.replace(/^-/, '');
  const field = fields[name];
  if (!field)
    throw badRequest(`Cannot sort by "${name}".`, [
      { pointer: '/query/sort', detail: `sort must be one of ${Object.keys(fields).join(', ')}` },
    ]);
  return { field: name, column: field.column, cast: field.cast, exact: field.exact, direction };
}
