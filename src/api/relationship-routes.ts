import type { FastifyReply, FastifyRequest } from 'fastify';
import { type TSchema, Type } from 'typebox';
import { principalOf } from '../auth/guard.js';
import type { Scope } from '../identity/scopes.js';
import type { App, AppServices } from '../server/context.js';
import {
  INCLUDE_LIMIT,
  type ServedResource,
  compoundQueryPatterns,
  compoundQueryProperties,
  loadCompound,
  loadRelated,
  parseCompoundQuery,
  resourceRegistry,
  truncatedMeta,
} from './compound.js';
import {
  type RelationshipDef,
  type ResourceType,
  relationshipLinks,
  resourceIdentifiers,
  sendCollection,
  sendDocument,
  sendResource,
} from './documents.js';
import { relationshipBody } from './json-api-body.js';
import { IdParams, Nullable, found, secured } from './kit.js';
import { requestUrl } from './links.js';

/**
 * The endpoints a JSON:API relationship object links to (JSON:API 1.1 §"Fetching Relationships",
 * §"Updating Relationships"), for every relationship with a loader of every resource that
 * resource-routes.ts serves:
 *
 * - `GET <resource>/relationships/<name>` (the relationship's `links.self`): its linkage as
 *   resource identifier objects.
 * - `GET <resource>/<name>` (its `links.related`, unless the definition links to a list route of
 *   its own): the related resources as primary data, with `include` and `fields[TYPE]`.
 * - `PATCH <resource>/relationships/<name>` where the resource's update takes the relationship's
 *   field (complete replacement; a to-one may be emptied with null), and `POST`/`DELETE` on the
 *   to-many relationships whose module adds and removes members one by one (a group's users and
 *   sensors). Any other write is 405 with `Allow`: the relationship is changed elsewhere (a
 *   sensor moves by its own `device`) or not at all (an alarm's comments).
 *
 * Both reads load with the relationship's include loader: one statement whatever its size, at
 * most `INCLUDE_LIMIT` of a to-many relationship (then `meta.truncated`; `links.related` has all).
 * Registered once every module has registered its resources (server/app.ts), so the related
 * endpoint can require and document the related type's read scopes as `include` does.
 */

const Identifier = Type.Object({ type: Type.String(), id: Type.String() });
const relationshipDocument = (many: boolean) =>
  Type.Object(
    {
      data: many ? Type.Array(Identifier) : Nullable(Identifier),
      links: Type.Object({ self: Type.String({ format: 'uri' }), related: Type.Optional(Type.String({ format: 'uri' })) }),
      meta: Type.Optional(
        Type.Object(
          { truncated: Type.Boolean(), limit: Type.Integer() },
          { description: `Present when the linkage shows only the first ${INCLUDE_LIMIT}: links.related has them all.` },
        ),
      ),
    },
    {
      description:
        'A JSON:API relationship document: the linkage as resource identifier objects (the same in either media type), ' +
        `at most ${INCLUDE_LIMIT} of a to-many relationship.`,
    },
  );

/** Registers the relationship endpoints of every served resource; called once, after every module. */
export function serveRelationships(app: App, services: AppServices): void {
  const registry = resourceRegistry(services);
  for (const { resource, readScopes, served } of registry.all()) {
    if (!served) continue;
    for (const [name, rel] of Object.entries(resource.relationships ?? {})) {
      if (rel.include) relationshipRoutes(app, services, { resource, readScopes, served, name, rel });
    }
  }
}

interface RelationshipRoute {
  resource: ResourceType<unknown>;
  readScopes: readonly Scope[];
  served: ServedResource;
  name: string;
  rel: RelationshipDef<unknown>;
}

function relationshipRoutes(app: App, services: AppServices, route: RelationshipRoute): void {
  const { bearer, config, db } = services;
  const { resource, readScopes, served, name, rel } = route;
  const registry = resourceRegistry(services);
  const { noun, tags } = served;
  const selfPath = `${served.itemPath}/relationships/${name}`;
  const params = served.itemPath.includes(':id') ? { params: IdParams } : {};
  const many = rel.many === true;

  /** The relationship document of `row`, loaded by its include loader. */
  const sendLinkage = async (request: FastifyRequest, reply: FastifyReply, row: unknown) => {
    const { organizationId } = principalOf(request);
    const loaded = await loadRelated({ db, organizationId }, registry, resource, [row], name);
    const linkage = loaded?.linkage.get(resource.id(row)) ?? rel.get(row) ?? (many ? [] : null);
    return sendDocument(request, reply, {
      data: resourceIdentifiers(rel.type, linkage),
      links: relationshipLinks(config.publicUrl, resource, row, name),
      ...(loaded?.truncated.has(resource.id(row)) && { meta: truncatedMeta() }),
    });
  };

  app.get(
    selfPath,
    secured(bearer, readScopes, {
      tags,
      summary: `The ${name} of a ${noun}, as resource identifier objects (JSON:API relationship)`,
      ...params,
      querystring: Type.Object({}, { additionalProperties: false }),
      response: { 200: relationshipDocument(many) },
    }),
    async (request, reply) => sendLinkage(request, reply, found(await served.find(request), noun)),
  );

  const target = registry.get(rel.type);
  if (!rel.related && target) {
    // Reading them takes what listing them takes, as including them does.
    const scopes = [...new Set([...readScopes, ...target.readScopes])];
    app.get(
      `${served.itemPath}/${name}`,
      secured(bearer, scopes, {
        tags,
        summary: `The ${name} of a ${noun} (JSON:API related resources)`,
        ...params,
        querystring: Type.Object(compoundQueryProperties, { additionalProperties: false, patternProperties: compoundQueryPatterns }),
      }),
      async (request, reply) => {
        const row = found(await served.find(request), noun);
        const asked = parseCompoundQuery(request, rel.type, registry);
        const { organizationId } = principalOf(request);
        const loaded = await loadRelated({ db, organizationId }, registry, resource, [row], name);
        const linkage = loaded?.linkage.get(resource.id(row)) ?? null;
        const ids = linkage === null ? [] : Array.isArray(linkage) ? linkage : [linkage as string];
        const rows = ids.map((id) => loaded?.rows.get(id));
        const context = { db, organizationId, publicUrl: config.publicUrl };
        const compound = asked && (await loadCompound(context, registry, target.resource, rows, asked));
        if (many) {
          const meta = loaded?.truncated.has(resource.id(row)) ? truncatedMeta() : undefined;
          return sendCollection(
            config.publicUrl,
            request,
            reply,
            target.resource,
            { items: rows, nextCursor: undefined },
            { compound, ...(meta && { meta }) },
          );
        }
        const self = requestUrl(config.publicUrl, request);
        if (rows.length === 0) return sendDocument(request, reply, { data: null, links: { self } });
        return sendResource(config.publicUrl, request, reply, target.resource, rows[0], { compound, links: { self } });
      },
    );
  }

  // Writes go through what the resource's own API does, with its rules and its refusals.
  const field = served.update && !rel.jsonApiOnly ? propertyOf(served.update.body, rel.field) : undefined;
  const members = many ? served.members?.[name] : undefined;
  const body = Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    properties: { [rel.field]: field ?? Type.Array(Type.String({ format: 'uuid' }), { maxItems: 10_000 }) },
    required: [rel.field],
    additionalProperties: false,
  });
  const writeOptions = (summary: string) => ({
    ...secured(bearer, served.writeScopes, { tags, summary, ...params, body, response: { 200: relationshipDocument(many) } }),
    preValidation: relationshipBody({ name, field: rel.field, type: rel.type, many }),
  });
  if (field && served.update) {
    const { change } = served.update;
    app.patch(
      selfPath,
      writeOptions(
        many ? `Replace the ${name} of a ${noun} (JSON:API relationship)` : `Set or empty the ${name} of a ${noun} (JSON:API relationship)`,
      ),
      async (request, reply) => sendLinkage(request, reply, found(await change(request, request.body), noun)),
    );
  }
  if (members) {
    for (const [method, verb] of [
      ['post', 'Add'],
      ['delete', 'Remove'],
    ] as const) {
      const change = method === 'post' ? members.add : members.remove;
      app[method](selfPath, writeOptions(`${verb} ${name} of a ${noun} (JSON:API relationship)`), async (request, reply) => {
        const ids = request.body[rel.field] as string[];
        found((await change(request, ids)) || undefined, noun);
        return sendLinkage(request, reply, found(await served.find(request), noun));
      });
    }
  }
}

/** The schema of a property of an object schema, if it has one. */
function propertyOf(schema: TSchema, name: string): TSchema | undefined {
  return (schema as { properties?: Record<string, TSchema> }).properties?.[name];
}
