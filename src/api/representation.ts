import type { FastifyReply, FastifyRequest, preValidationAsyncHookHandler } from 'fastify';
import { type Expression, type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import { type TSchema, Type } from 'typebox';
import { findUnstorable } from '../http/boundary.js';
import { HttpProblem, JSON_API_MEDIA_TYPE, badRequest, jsonApiBodyPointers } from '../http/problem.js';
import type { App } from '../server/app.js';
import { isUuid } from '../storage/sql.js';

/**
 * The one representation layer of the resource API (`/v1`), shared by every capability:
 *
 * - JSON (default; also for `Accept: application/javascript`, `application/json`, `*∕*`): an
 *   envelope `{data, links, meta}` whose `data` is a flat object (`id`, attributes, `<rel>_id`
 *   fields, `links.self`) or an array of them.
 * - JSON:API 1.1 (`Accept: application/vnd.api+json`): resource objects with `type`, `id`,
 *   `attributes`, `relationships`, `links`; top-level `links`, `meta`, `jsonapi`.
 *   406 / 415 for JSON:API media types carrying parameters other than `ext`/`profile`, and for
 *   any `ext` (no extension is supported), as the JSON:API spec requires.
 * - Request bodies: flat JSON, or a JSON:API document (`{data: {type, id, attributes,
 *   relationships}}`) which `jsonApiBody()` flattens before validation, so a route has one schema.
 * - Cursor pagination: opaque base64url cursors over a keyset, `limit` (default 100, max 1000),
 *   `links.next`; every link absolute from `config.publicUrl`.
 *
 * Documents are serialized here (reply.send of a string), so route response schemas are
 * documentation only and never strip fields.
 */

export type Format = 'json' | 'jsonapi';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

// ---------------------------------------------------------------------------------------------
// Content negotiation

interface MediaRange {
  type: string;
  params: Map<string, string>;
}

function parseMediaRanges(header: string): MediaRange[] {
  return header
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const [type = '', ...rawParams] = part.split(';');
      const params = new Map<string, string>();
      for (const raw of rawParams) {
        const eq = raw.indexOf('=');
        const name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
        const value =
          eq === -1
            ? ''
            : raw
                .slice(eq + 1)
                .trim()
                .replace(/^"(.*)"$/, '$1');
        if (name !== '') params.set(name, value);
      }
      return { type: type.trim().toLowerCase(), params };
    });
}

/**
 * A JSON:API media type instance is usable when its only parameters are `profile` (ignored:
 * profiles never change the meaning of a document) and `q` (Accept weight). `ext` names
 * extensions, of which we support none.
 */
function usableJsonApi(range: MediaRange): boolean {
  return [...range.params.keys()].every((name) => name === 'profile' || name === 'q');
}

/** The representation a request asks for; throws 406 per JSON:API §"Server Responsibilities". */
export function negotiate(request: FastifyRequest): Format {
  const accept = request.headers.accept;
  if (!accept?.toLowerCase().includes(JSON_API_MEDIA_TYPE)) return 'json';
  const jsonApi = parseMediaRanges(accept).filter((r) => r.type === JSON_API_MEDIA_TYPE);
  if (jsonApi.length === 0) return 'json';
  if (!jsonApi.some(usableJsonApi)) {
    throw new HttpProblem({
      status: 406,
      detail:
        'Every application/vnd.api+json in Accept carries media type parameters this server does not support (only "profile" is allowed).',
    });
  }
  return 'jsonapi';
}

/** JSON:API: a request body with the JSON:API media type must not carry parameters (415). */
export function checkContentType(request: FastifyRequest): void {
  const contentType = request.headers['content-type'];
  if (!contentType?.toLowerCase().includes(JSON_API_MEDIA_TYPE)) return;
  const [range] = parseMediaRanges(contentType);
  if (range && range.type === JSON_API_MEDIA_TYPE && ![...range.params.keys()].every((name) => name === 'profile')) {
    throw new HttpProblem({
      status: 415,
      detail: 'Content-Type application/vnd.api+json must not carry media type parameters other than "profile".',
      headers: { 'accept-post': `application/json, ${JSON_API_MEDIA_TYPE}` },
    });
  }
}

export function isJsonApiBody(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith(JSON_API_MEDIA_TYPE);
}

const installed = new WeakSet<object>();

/**
 * Installs the negotiation checks (406/415) for every `/v1` route of the app, whichever module
 * registers it. Idempotent per app; call it from each capability's registration if unsure.
 */
export function installRepresentation(app: App): void {
  if (installed.has(app)) return;
  installed.add(app);
  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.url.startsWith('/v1/') && request.url !== '/v1') return done();
    try {
      negotiate(request);
      checkContentType(request);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
}

// ---------------------------------------------------------------------------------------------
// Links

/** The absolute URL of a path on this server (publicUrl + path). */
export function absoluteUrl(publicUrl: string, pathAndQuery: string): string {
  return publicUrl.replace(/\/$/, '') + (pathAndQuery.startsWith('/') ? pathAndQuery : `/${pathAndQuery}`);
}

/** The request's own URL, absolute, optionally with query parameters replaced or removed. */
export function requestUrl(publicUrl: string, request: FastifyRequest, replace: Record<string, string | undefined> = {}): string {
  const url = new URL(request.url, 'http://placeholder');
  for (const [name, value] of Object.entries(replace)) {
    if (value === undefined) url.searchParams.delete(name);
    else url.searchParams.set(name, value);
  }
  const query = url.searchParams.toString();
  return absoluteUrl(publicUrl, url.pathname + (query ? `?${query}` : ''));
}

// ---------------------------------------------------------------------------------------------
// Resource types

export interface RelationshipDef<Row> {
  /** JSON:API type of the related resource(s). */
  type: string;
  /** Field name in the flat JSON form and in flat request bodies (`location_id`, `sensor_ids`). */
  field: string;
  /** To-many when true. */
  many?: boolean;
  /** The related id(s) of a row; undefined leaves the relationship out (not loaded). */
  get(row: Row): string | null | readonly string[] | undefined;
  /** Path of the related resource(s), for JSON:API `links.related`. */
  related?(row: Row): string | undefined;
}

export interface ResourceType<Row> {
  /** JSON:API type, plural (`devices`). */
  type: string;
  id(row: Row): string;
  /** Path of the resource (`/v1/devices/{id}`). */
  path(row: Row): string;
  /** JSON-ready attributes (no id, no relationship ids). */
  attributes(row: Row): Record<string, unknown>;
  relationships?: Record<string, RelationshipDef<Row>>;
}

/** The JSON envelope form of one resource: flat object with id, attributes, relationship ids, links.self. */
export function flatResource<Row>(publicUrl: string, kind: ResourceType<Row>, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = { id: kind.id(row), ...kind.attributes(row) };
  for (const rel of Object.values(kind.relationships ?? {})) {
    const value = rel.get(row);
    if (value !== undefined) out[rel.field] = value;
  }
  out.links = { self: absoluteUrl(publicUrl, kind.path(row)) };
  return out;
}

/** The JSON:API resource object of one resource. */
export function jsonApiResource<Row>(publicUrl: string, kind: ResourceType<Row>, row: Row): Record<string, unknown> {
  const relationships: Record<string, unknown> = {};
  for (const [name, rel] of Object.entries(kind.relationships ?? {})) {
    const value = rel.get(row);
    const related = rel.related?.(row);
    if (value === undefined && !related) continue;
    relationships[name] = {
      ...(value !== undefined && {
        data: Array.isArray(value)
          ? value.map((id) => ({ type: rel.type, id }))
          : value === null
            ? null
            : { type: rel.type, id: value as string },
      }),
      ...(related && { links: { related: absoluteUrl(publicUrl, related) } }),
    };
  }
  return {
    type: kind.type,
    id: kind.id(row),
    attributes: kind.attributes(row),
    ...(Object.keys(relationships).length > 0 && { relationships }),
    links: { self: absoluteUrl(publicUrl, kind.path(row)) },
  };
}

// ---------------------------------------------------------------------------------------------
// Sending documents

export interface SendOptions {
  status?: number;
  meta?: Record<string, unknown>;
  /** Extra top-level links (JSON and JSON:API alike). */
  links?: Record<string, string>;
}

function send(reply: FastifyReply, format: Format, status: number, document: Record<string, unknown>): FastifyReply {
  reply.code(status);
  if (format === 'jsonapi') {
    return reply.type(JSON_API_MEDIA_TYPE).send(JSON.stringify({ jsonapi: { version: '1.1' }, ...document }));
  }
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(document));
}

/** Sends one resource; `201` also sets `Location`. */
export function sendResource<Row>(
  publicUrl: string,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: ResourceType<Row>,
  row: Row,
  options: SendOptions = {},
): FastifyReply {
  const format = negotiate(request);
  const self = absoluteUrl(publicUrl, kind.path(row));
  const status = options.status ?? 200;
  if (status === 201) reply.header('location', self);
  const data = format === 'jsonapi' ? jsonApiResource(publicUrl, kind, row) : flatResource(publicUrl, kind, row);
  return send(reply, format, status, { data, links: { self, ...options.links }, ...(options.meta && { meta: options.meta }) });
}

/** Sends a page of resources with `links.self` (the request) and `links.next` when there is more. */
export function sendCollection<Row>(
  publicUrl: string,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: ResourceType<Row>,
  page: Page<Row>,
  options: SendOptions = {},
): FastifyReply {
  const format = negotiate(request);
  const data = page.items.map((row) => (format === 'jsonapi' ? jsonApiResource(publicUrl, kind, row) : flatResource(publicUrl, kind, row)));
  return send(reply, format, options.status ?? 200, {
    data,
    links: pageLinks(publicUrl, request, page, options.links),
    meta: { ...(page.limit !== undefined && { limit: page.limit }), count: page.items.length, ...options.meta },
  });
}

/** Sends a non-resource document (e.g. a summary) in the envelope, as `meta`-only or raw data. */
export function sendDocument(
  request: FastifyRequest,
  reply: FastifyReply,
  document: { data?: unknown; links?: Record<string, unknown>; meta?: Record<string, unknown> },
  status = 200,
): FastifyReply {
  return send(reply, negotiate(request), status, document);
}

/** `204 No Content`, for deletes. */
export function sendNoContent(reply: FastifyReply): FastifyReply {
  return reply.code(204).send();
}

export function pageLinks(
  publicUrl: string,
  request: FastifyRequest,
  page: Page<unknown>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    self: requestUrl(publicUrl, request),
    ...(page.nextCursor && { next: requestUrl(publicUrl, request, { cursor: page.nextCursor, 'page[after]': undefined }) }),
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// JSON:API request bodies

export interface BodyOptions {
  /** The JSON:API type the document must carry (409 otherwise, per the spec). */
  type: string;
  /** Maps relationship names to flat fields: `{ location: 'location_id', sensors: 'sensor_ids' }`. */
  relationships?: Record<string, string>;
  /** For updates: the id in the URL, which the document's `data.id` must match (409). */
  idParam?: string;
}

/**
 * preValidation hook: when the body is a JSON:API document, replaces it by the flat body the
 * route schema describes (attributes plus relationship ids), after the spec's checks (type and
 * id must match: 409). Flat JSON bodies pass through untouched.
 */
export function jsonApiBody(options: BodyOptions): preValidationAsyncHookHandler {
  const relationshipOf = new Map(Object.entries(options.relationships ?? {}).map(([name, field]) => [field, name]));
  // Errors about a flat field point back into the document the client sent.
  const remap = (pointer: string): string => {
    const [, field, ...rest] = pointer.replace(/^\/body/, '').split('/');
    if (!field) return '/data';
    const relationship = relationshipOf.get(field);
    return relationship
      ? `/data/relationships/${relationship}/data${rest.length ? `/${rest.join('/')}` : ''}`
      : `/data/attributes/${[field, ...rest].join('/')}`;
  };
  return async (request) => {
    if (!isJsonApiBody(request)) return;
    request.body = flattenJsonApiDocument(
      request.body,
      options,
      options.idParam ? (request.params as Record<string, string>)[options.idParam] : undefined,
    );
    jsonApiBodyPointers.set(request, remap);
  };
}

export function flattenJsonApiDocument(body: unknown, options: BodyOptions, expectedId?: string): Record<string, unknown> {
  const doc = body as { data?: unknown } | null;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !doc.data || typeof doc.data !== 'object' || Array.isArray(doc.data)) {
    throw badRequest('A JSON:API request document needs a "data" resource object.', [
      { pointer: '/body/data', detail: 'data must be a resource object' },
    ]);
  }
  const data = doc.data as { type?: unknown; id?: unknown; attributes?: unknown; relationships?: unknown };
  if (typeof data.type !== 'string')
    throw badRequest('data.type is required.', [{ pointer: '/body/data/type', detail: 'data.type is required' }]);
  if (data.type !== options.type) {
    throw new HttpProblem({
      status: 409,
      detail: `data.type must be "${options.type}", got "${data.type}".`,
      errors: [{ pointer: '/body/data/type', detail: `data.type must be "${options.type}"` }],
    });
  }
  if (expectedId !== undefined && data.id !== undefined && data.id !== expectedId) {
    throw new HttpProblem({
      status: 409,
      detail: 'data.id does not match the id in the URL.',
      errors: [{ pointer: '/body/data/id', detail: 'data.id must match the URL' }],
    });
  }
  if (
    data.attributes !== undefined &&
    (typeof data.attributes !== 'object' || data.attributes === null || Array.isArray(data.attributes))
  ) {
    throw badRequest('data.attributes must be an object.', [
      { pointer: '/body/data/attributes', detail: 'data.attributes must be an object' },
    ]);
  }
  const flat: Record<string, unknown> = { ...(data.attributes as Record<string, unknown> | undefined) };
  const rels = data.relationships;
  if (rels !== undefined) {
    if (typeof rels !== 'object' || rels === null || Array.isArray(rels)) {
      throw badRequest('data.relationships must be an object.', [
        { pointer: '/body/data/relationships', detail: 'data.relationships must be an object' },
      ]);
    }
    for (const [name, value] of Object.entries(rels as Record<string, unknown>)) {
      const field = options.relationships?.[name];
      if (!field)
        throw badRequest(`Unknown relationship "${name}".`, [
          { pointer: `/body/data/relationships/${name}`, detail: `${name} is not a relationship of ${options.type}` },
        ]);
      const linkage = (value as { data?: unknown } | null)?.data;
      if (linkage === null) flat[field] = null;
      else if (Array.isArray(linkage)) flat[field] = linkage.map((item) => (item as { id?: unknown })?.id);
      else if (linkage && typeof linkage === 'object') flat[field] = (linkage as { id?: unknown }).id;
      else
        throw badRequest(`Relationship "${name}" needs "data".`, [
          { pointer: `/body/data/relationships/${name}/data`, detail: 'data is required' },
        ]);
    }
  }
  return flat;
}

// ---------------------------------------------------------------------------------------------
// Pagination, filtering and sorting

/** Querystring properties for paginated lists; spread into a route's querystring schema. */
export const pageQueryProperties = {
  limit: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: MAX_LIMIT,
      default: DEFAULT_LIMIT,
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

export function encodeCursor(values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify({ v: values.map((v) => (v instanceof Date ? v.toISOString() : v)) })).toString('base64url');
}

/** Decodes a cursor; anything malformed is a 400 naming the `cursor` parameter. */
export function decodeCursor(cursor: string, parameter = 'cursor'): unknown[] {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { v?: unknown };
    // A cursor is input like any other: its values reach SQL.
    if (Array.isArray(parsed.v) && findUnstorable(parsed.v, '/v') === undefined) return parsed.v;
  } catch {
    // fall through
  }
  throw badRequest('The cursor is not valid; use links.next as given.', [
    { pointer: `/query/${parameter}`, detail: `${parameter} is not a valid cursor` },
  ]);
}

export function pageRequest(query: PageQuery): PageRequest {
  const limit = query.limit ?? query['page[size]'] ?? DEFAULT_LIMIT;
  const raw = query.cursor ?? query['page[after]'];
  return { limit, after: raw === undefined ? undefined : decodeCursor(raw, query.cursor !== undefined ? 'cursor' : 'page[after]') };
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

export type SortDirection = 'asc' | 'desc';

/** One sortable field of a list: the API name and the SQL column it orders by (never null). */
export interface SortField {
  column: string;
  /** SQL type for the cursor value comparison. */
  cast: 'text' | 'timestamptz' | 'uuid' | 'double precision' | 'integer';
}

export interface Sort {
  field: string;
  column: string;
  cast: SortField['cast'];
  direction: SortDirection;
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
  return { field: name, column: field.column, cast: field.cast, direction };
}

/**
 * The SQL a sort orders by. Timestamps are truncated to milliseconds, the precision a cursor
 * (and a JavaScript Date) carries, so a row is never repeated because of its microseconds.
 */
export function sortExpression(sort: Pick<Sort, 'column' | 'cast'>): RawBuilder<unknown> {
  return sort.cast === 'timestamptz' ? sql`date_trunc('milliseconds', ${sql.ref(sort.column)})` : sql`${sql.ref(sort.column)}`;
}

/**
 * Keyset condition for "after this cursor": `(sortColumn, idColumn) > (value, id)` (or `<` when
 * descending). The id column breaks ties, so pages never repeat or skip rows.
 */
export function afterCursor(sort: Sort, idColumn: string, after: unknown[]): Expression<SqlBool> {
  const [value, id] = after;
  if (after.length !== 2 || typeof id !== 'string' || (typeof value !== 'string' && typeof value !== 'number')) {
    throw badRequest('The cursor does not fit this list or sort order; use links.next as given.', [
      { pointer: '/query/cursor', detail: 'cursor is not valid for this list' },
    ]);
  }
  const badValue =
    (sort.cast === 'timestamptz' && !isIsoInstant(value)) ||
    (sort.cast === 'double precision' && (typeof value !== 'number' || !Number.isFinite(value))) ||
    (sort.cast === 'integer' && !(Number.isInteger(value) && Math.abs(value as number) <= 2 ** 31 - 1)) ||
    (sort.cast === 'uuid' && !isUuid(value));
  if (!isUuid(id) || badValue) {
    throw badRequest('The cursor is not valid; use links.next as given.', [{ pointer: '/query/cursor', detail: 'cursor is not valid' }]);
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

/** Documentation schema of the JSON envelope of a single resource. */
export function envelopeSchema(item: TSchema, description?: string) {
  return Type.Object(
    {
      data: item,
      links: Type.Object({ self: Type.String({ format: 'uri' }) }),
      meta: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    },
    {
      description:
        description ?? 'JSON envelope (default). With Accept: application/vnd.api+json the same data comes as a JSON:API 1.1 document.',
    },
  );
}

export function collectionSchema(item: TSchema, description?: string) {
  return Type.Object(
    {
      data: Type.Array(item),
      links: Type.Object({ self: Type.String({ format: 'uri' }), next: Type.Optional(Type.String({ format: 'uri' })) }),
      meta: Type.Object({ limit: Type.Optional(Type.Integer()), count: Type.Integer() }, { additionalProperties: true }),
    },
    { description: description ?? 'A page of resources (JSON envelope); follow links.next for the next page.' },
  );
}
