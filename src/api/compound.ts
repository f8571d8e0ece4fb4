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
  const primary = new Set(rows.map((row) => resourceKey(kind.type, kind.id(row))));
  const included = new Map<string, Loaded>();

  const level = async (levelKind: ResourceType<unknown>, levelRows: readonly unknown[], tree: IncludeTree): Promise<void> => {
    for (const [name, subtree] of tree) {
      const rel = levelKind.relationships?.[name];
      const relatedKind = rel && registry.get(rel.type)?.resource;
      if (!rel?.include || !relatedKind) continue; // parseCompoundQuery refused these
      const related = new Map<string, unknown>();
      if ('byIds' in rel.include) {
        const ids = new Set<string>();
        for (const row of levelRows) {
          const value = rel.get(row);
          if (typeof value === 'string') ids.add(value);
          else if (Array.isArray(value)) for (const id of value) ids.add(id);
        }
        if (ids.size > 0) {
          for (const row of await rel.include.byIds(context.db, context.organizationId, [...ids])) related.set(relatedKind.id(row), row);
        }
        // Linkage to what does not exist (any more) would break full linkage: only ids found.
        for (const row of levelRows) {
          const value = rel.get(row);
          if (value === undefined) continue;
          const shown = Array.isArray(value)
            ? value.filter((id) => related.has(id))
            : value !== null && related.has(value as string)
              ? value
              : null;
          setLinkage(levelKind, row, name, shown);
        }
      } else {
        const owners = levelRows.map((row) => levelKind.id(row));
        const byOwner = new Map<string, string[]>(owners.map((owner) => [owner, []]));
        if (owners.length > 0) {
          for (const { owner, row } of await rel.include.byOwners(context.db, context.organizationId, owners)) {
            const id = relatedKind.id(row);
            related.set(id, row);
            byOwner.get(owner)?.push(id);
          }
        }
        for (const row of levelRows) {
          const ids = byOwner.get(levelKind.id(row)) ?? [];
          setLinkage(levelKind, row, name, rel.many ? ids : (ids[0] ?? null));
        }
      }
      for (const [id, row] of related) {
        const key = resourceKey(relatedKind.type, id);
        if (!primary.has(key) && !included.has(key)) included.set(key, { kind: relatedKind, row });
      }
      if (subtree.size > 0) await level(relatedKind, [...related.values()], subtree);
    }
  };

  const setLinkage = (levelKind: ResourceType<unknown>, row: unknown, name: string, value: Linkage) => {
    const key = resourceKey(levelKind.type, levelKind.id(row));
    const entry = linkage.get(key) ?? {};
    entry[name] = value;
    linkage.set(key, entry);
  };

  await level(kind as ResourceType<unknown>, rows, query.include);
  return {
    fields: query.fields,
    linkage,
    included: [...included.entries()].map(([key, { kind: relatedKind, row }]) =>
      jsonApiResource(context.publicUrl, relatedKind, row, {
        fields: query.fields.get(relatedKind.type),
        linkage: linkage.get(key),
      }),
    ),
  };
}
