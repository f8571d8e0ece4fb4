import type { FastifyRequest } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { insufficientScope } from '../auth/bearer.js';
import { principalOf } from '../auth/guard.js';
import { type Scope, hasScopes } from '../identity/scopes.js';
import { badRequest } from '../http/problem.js';
import type { Db } from '../storage/database.js';
import { type Compound, type Linkage, type ResourceType, jsonApiResource, resourceKey } from './documents.js';
import { type Format, negotiate } from './negotiation.js';

/**
 * JSON:API compound documents and sparse fieldsets (JSON:API 1.1 §"Inclusion of Related
 * Resources", §"Sparse Fieldsets"), for every resource the kit serves:
 *
 * - `include=location,sensors.calibrations`: relationship paths, each segment a relationship of
 *   the type before it that declares a loader (`RelationshipDef.include`). Each path segment is
 *   loaded once for all the rows at its level: one statement per segment whatever the number of
 *   rows. `included` holds each resource once (and none of the primary data), and every included
 *   resource is reached by linkage from the primary data (full linkage).
 * - `fields[TYPE]=a,b`: only those attributes and relationships for resources of that type, in
 *   primary data and in `included`. An unknown type, field or path is 400 naming the parameter.
 *
 * Both are JSON:API parameters: asked of the JSON representation (a contract that has neither)
 * they are refused with 400 rather than ignored.
 *
 * A to-many relationship loaded by its owners (a webhook's deliveries, an alarm's comments, a
 * group's members) shows at most `INCLUDE_LIMIT` related resources per owner, the first in the
 * relationship's order (the newest deliveries, the oldest comments): its linkage is then cut
 * there, and the relationship object says so in `meta` (`truncated`, `limit`) while its
 * `links.related` leads to the paged list of all of them. This holds for `include` and for the
 * relationship endpoints (api/relationship-routes.ts) alike, so no request loads a relationship
 * whole, however long it grows.
 *
 * Resources are found by their JSON:API type in a registry per application: resource-routes.ts
 * registers every resource it serves (with its documentation schema, whose properties name the
 * fields), so a relationship names its related type and never imports the other resource.
 */

interface Registered {
  resource: ResourceType<unknown>;
  /** What reading it takes: including it asks the caller for the same scopes as listing it. */
  readScopes: readonly Scope[];
  /** Attribute and relationship names, for `fields[TYPE]`. */
  fields: Set<string>;
  /** Where one resource of the type is served, for its relationship endpoints (api/relationship-routes.ts). */
  served?: ServedResource;
}

/** What a to-many relationship's POST and DELETE (add, remove members) do; false: no such resource. */
export interface MemberChanges {
  add(request: FastifyRequest, ids: string[]): Promise<boolean>;
  remove(request: FastifyRequest, ids: string[]): Promise<boolean>;
}

/**
 * One resource of a type as resource-routes.ts serves it (`/v1/devices/:id`, `/v1/me`): what its
 * relationship endpoints need to find it and, where the resource's API can, change them.
 */
export interface ServedResource {
  itemPath: string;
  noun: string;
  tags: string[];
  /** Write scopes of the resource (the relationship writes need them). */
  writeScopes: readonly Scope[];
  /** The resource the request's path names; undefined is a 404 (missing, or another organization's). */
  find(request: FastifyRequest): Promise<unknown>;
  /** Its update (PATCH): the flat body schema and the change, which a relationship's PATCH goes through. */
  update?: { body: TSchema; change(request: FastifyRequest, body: Record<string, unknown>): Promise<unknown> };
  /** To-many relationships whose members are added and removed one by one, by name. */
  members?: Record<string, MemberChanges>;
}

export class ResourceRegistry {
  readonly #types = new Map<string, Registered>();

  /** Adds a resource; the properties of `schema` (its flat JSON form) name its attributes. */
  register<Row>(resource: ResourceType<Row>, schema: TSchema, readScopes: readonly Scope[]): void {
    const relationships = resource.relationships ?? {};
    const flatOnly = new Set(['id', 'links', ...Object.values(relationships).map((rel) => rel.field)]);
    const properties = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
    const entry = this.#types.get(resource.type) ?? {
      resource: resource as ResourceType<unknown>,
      readScopes,
      fields: new Set<string>(),
    };
    for (const name of properties) if (!flatOnly.has(name)) entry.fields.add(name);
    for (const name of Object.keys(relationships)) entry.fields.add(name);
    this.#types.set(resource.type, entry);
  }

  get(type: string): Registered | undefined {
    return this.#types.get(type);
  }

  /** Records where resources of a registered type are served. */
  serve(type: string, served: ServedResource): void {
    const entry = this.#types.get(type);
    if (entry) entry.served = served;
  }

  /** Every registered type. */
  all(): Registered[] {
    return [...this.#types.values()];
  }
}

const registries = new WeakMap<object, ResourceRegistry>();

/** The registry of one application, keyed by its services object (one per buildApp). */
export function resourceRegistry(owner: object): ResourceRegistry {
  let registry = registries.get(owner);
  if (!registry) {
    registry = new ResourceRegistry();
    registries.set(owner, registry);
  }
  return registry;
}

/**
 * A `byOwners` loader's answer from rows that carry their owner's id in `column` (a sensor's
 * `device_id`, or the group a joined row was found through).
 */
export function ownedBy<Row>(rows: readonly Row[], column: keyof Row & string): { owner: string; row: Row }[] {
  return rows.map((row) => ({ owner: row[column] as string, row }));
}

/** Querystring properties of the routes that serve compound documents (list and get). */
export const compoundQueryProperties = {
  include: Type.Optional(
    Type.String({
      maxLength: 1000,
      description:
        'JSON:API only: comma-separated relationship paths to include (compound document), e.g. `location,sensors.calibrations`.',
    }),
  ),
};

/** `fields[TYPE]`: a family of parameters, declared as pattern properties of the querystring schema. */
export const FIELDS_PARAMETER = /^fields\[([^\][]+)\]$/;
export const compoundQueryPatterns = {
  [FIELDS_PARAMETER.source]: Type.String({
    maxLength: 2000,
    description: 'JSON:API only: sparse fieldset, `fields[TYPE]=a,b`.',
  }),
};

/** A parsed `include`: relationship name → the paths below it. */
export type IncludeTree = Map<string, IncludeTree>;

export interface CompoundQuery {
  include: IncludeTree;
  fields: Map<string, Set<string>>;
}

const refuse = (parameter: string, detail: string) => badRequest(detail, [{ pointer: `/query/${parameter}`, detail }]);

/**
 * Reads and checks `include` and `fields[TYPE]` of a request for resources of `type`; undefined
 * when it has neither. Throws 400 (naming the parameter) for what cannot be served, and 403 when
 * the caller may not read a type it asks to include (`alarms?include=sensor` needs devices:read).
 */
export function parseCompoundQuery(request: FastifyRequest, type: string, registry: ResourceRegistry): CompoundQuery | undefined {
  const query = (request.query ?? {}) as Record<string, unknown>;
  const names = Object.keys(query).filter((name) => name === 'include' || FIELDS_PARAMETER.test(name));
  if (names.length === 0) return undefined;
  const format: Format = negotiate(request);
  if (format !== 'jsonapi') {
    throw refuse(
      names[0]!,
      `${names.join(', ')}: include and fields[TYPE] are JSON:API parameters; ask for Accept: application/vnd.api+json.`,
    );
  }

  const include: IncludeTree = new Map();
  const rawInclude = query.include;
  if (typeof rawInclude === 'string' && rawInclude !== '') {
    for (const path of rawInclude.split(',')) {
      let current = registry.get(type);
      let node = include;
      const segments = path.trim().split('.');
      for (const [depth, segment] of segments.entries()) {
        const rel = current?.resource.relationships?.[segment];
        const shown = segments.slice(0, depth + 1).join('.');
        if (!rel) throw refuse('include', `"${shown}" is not a relationship path of ${type}.`);
        if (!rel.include) throw refuse('include', `"${shown}" cannot be included; follow its links.related.`);
        current = registry.get(rel.type);
        if (!current) throw refuse('include', `"${shown}" cannot be included.`);
        if (!hasScopes(principalOf(request).scopes, current.readScopes)) throw insufficientScope(current.readScopes);
        let child = node.get(segment);
        if (!child) {
          child = new Map();
          node.set(segment, child);
        }
        node = child;
      }
    }
  }

  const fields = new Map<string, Set<string>>();
  for (const name of names) {
    const fieldType = FIELDS_PARAMETER.exec(name)?.[1];
    if (fieldType === undefined) continue;
    const known = registry.get(fieldType);
    if (!known) throw refuse(name, `${name}: there is no resource type "${fieldType}".`);
    const value = query[name];
    if (typeof value !== 'string') throw refuse(name, `${name} must be given once, as a comma-separated list.`);
    const chosen = new Set(
      value
        .split(',')
        .map((field) => field.trim())
        .filter((field) => field !== ''),
    );
    const unknown = [...chosen].filter((field) => !known.fields.has(field));
    if (unknown.length > 0) {
      throw refuse(name, `${name}: ${unknown.join(', ')} ${unknown.length > 1 ? 'are not fields' : 'is not a field'} of ${fieldType}.`);
    }
    fields.set(fieldType, chosen);
  }
  return { include, fields };
}

interface Loaded {
  kind: ResourceType<unknown>;
  row: unknown;
}

/** At most this many related resources of one owner in a to-many relationship's linkage (see above). */
export const INCLUDE_LIMIT = 100;

/** The `meta` of a relationship object whose linkage was cut at `INCLUDE_LIMIT`. */
export const truncatedMeta = (): Record<string, unknown> => ({ truncated: true, limit: INCLUDE_LIMIT });

/** What one relationship of some rows leads to: the related rows and each owner's linkage to them. */
export interface RelatedRows {
  kind: ResourceType<unknown>;
  /** By id, in the loader's order. */
  rows: Map<string, unknown>;
  /** By owner id; owners whose linkage is not known (the relationship left out) are absent. */
  linkage: Map<string, Linkage>;
  /** Owners whose linkage was cut at `INCLUDE_LIMIT`: they have more. */
  truncated: Set<string>;
}

/**
 * Loads relationship `name` of `owners` (rows of `ownerKind`) with its loader: one statement for
 * all of them. Undefined when the relationship has no loader or its type is not served. The
 * linkage names only rows found: linkage to what does not exist (any more) would break full linkage.
 */
export async function loadRelated(
  context: { db: Db; organizationId: string },
  registry: ResourceRegistry,
  ownerKind: ResourceType<unknown>,
  owners: readonly unknown[],
  name: string,
): Promise<RelatedRows | undefined> {
  const rel = ownerKind.relationships?.[name];
  const kind = rel && registry.get(rel.type)?.resource;
  if (!rel?.include || !kind) return undefined;
  const rows = new Map<string, unknown>();
  const linkage = new Map<string, Linkage>();
  const truncated = new Set<string>();
  if ('byIds' in rel.include) {
    // The row carries its linkage (ids); a to-many one is cut at the bound before loading.
    const idsOf = (owner: unknown): Linkage | undefined => {
      const value = rel.get(owner);
      if (!Array.isArray(value) || value.length <= INCLUDE_LIMIT) return value;
      truncated.add(ownerKind.id(owner));
      return value.slice(0, INCLUDE_LIMIT);
    };
    const ids = new Set<string>();
    for (const owner of owners) {
      const value = idsOf(owner);
      if (typeof value === 'string') ids.add(value);
      else if (Array.isArray(value)) for (const id of value) ids.add(id);
    }
    if (ids.size > 0) {
      for (const row of await rel.include.byIds(context.db, context.organizationId, [...ids])) rows.set(kind.id(row), row);
    }
    for (const owner of owners) {
      const value = idsOf(owner);
      if (value === undefined) continue;
      linkage.set(
        ownerKind.id(owner),
        Array.isArray(value) ? value.filter((id) => rows.has(id)) : value !== null && rows.has(value as string) ? value : null,
      );
    }
  } else {
    const ids = owners.map((owner) => ownerKind.id(owner));
    const byOwner = new Map<string, string[]>(ids.map((id) => [id, []]));
    if (ids.length > 0) {
      // One more than the bound: an owner that has it has more than the linkage shows.
      for (const { owner, row } of await rel.include.byOwners(context.db, context.organizationId, ids, INCLUDE_LIMIT + 1)) {
        const related = byOwner.get(owner);
        if (!related) continue;
        if (related.length === INCLUDE_LIMIT) {
          truncated.add(owner);
          continue;
        }
        const id = kind.id(row);
        rows.set(id, row);
        related.push(id);
      }
    }
    for (const [owner, related] of byOwner) linkage.set(owner, rel.many ? related : (related[0] ?? null));
  }
  return { kind, rows, linkage, truncated };
}

/**
 * Loads what `query.include` names for the primary rows, level by level: every segment of the
 * include tree is one loader call (one statement) for all the rows at its level.
 */
export async function loadCompound<Row>(
  context: { db: Db; organizationId: string; publicUrl: string },
  registry: ResourceRegistry,
  kind: ResourceType<Row>,
  rows: readonly Row[],
  query: CompoundQuery,
): Promise<Compound> {
  const linkage = new Map<string, Record<string, Linkage>>();
  const relationshipMeta = new Map<string, Record<string, Record<string, unknown>>>();
  const primary = new Set(rows.map((row) => resourceKey(kind.type, kind.id(row))));
  const included = new Map<string, Loaded>();

  const level = async (levelKind: ResourceType<unknown>, levelRows: readonly unknown[], tree: IncludeTree): Promise<void> => {
    for (const [name, subtree] of tree) {
      const loaded = await loadRelated(context, registry, levelKind, levelRows, name);
      if (!loaded) continue; // parseCompoundQuery refused these
      for (const [owner, value] of loaded.linkage) {
        const key = resourceKey(levelKind.type, owner);
        linkage.set(key, { ...linkage.get(key), [name]: value });
      }
      for (const owner of loaded.truncated) {
        const key = resourceKey(levelKind.type, owner);
        relationshipMeta.set(key, { ...relationshipMeta.get(key), [name]: truncatedMeta() });
      }
      for (const [id, row] of loaded.rows) {
        const key = resourceKey(loaded.kind.type, id);
        if (!primary.has(key) && !included.has(key)) included.set(key, { kind: loaded.kind, row });
      }
      if (subtree.size > 0) await level(loaded.kind, [...loaded.rows.values()], subtree);
    }
  };

  await level(kind as ResourceType<unknown>, rows, query.include);
  return {
    fields: query.fields,
    linkage,
    relationshipMeta,
    included: [...included.entries()].map(([key, { kind: relatedKind, row }]) =>
      jsonApiResource(context.publicUrl, relatedKind, row, {
        fields: query.fields.get(relatedKind.type),
        linkage: linkage.get(key),
        relationshipMeta: relationshipMeta.get(key),
      }),
    ),
  };
}
