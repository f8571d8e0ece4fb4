import { type Static, type TSchema, Type } from 'typebox';
import type { BearerAuthenticator } from '../auth/bearer.js';
import { protect, securitySchema } from '../auth/guard.js';
import type { Scope } from '../identity/scopes.js';
import { notFound } from '../http/problem.js';

/** Small helpers shared by the /v1 route modules. */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scopes a protected route requires (set by protect()); the tenancy and OpenAPI tests read it. */
    scopes?: readonly Scope[];
  }
}

/**
 * A value of `schema`'s type or null, as one JSON Schema type array (`["string", "null"]`). Unlike
 * anyOf, a type array is safe with Ajv's type coercion: `0` stays 0, `null` stays null.
 */
export function Nullable<T extends TSchema>(schema: T) {
  const raw = schema as unknown as Record<string, unknown>;
  const { type, ...rest } = raw;
  return Type.Unsafe<Static<T> | null>({ ...rest, type: [type as string, 'null'] });
}

/** Route options for a protected /v1 route (`{ ...secured(bearer, scopes, schema) }`): the bearer + scope check and the OpenAPI security entry. */
export function secured<S extends Record<string, unknown>>(bearer: BearerAuthenticator, scopes: readonly Scope[], schema: S) {
  return { ...protect(bearer, scopes), schema: { ...schema, ...securitySchema(scopes) } };
}

export const IdParams = Type.Object({ id: Type.String({ maxLength: 100, description: 'Resource id (UUID).' }) });

export const iso = (value: Date | null | undefined): string | null => (value ? value.toISOString() : null);

/** Throws 404 unless the value exists (a foreign id is as absent as a missing one). */
export function found<T>(value: T | undefined | null, what = 'resource'): T {
  if (value === undefined || value === null) throw notFound(`The ${what} does not exist.`);
  return value;
}

export const Text = (options: { maxLength?: number; minLength?: number; description?: string } = {}) =>
  Type.String({
    minLength: options.minLength ?? 1,
    maxLength: options.maxLength ?? 200,
    ...(options.description && { description: options.description }),
  });

export const Timestamp = (description?: string) => Type.String({ format: 'date-time', ...(description && { description }) });

/** Querystring `q`: case-insensitive substring search. */
export const SearchQuery = Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Case-insensitive substring search.' }));
