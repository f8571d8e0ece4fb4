import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Static, type TObject, type TProperties, type TSchema, Type } from 'typebox';
import { principalOf } from '../auth/guard.js';
import type { Principal } from '../auth/principal.js';
import type { Scope } from '../identity/scopes.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { IdParams, found, secured } from './kit.js';
import { type ResourceType, collectionSchema, envelopeSchema, sendCollection, sendNoContent, sendResource } from './documents.js';
import {
  type CompoundQuery,
  compoundQueryPatterns,
  compoundQueryProperties,
  loadCompound,
  parseCompoundQuery,
  resourceRegistry,
} from './compound.js';
import { jsonApiBody } from './json-api-body.js';
import { type PageQuery, pageQueryProperties, pageRequest, parseSort, sortQueryProperty } from './list-query.js';
import type { Page, PageRequest, Sort, SortField } from '../storage/keyset.js';

/**
 * The five routes every /v1 resource has — list, get, create, update (PATCH and PUT), delete —
 * registered the one way: `secured()` with the resource's read or write scopes, JSON:API bodies
 * flattened before validation, 404 for what the organization does not have, and the answer in
 * the negotiated representation. A module states its resource once and then only says what is
 * its own (filters, the repository calls, its rules), in the handlers it passes:
 *
 *   const locations = resourceRoutes(app, services, { path: '/v1/locations', resource: LocationResource, ... });
 *   locations.get({ summary: 'Get a location' }, ({ organizationId, id }) => findLocation(db, organizationId, id));
 *
 * Routes a resource has beyond these (a device's token rotation, a group's members) stay plain
 * `app.<method>(..., secured(...), ...)` registrations in the module.
 */

export interface ResourceDefinition<Row> {
  /** Collection path (`/v1/locations`); one resource is `<path>/:id`. */
  path: string;
  /** How a row is represented; its `type` is also the JSON:API type request bodies must carry. */
  resource: ResourceType<Row>;
  /** Documentation schema of one resource in the JSON form. */
  schema: TSchema;
  /** What a missing id is called in the 404 (`The <noun> does not exist.`). */
  noun: string;
  /** OpenAPI tags of every route. */
  tags: string[];
  /** `read` guards list and get, `write` create, update and delete. */
  scopes: { read: readonly Scope[]; write: readonly Scope[] };
  /**
   * JSON:API relationship name → flat body field (`{ location: 'location_id' }`) of request
   * bodies; by default every relationship of `resource` shown in the flat form (a body naming one
   * the route's schema does not take is refused by it, pointing at the relationship).
   */
  relationships?: Record<string, string>;
}

/** A row answered with top-level `meta` (a device's `token_shown_once`). */
export class WithMeta<Row> {
  constructor(
    readonly row: Row,
    readonly meta: Record<string, unknown>,
  ) {}
}

export interface Caller {
  principal: Principal;
  organizationId: string;
  /** The caller's address (behind TRUST_PROXY, the forwarded one): what the audit log records. */
  sourceAddress: string;
}

export interface ListInput<Query> extends Caller {
  query: Query;
  sort: Sort;
  page: PageRequest;
}

export interface IdInput extends Caller {
  id: string;
}

export interface CreateInput<Body> extends Caller {
  body: Body;
  /** For headers an answer needs (`Cache-Control: no-store` on a secret shown once). */
  reply: FastifyReply;
}

export interface UpdateInput<Body> extends IdInput {
  body: Body;
}

/** The querystring a list takes: pagination, `sort`, then the resource's own filters. */
type ListQuery<Filters extends TProperties> = Static<
  TObject<typeof pageQueryProperties & { sort: ReturnType<typeof sortQueryProperty> } & Filters>
>;

export interface ListOptions<Filters extends TProperties> {
  summary: string;
  /** The sortable fields and the default sort (`name`, `-calibrated_at`). */
  sorts: Record<string, SortField>;
  defaultSort: string;
  /** Querystring properties beyond pagination and sort (the resource's filters, `q`). */
  filters: Filters;
}

export interface CreateOptions<Body extends TSchema> {
  summary: string;
  body: Body;
  /** Documentation schema of the created resource when it shows more than `schema` (a device's token). */
  createdSchema?: TSchema;
}

export interface UpdateOptions<Body extends TSchema> {
  /** Summary of PATCH; PUT gets `putSummary`, by default the same with " (PUT, same as PATCH)". */
  summary: string;
  putSummary?: string;
  body: Body;
}

/** The caller of a request, as handlers get it (also for a resource's routes beyond the five). */
export const callerOf = (request: FastifyRequest): Caller => {
  const principal = principalOf(request);
  return { principal, organizationId: principal.organizationId, sourceAddress: request.ip };
};

export function resourceRoutes<Row>(app: App, services: AppServices, definition: ResourceDefinition<Row>) {
  const { bearer, config } = services;
  const { path, resource, schema, noun, tags, scopes } = definition;
  const itemPath = `${path}/:id`;
  const declared = Object.entries(resource.relationships ?? {}).filter(([, rel]) => !rel.jsonApiOnly);
  const bodyOptions = {
    type: resource.type,
    relationships: definition.relationships ?? Object.fromEntries(declared.map(([name, rel]) => [name, rel.field])),
    relationshipTypes: Object.fromEntries(declared.map(([name, rel]) => [name, rel.type])),
  };
  const registry = resourceRegistry(services);
  registry.register(resource, schema, scopes.read);

  /** include and fields[TYPE] of a request, with what they load for `rows`. */
  const compound = async (query: CompoundQuery | undefined, organizationId: string, rows: readonly Row[]) =>
    query && (await loadCompound({ db: services.db, organizationId, publicUrl: config.publicUrl }, registry, resource, rows, query));

  const answer = (request: FastifyRequest, reply: FastifyReply, result: Row | WithMeta<Row>, status = 200) => {
    const [row, meta] = result instanceof WithMeta ? [result.row, result.meta] : [result, undefined];
    return sendResource(config.publicUrl, request, reply, resource, row, { status, ...(meta && { meta }) });
  };

  return {
    /** `GET <path>`: a keyset page of the organization's rows, filtered and sorted. */
    list<Filters extends TProperties>(
      options: ListOptions<Filters>,
      load: (input: ListInput<ListQuery<Filters>>) => Promise<Page<Row>>,
    ): void {
      const querystring = Type.Object(
        {
          ...pageQueryProperties,
          sort: sortQueryProperty(options.sorts, options.defaultSort),
          ...compoundQueryProperties,
          ...options.filters,
        },
        { additionalProperties: false, patternProperties: compoundQueryPatterns },
      );
      app.get(
        path,
        secured(bearer, scopes.read, { tags, summary: options.summary, querystring, response: { 200: collectionSchema(schema) } }),
        async (request, reply) => {
          // Ajv has validated the query against `querystring`, whose static type this is (spelled
          // out for the pagination and sort properties, which TypeScript cannot see through the
          // generic filters).
          const query = request.query as ListQuery<Filters> & PageQuery & { sort?: string | undefined };
          const sort = parseSort(query.sort, options.sorts, options.defaultSort);
          const asked = parseCompoundQuery(request, resource.type, registry);
          const caller = callerOf(request);
          const page = await load({ ...caller, query, sort, page: pageRequest(query) });
          return sendCollection(config.publicUrl, request, reply, resource, page, {
            compound: await compound(asked, caller.organizationId, page.items),
          });
        },
      );
    },

    /** `GET <path>/:id`; `undefined` from `find` (missing or another organization's id) is a 404. */
    get(options: { summary: string }, find: (input: IdInput) => Promise<Row | undefined>): void {
      app.get(
        itemPath,
        secured(bearer, scopes.read, {
          tags,
          summary: options.summary,
          params: IdParams,
          querystring: Type.Object(compoundQueryProperties, { additionalProperties: false, patternProperties: compoundQueryPatterns }),
          response: { 200: envelopeSchema(schema) },
        }),
        async (request, reply) => {
          const asked = parseCompoundQuery(request, resource.type, registry);
          const caller = callerOf(request);
          const row = found(await find({ ...caller, id: request.params.id }), noun);
          return sendResource(config.publicUrl, request, reply, resource, row, {
            compound: await compound(asked, caller.organizationId, [row]),
          });
        },
      );
    },

    /** `POST <path>`: answers 201 with `Location`. */
    create<Body extends TSchema>(
      options: CreateOptions<Body>,
      insert: (input: CreateInput<Static<Body>>) => Promise<Row | WithMeta<Row>>,
    ): void {
      if (options.createdSchema) registry.register(resource, options.createdSchema, scopes.read);
      app.post(
        path,
        {
          ...secured(bearer, scopes.write, {
            tags,
            summary: options.summary,
            body: options.body,
            response: { 201: envelopeSchema(options.createdSchema ?? schema) },
          }),
          preValidation: jsonApiBody(bodyOptions),
        },
        async (request, reply) => {
          // Ajv has validated the (flattened) body against `options.body`.
          const body = request.body as Static<Body>;
          return answer(request, reply, await insert({ ...callerOf(request), body, reply }), 201);
        },
      );
    },

    /** `PATCH` and `PUT <path>/:id`, the same partial update (Sensorberg sends PUT); `undefined` is a 404. */
    update<Body extends TSchema>(
      options: UpdateOptions<Body>,
      change: (input: UpdateInput<Static<Body>>) => Promise<Row | undefined>,
    ): void {
      for (const method of ['patch', 'put'] as const) {
        app[method](
          itemPath,
          {
            ...secured(bearer, scopes.write, {
              tags,
              summary: method === 'patch' ? options.summary : (options.putSummary ?? `${options.summary} (PUT, same as PATCH)`),
              params: IdParams,
              body: options.body,
              response: { 200: envelopeSchema(schema) },
            }),
            preValidation: jsonApiBody({ ...bodyOptions, idParam: 'id' }),
          },
          async (request, reply) => {
            const body = request.body as Static<Body>;
            const row = found(await change({ ...callerOf(request), id: request.params.id, body }), noun);
            return answer(request, reply, row);
          },
        );
      }
    },

    /** `DELETE <path>/:id`: 204, or 404 when `remove` resolves false (nothing of the organization had that id). */
    remove(options: { summary: string }, remove: (input: IdInput) => Promise<boolean>): void {
      app.delete(
        itemPath,
        secured(bearer, scopes.write, { tags, summary: options.summary, params: IdParams, response: { 204: Type.Null() } }),
        async (request, reply) => {
          found((await remove({ ...callerOf(request), id: request.params.id })) || undefined, noun);
          return sendNoContent(reply);
        },
      );
    },
  };
}
