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
      const pointer = `/body/data/relationships/${name}/data`;
      const idOf = (item: unknown, at: string): unknown => {
        if (!item || typeof item !== 'object' || Array.isArray(item))
          throw badRequest(`Relationship "${name}" needs resource identifier objects.`, [
            { pointer: at, detail: 'a resource identifier object {type, id} is required' },
          ]);
        const { type, id } = item as { type?: unknown; id?: unknown };
        const expected = options.relationshipTypes?.[name];
        if (typeof type !== 'string')
          throw badRequest(`Relationship "${name}": type is required.`, [{ pointer: `${at}/type`, detail: 'type is required' }]);
        if (expected !== undefined && type !== expected) {
          throw new HttpProblem({
            status: 409,
            detail: `Relationship "${name}" takes resources of type "${expected}", got "${type}".`,
            errors: [{ pointer: `${at}/type`, detail: `type must be "${expected}"` }],
          });
        }
        return id;
      };
      if (linkage === null) flat[field] = null;
      else if (Array.isArray(linkage)) flat[field] = linkage.map((item, i) => idOf(item, `${pointer}/${i}`));
      else if (linkage && typeof linkage === 'object') flat[field] = idOf(linkage, pointer);
      else throw badRequest(`Relationship "${name}" needs "data".`, [{ pointer, detail: 'data is required' }]);
    }
  }
  return flat;
}
