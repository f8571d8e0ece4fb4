import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type FieldError, badRequest } from './problem.js';

/**
 * The input boundary every route inherits: what PostgreSQL cannot hold faithfully never gets past
 * it, whatever the route, the media type (JSON, JSON:API, form) or the place (path, query, body).
 *
 * - U+0000: PostgreSQL's text types refuse it (SQLSTATE 22021), which would surface as a 500.
 * - Lone surrogates (half of a UTF-16 pair): encoding them as UTF-8 silently turns them into
 *   U+FFFD, so what is stored would differ from what was sent.
 * - Nesting deeper than MAX_DEPTH: no request of this API is that deep; walking (and later
 *   copying) such documents is only a way to spend the server's stack and CPU.
 *
 * Each is answered 400 naming where it was found (`/body/name`, `/query/q`, `/path/id`), in the
 * route's own error format (problem+json, JSON:API errors, RFC 6749 JSON, or an HTML page).
 * Routes that parse a large body themselves (ingest) apply `unstorableText` to what they keep and
 * set `config.checksOwnBody`. On /v1, query parameters a route does not declare are refused too:
 * a misspelt filter (`sensor_id` for `sensor_ids`) must not silently mean "no filter".
 */

export const MAX_DEPTH = 32;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route checks the strings of its (large) body itself, with unstorableText. */
    checksOwnBody?: boolean;
    /** /v1 routes: the query parameters the route declares (set from its schema when registered). */
    queryParameters?: ReadonlySet<string>;
    /** /v1 routes: families of query parameters the route declares (`fields[TYPE]`: its schema's patternProperties). */
    queryParameterPatterns?: readonly RegExp[];
  }
}

/** Why PostgreSQL could not store `value` exactly as given, or undefined when it can. */
export function unstorableText(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains U+0000 (NUL), which cannot be stored';
  if (!value.isWellFormed()) return 'contains an unpaired UTF-16 surrogate, which is not valid Unicode text';
  return undefined;
}

/** The first unstorable string (or key) in a parsed document, with its JSON pointer below `base`. */
export function findUnstorable(document: unknown, base: string): FieldError | undefined {
  // Iterative, so a hostile nesting depth costs no stack.
  const stack: [unknown, string, number][] = [[document, base, 0]];
  while (stack.length > 0) {
    const [value, pointer, depth] = stack.pop()!;
    if (typeof value === 'string') {
      const problem = unstorableText(value);
      if (problem) return { pointer, detail: `${nameOf(pointer)} ${problem}` };
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_DEPTH) return { pointer, detail: `${nameOf(pointer)} is nested more than ${MAX_DEPTH} levels deep` };
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i -= 1) stack.push([value[i], `${pointer}/${i}`, depth + 1]);
      continue;
    }
    for (const key of Object.keys(value)) {
      const keyProblem = unstorableText(key);
      if (keyProblem) return { pointer, detail: `a member name of ${nameOf(pointer)} ${keyProblem}` };
      stack.push([(value as Record<string, unknown>)[key], `${pointer}/${escapePointer(key)}`, depth + 1]);
    }
  }
  return undefined;
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
const nameOf = (pointer: string) => pointer.split('/').slice(2).join('.') || pointer.slice(1);

/** 400 for what PostgreSQL cannot hold, anywhere in the request's path, query or body. */
export function checkRequestText(request: FastifyRequest): void {
  const problem =
    findUnstorable(request.params, '/path') ??
    findUnstorable(request.query, '/query') ??
    (request.routeOptions.config.checksOwnBody ? undefined : findUnstorable(request.body, '/body'));
  if (problem) throw badRequest(`The request cannot be accepted: ${problem.detail}.`, [problem]);
}

/** 400 naming every query parameter a /v1 route does not declare. */
export function checkQueryParameters(request: FastifyRequest): void {
  const declared = request.routeOptions.config.queryParameters;
  if (!declared) return;
  const query = request.query as Record<string, unknown> | undefined;
  if (!query) return;
  const patterns = request.routeOptions.config.queryParameterPatterns ?? [];
  const unknown = Object.keys(query).filter((name) => !declared.has(name) && !patterns.some((pattern) => pattern.test(name)));
  if (unknown.length === 0) return;
  const accepted = declared.size > 0 ? ` This endpoint accepts: ${[...declared].join(', ')}.` : ' This endpoint takes no query parameters.';
  throw badRequest(
    `Unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.${accepted}`,
    unknown.map((name) => ({ pointer: `/query/${name}`, detail: `${name} is not a query parameter of this endpoint` })),
  );
}

/** Installs the boundary for every route registered after this call. */
export function installInputBoundary(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (route.url !== '/v1' && !route.url.startsWith('/v1/')) return;
    const querystring = route.schema?.querystring as
      | { properties?: Record<string, unknown>; patternProperties?: Record<string, unknown> }
      | undefined;
    route.config = {
      ...route.config,
      queryParameters: new Set(Object.keys(querystring?.properties ?? {})),
      queryParameterPatterns: Object.keys(querystring?.patternProperties ?? {}).map((pattern) => new RegExp(pattern, 'u')),
    };
  });
  app.addHook('preValidation', (request, _reply, done) => {
    try {
      checkQueryParameters(request);
      checkRequestText(request);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
}
