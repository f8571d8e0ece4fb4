import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { type Scope, hasScopes } from '../identity/scopes.js';
import { type BearerAuthenticator, insufficientScope } from './bearer.js';
import type { Principal } from './principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/**
 * Route options for a protected route: the bearer check, the scope check (403
 * insufficient_scope), and the OpenAPI security entry naming the scopes, all from one list.
 *
 *   app.get('/v1/devices', { ...protect(bearer, ['devices:read']), schema: {...} }, handler)
 */
export function protect(bearer: BearerAuthenticator, scopes: readonly Scope[]) {
  const onRequest: onRequestAsyncHookHandler = async (request) => {
    const principal = await bearer.authenticate(request);
    if (!hasScopes(principal.scopes, scopes)) throw insufficientScope(scopes);
    request.principal = principal;
  };
  return { onRequest, config: { scopes } };
}

/** OpenAPI fragment for a protected route; spread into the route's schema. */
export function securitySchema(scopes: readonly Scope[]) {
  return {
    security: [{ bearer: [...scopes] }],
    'x-required-scopes': [...scopes],
  };
}

/** The authenticated principal of a route declared with `protect`. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principalOf() used on a route without protect()');
  return request.principal;
}
