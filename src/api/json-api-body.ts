import type { preValidationAsyncHookHandler } from 'fastify';
import { HttpProblem, badRequest, jsonApiBodyPointers } from '../http/problem.js';
import { isJsonApiBody } from './negotiation.js';

/**
 * Request bodies of `/v1`: flat JSON, or a JSON:API document (`{data: {type, id, attributes,
 * relationships}}`) which `jsonApiBody()` flattens before validation, so a route has one schema.
 */

export interface BodyOptions {
  /** The JSON:API type the document must carry (409 otherwise, per the spec). */
  type: string;
  /** Maps relationship names to flat fields: `{ location: 'location_id', sensors: 'sensor_ids' }`. */
  relationships?: Record<string, string>;
  /** The JSON:API type each relationship's linkage must carry (409 otherwise); unchecked when absent. */
  relationshipTypes?: Record<string, string>;
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

/** `jsonApiBody` for a route whose whole body is optional: no body at all is validated as `{}`. */
export function optionalJsonApiBody(options: BodyOptions): preValidationAsyncHookHandler {
  const flatten = jsonApiBody(options);
  return async function (request, reply) {
    if (request.body === undefined || request.body === null) request.body = {};
    else await flatten.call(this, request, reply);
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
      flat[field] = linkageIds(name, linkage, options.relationshipTypes?.[name], `/body/data/relationships/${name}/data`);
    }
  }
  return flat;
}

/**
 * The ids of a relationship's linkage (`{type, id}`, an array of them, or null) found at `pointer`
 * of the body: 400 for what is not linkage, 409 for resources of another type than `expectedType`.
 */
export function linkageIds(name: string, linkage: unknown, expectedType: string | undefined, pointer: string): unknown {
  const idOf = (item: unknown, at: string): unknown => {
    if (!item || typeof item !== 'object' || Array.isArray(item))
      throw badRequest(`Relationship "${name}" needs resource identifier objects.`, [
        { pointer: at, detail: 'a resource identifier object {type, id} is required' },
      ]);
    const { type, id } = item as { type?: unknown; id?: unknown };
    if (typeof type !== 'string')
      throw badRequest(`Relationship "${name}": type is required.`, [{ pointer: `${at}/type`, detail: 'type is required' }]);
    if (expectedType !== undefined && type !== expectedType) {
      throw new HttpProblem({
        status: 409,
        detail: `Relationship "${name}" takes resources of type "${expectedType}", got "${type}".`,
        errors: [{ pointer: `${at}/type`, detail: `type must be "${expectedType}"` }],
      });
    }
    return id;
  };
  if (linkage === null) return null;
  if (Array.isArray(linkage)) return linkage.map((item, i) => idOf(item, `${pointer}/${i}`));
  if (linkage && typeof linkage === 'object') return idOf(linkage, pointer);
  throw badRequest(`Relationship "${name}" needs "data".`, [{ pointer, detail: 'data is required' }]);
}

/**
 * preValidation hook of a relationship endpoint's writes (api/relationship-routes.ts): a JSON:API
 * relationship document `{data: linkage}` (in either media type) becomes the flat body
 * `{<field>: ids}` the resource's update takes, which is also what the route documents and takes
 * from JSON clients; errors about that field then point back at `/data`.
 */
export function relationshipBody(options: { name: string; field: string; type: string; many: boolean }): preValidationAsyncHookHandler {
  const flatPointer = `/body/${options.field}`;
  const remap = (pointer: string): string =>
    pointer.startsWith(flatPointer) ? `/data${pointer.slice(flatPointer.length)}` : pointer.replace(/^\/body/, '') || '/';
  return async (request) => {
    const body = request.body as Record<string, unknown> | null | undefined;
    const isDocument = body !== null && typeof body === 'object' && !Array.isArray(body) && 'data' in body;
    if (!isDocument && !isJsonApiBody(request)) return;
    const linkage = isDocument ? body.data : undefined;
    if (linkage === undefined || Array.isArray(linkage) !== options.many || (options.many && linkage === null)) {
      const detail = options.many
        ? 'data must be an array of resource identifier objects'
        : 'data must be a resource identifier object or null';
      throw badRequest(`The body of a relationship is {"data": …}: ${detail}.`, [{ pointer: '/body/data', detail }]);
    }
    request.body = { [options.field]: linkageIds(options.name, linkage, options.type, '/body/data') };
    jsonApiBodyPointers.set(request, remap);
  };
}
