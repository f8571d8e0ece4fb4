import type { FastifyReply, FastifyRequest } from 'fastify';
import { JSON_API_MEDIA_TYPE, type MediaRange, jsonApiInstances, parseContentType } from '../http/media-types.js';
import { HttpProblem } from '../http/problem.js';
import type { App } from '../server/context.js';

/**
 * Content negotiation of the resource API (`/v1`), shared by every capability, per JSON:API 1.1
 * §"Content Negotiation" (https://jsonapi.org/format/1.1/#content-negotiation-servers):
 *
 * - JSON (default; also for `Accept: application/javascript`, `application/json`, `*∕*`).
 * - JSON:API 1.1 when Accept holds `application/vnd.api+json` (with q > 0). Instances with a
 *   parameter other than `ext`/`profile`, or naming an extension, are ignored; 406 when no instance
 *   is left. Profiles are accepted and not applied (a server MUST ignore profiles it does not know).
 * - 415 for a `Content-Type: application/vnd.api+json` with a parameter other than `ext`/`profile`,
 *   or with an extension: this server supports none.
 * - `Vary: Accept` on every /v1 answer, data and errors alike, so no cache hands a JSON:API
 *   document to a JSON client or the other way round.
 *
 * The documents of each format are rendered by api/documents.ts.
 */

export type Format = 'json' | 'jsonapi';

/** Extension URIs this server applies (https://jsonapi.org/format/1.1/#extensions): none yet. */
const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set();

/** Why a JSON:API media type instance cannot be served; undefined when it can. */
function unusable(range: MediaRange): 'parameters' | 'extensions' | undefined {
  for (const name of range.params.keys()) if (name !== 'ext' && name !== 'profile') return 'parameters';
  // `ext` is a space-separated list of URIs; an empty one asks for no extension.
  const extensions = (range.params.get('ext') ?? '').split(/\s+/).filter((uri) => uri !== '');
  return extensions.every((uri) => SUPPORTED_EXTENSIONS.has(uri)) ? undefined : 'extensions';
}

/** The representation a request asks for; throws 406 per JSON:API §"Server Responsibilities". */
export function negotiate(request: FastifyRequest): Format {
  const instances = jsonApiInstances(request.headers.accept);
  if (instances.length === 0) return 'json';
  const reasons = instances.map(unusable);
  if (reasons.includes(undefined)) return 'jsonapi';
  throw new HttpProblem({
    status: 406,
    detail: reasons.includes('parameters')
      ? 'Every application/vnd.api+json in Accept carries media type parameters this server does not support (only "ext" and "profile" are allowed).'
      : 'Every application/vnd.api+json in Accept asks for a JSON:API extension; this server supports none.',
  });
}

/** JSON:API: a request body's JSON:API media type may carry only `profile` and supported `ext` (415). */
export function checkContentType(request: FastifyRequest): void {
  const range = parseContentType(request.headers['content-type']);
  if (range?.type !== JSON_API_MEDIA_TYPE) return;
  const reason = unusable(range);
  if (reason === undefined) return;
  throw new HttpProblem({
    status: 415,
    detail:
      reason === 'parameters'
        ? 'Content-Type application/vnd.api+json must not carry media type parameters other than "ext" and "profile".'
        : `Content-Type application/vnd.api+json names an extension (${range.params.get('ext')}); this server supports none.`,
    headers: { 'accept-post': `application/json, ${JSON_API_MEDIA_TYPE}` },
  });
}

export function isJsonApiBody(request: FastifyRequest): boolean {
  return parseContentType(request.headers['content-type'])?.type === JSON_API_MEDIA_TYPE;
}

const isResourceApi = (url: string): boolean => url.startsWith('/v1/') || url === '/v1' || url.startsWith('/v1?');

/** Adds `Accept` to the answer's `Vary`, keeping what is there (CORS's `Origin`). */
function varyOnAccept(reply: FastifyReply): void {
  const current = reply.getHeader('vary');
  const values = (Array.isArray(current) ? current.join(',') : String(current ?? ''))
    .split(',')
    .map((value) => value.trim())
    .filter((value) => value !== '');
  if (values.some((value) => value === '*' || value.toLowerCase() === 'accept')) return;
  reply.header('vary', [...values, 'Accept'].join(', '));
}

const installed = new WeakSet<object>();

/**
 * Installs the negotiation checks (406/415) and `Vary: Accept` for every `/v1` route of the app,
 * whichever module registers it. Idempotent per app; call it from each capability's registration
 * if unsure.
 */
export function installNegotiation(app: App): void {
  if (installed.has(app)) return;
  installed.add(app);
  app.addHook('onRequest', (request, _reply, done) => {
    if (!isResourceApi(request.url)) return done();
    try {
      negotiate(request);
      checkContentType(request);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
  // Every /v1 answer depends on Accept: errors too come as problem+json or JSON:API errors.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (isResourceApi(request.url)) varyOnAccept(reply);
    done(null, payload);
  });
}
