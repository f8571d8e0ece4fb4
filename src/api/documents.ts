import type { FastifyReply, FastifyRequest } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { sendJsonApi } from '../http/problem.js';
import type { Db } from '../storage/database.js';
import type { Page } from '../storage/keyset.js';
import { absoluteUrl, pageLinks } from './links.js';
import { type Format, negotiate } from './negotiation.js';

/**
 * The documents of the resource API (`/v1`), in the format the request negotiated:
 *
 * - JSON: an envelope `{data, links, meta}` whose `data` is a flat object (`id`, attributes,
 *   `<rel>_id` fields, `links.self`) or an array of them.
 * - JSON:API 1.1: resource objects with `type`, `id`, `attributes`, `relationships`, `links`;
 *   top-level `links`, `meta`, `jsonapi`.
 *
 * Documents are serialized here (reply.send of a string), so route response schemas are
 * documentation only and never strip fields.
 */

/** The linkage of a relationship: an id, null (empty to-one), or ids (to-many). */
export type Linkage = string | null | readonly string[];

/**
 * How `include` loads the related resources of many rows at once: one statement for every row of
 * the document (never one per row). The rows it returns are rendered with the resource type
 * registered for the relationship's `type` (api/compound.ts).
 *
 * - `byIds`: the relationship's ids are known (`get` answers them); loads those resources.
 * - `byOwners`: they are not (a device's sensors); loads the related resources of these owners
 *   with the owner's id of each, which is also the linkage the document then shows. At most
 *   `limit` per owner, the first in the relationship's order (storage/per-owner.ts): a to-many
 *   relationship can be unbounded (a webhook's deliveries), and a document is not a list to page.
 */
export type RelatedLoader =
  | { byIds(db: Db, organizationId: string, ids: readonly string[]): Promise<readonly unknown[]> }
  | {
      byOwners(
        db: Db,
        organizationId: string,
        ownerIds: readonly string[],
        limit: number,
      ): Promise<readonly { owner: string; row: unknown }[]>;
    };

export interface RelationshipDef<Row> {
  /** JSON:API type of the related resource(s). */
  type: string;
  /** Field name in the flat JSON form and in flat request bodies (`location_id`, `sensor_ids`). */
  field: string;
  /** To-many when true. */
  many?: boolean;
  /** The related id(s) of a row; undefined leaves the relationship out (not loaded). */
  get(row: Row): Linkage | undefined;
  /**
   * Path of the related resource(s) for JSON:API `links.related` when another route serves them
   * (a filtered, paged list: `/v1/sensors?device_id=…`). Without it, a relationship with a loader
   * links to `<resource path>/<name>`, which api/relationship-routes.ts serves.
   */
  related?(row: Row): string | undefined;
  /**
   * Loads the related resources for `?include=` (compound documents) and for the relationship's
   * own endpoints (`<resource path>/relationships/<name>`: its `links.self`); without it the
   * include path is refused and the relationship has no `links.self`.
   */
  include?: RelatedLoader;
  /** Shown in JSON:API only: the flat JSON form (a contract) and flat request bodies do not have `field`. */
  jsonApiOnly?: boolean;
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
    if (rel.jsonApiOnly) continue;
    const value = rel.get(row);
    if (value !== undefined) out[rel.field] = value;
  }
  out.links = { self: absoluteUrl(publicUrl, kind.path(row)) };
  return out;
}

/** Resource identifier objects of a linkage: `{type, id}`, an array of them, or null. */
export function resourceIdentifiers(type: string, linkage: Linkage): unknown {
  if (linkage === null) return null;
  return Array.isArray(linkage) ? linkage.map((id) => ({ type, id })) : { type, id: linkage as string };
}

/**
 * `links` of relationship `name` of a row, absolute; undefined when it has none. `self` is its
 * relationship endpoint and `related` (by default) its related endpoint, both served by
 * api/relationship-routes.ts for every relationship with a loader; a relationship without one
 * (a sensor's readings, a time series) has only the `related` link its definition names.
 */
export function relationshipLinks<Row>(
  publicUrl: string,
  kind: ResourceType<Row>,
  row: Row,
  name: string,
): { self?: string; related?: string } | undefined {
  const rel = kind.relationships?.[name];
  if (!rel) return undefined;
  const base = kind.path(row);
  const related = rel.related ? rel.related(row) : rel.include && `${base}/${name}`;
  if (!rel.include && !related) return undefined;
  return {
    ...(rel.include && { self: absoluteUrl(publicUrl, `${base}/relationships/${name}`) }),
    ...(related && { related: absoluteUrl(publicUrl, related) }),
  };
}

/** What a JSON:API resource object shows beyond its row: a sparse fieldset, linkage that `include` loaded. */
export interface ResourceObjectOptions {
  /** `fields[TYPE]`: only these attributes and relationships. */
  fields?: ReadonlySet<string> | undefined;
  /** Linkage by relationship name, loaded for `include` where the row does not carry it. */
  linkage?: Readonly<Record<string, Linkage>> | undefined;
  /** `meta` of relationships by name: a to-many linkage cut at the include bound says so. */
  relationshipMeta?: Readonly<Record<string, Record<string, unknown>>> | undefined;
}

/** The JSON:API resource object of one resource. */
export function jsonApiResource<Row>(
  publicUrl: string,
  kind: ResourceType<Row>,
  row: Row,
  options: ResourceObjectOptions = {},
): Record<string, unknown> {
  const { fields, linkage, relationshipMeta } = options;
  const relationships: Record<string, unknown> = {};
  for (const [name, rel] of Object.entries(kind.relationships ?? {})) {
    if (fields && !fields.has(name)) continue;
    const value = linkage && name in linkage ? linkage[name] : rel.get(row);
    const links = relationshipLinks(publicUrl, kind, row, name);
    if (value === undefined && !links) continue;
    const meta = relationshipMeta?.[name];
    relationships[name] = {
      ...(value !== undefined && { data: resourceIdentifiers(rel.type, value) }),
      ...(links && { links }),
      ...(meta && { meta }),
    };
  }
  let attributes = kind.attributes(row);
  if (fields) attributes = Object.fromEntries(Object.entries(attributes).filter(([name]) => fields.has(name)));
  return {
    type: kind.type,
    id: kind.id(row),
    ...(Object.keys(attributes).length > 0 && { attributes }),
    ...(Object.keys(relationships).length > 0 && { relationships }),
    links: { self: absoluteUrl(publicUrl, kind.path(row)) },
  };
}

/**
 * A compound document's part beyond the primary rows (api/compound.ts): the sparse fieldsets by
 * type, the linkage `include` loaded by resource, and the included resource objects (rendered).
 */
export interface Compound {
  fields: ReadonlyMap<string, ReadonlySet<string>>;
  /** By `type` and `id` (`resourceKey`). */
  linkage: ReadonlyMap<string, Record<string, Linkage>>;
  /** Relationship `meta` by `type` and `id` (`resourceKey`), then relationship name (a truncated linkage). */
  relationshipMeta?: ReadonlyMap<string, Record<string, Record<string, unknown>>>;
  included: Record<string, unknown>[];
}

export const resourceKey = (type: string, id: string): string => `${type}\u0000${id}`;

function primaryObject<Row>(publicUrl: string, kind: ResourceType<Row>, row: Row, compound: Compound | undefined) {
  return jsonApiResource(publicUrl, kind, row, {
    fields: compound?.fields.get(kind.type),
    linkage: compound?.linkage.get(resourceKey(kind.type, kind.id(row))),
    relationshipMeta: compound?.relationshipMeta?.get(resourceKey(kind.type, kind.id(row))),
  });
}

export interface SendOptions {
  status?: number;
  meta?: Record<string, unknown>;
  /** Extra top-level links (JSON and JSON:API alike). */
  links?: Record<string, string>;
  /** JSON:API only: `include` and `fields[TYPE]` as api/compound.ts loaded them. */
  compound?: Compound | undefined;
}

function send(reply: FastifyReply, format: Format, status: number, document: Record<string, unknown>): FastifyReply {
  reply.code(status);
  if (format === 'jsonapi') {
    return sendJsonApi(reply, document);
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
  const data = format === 'jsonapi' ? primaryObject(publicUrl, kind, row, options.compound) : flatResource(publicUrl, kind, row);
  return send(reply, format, status, {
    data,
    ...(format === 'jsonapi' && options.compound && { included: options.compound.included }),
    links: { self, ...options.links },
    ...(options.meta && { meta: options.meta }),
  });
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
  const data = page.items.map((row) =>
    format === 'jsonapi' ? primaryObject(publicUrl, kind, row, options.compound) : flatResource(publicUrl, kind, row),
  );
  return send(reply, format, options.status ?? 200, {
    data,
    ...(format === 'jsonapi' && options.compound && { included: options.compound.included }),
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
