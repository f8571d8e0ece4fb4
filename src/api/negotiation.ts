import type { FastifyRequest } from 'fastify';
import { HttpProblem, JSON_API_MEDIA_TYPE } from '../http/problem.js';
import type { App } from '../server/context.js';

/**
 * Content negotiation of the resource API (`/v1`), shared by every capability:
 *
 * - JSON (default; also for `Accept: application/javascript`, `application/json`, `*∕*`).
 * - JSON:API 1.1 (`Accept: application/vnd.api+json`).
 *   406 / 415 for JSON:API media types carrying parameters other than `ext`/`profile`, and for
 *   any `ext` (no extension is supported), as the JSON:API spec requires.
 *
 * The documents of each format are rendered by api/documents.ts.
 */

export type Format = 'json' | 'jsonapi';

interface MediaRange {
  type: string;
  params: Map<string, string>;
}

function parseMediaRanges(header: string): MediaRange[] {
  return header
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const [type = '', ...rawParams] = part.split(';');
      const params = new Map<string, string>();
      for (const raw of rawParams) {
        const eq = raw.indexOf('=');
        const name = (eq === -1 ? raw : raw.slice(0, eq)).trim().toLowerCase();
        const value =
          eq === -1
            ? ''
            : raw
                .slice(eq + 1)
                .trim()
                .replace(/^"(.*)"$/, '$1');
        if (name !== '') params.set(name, value);
      }
      return { type: type.trim().toLowerCase(), params };
    });
}

/**
 * A JSON:API media type instance is usable when its only parameters are `profile` (ignored:
 * profiles never change the meaning of a document) and `q` (Accept weight). `ext` names
 * extensions, of which we support none.
 */
function usableJsonApi(range: MediaRange): boolean {
  return [...range.params.keys()].every((name) => name === 'profile' || name === 'q');
}

/** The representation a request asks for; throws 406 per JSON:API §"Server Responsibilities". */
export function negotiate(request: FastifyRequest): Format {
  const accept = request.headers.accept;
  if (!accept?.toLowerCase().includes(JSON_API_MEDIA_TYPE)) return 'json';
  const jsonApi = parseMediaRanges(accept).filter((r) => r.type === JSON_API_MEDIA_TYPE);
  if (jsonApi.length === 0) return 'json';
  if (!jsonApi.some(usableJsonApi)) {
    throw new HttpProblem({
      status: 406,
      detail:
        'Every application/vnd.api+json in Accept carries media type parameters this server does not support (only "profile" is allowed).',
    });
  }
  return 'jsonapi';
}

/** JSON:API: a request body with the JSON:API media type must not carry parameters (415). */
export function checkContentType(request: FastifyRequest): void {
  const contentType = request.headers['content-type'];
  if (!contentType?.toLowerCase().includes(JSON_API_MEDIA_TYPE)) return;
  const [range] = parseMediaRanges(contentType);
  if (range && range.type === JSON_API_MEDIA_TYPE && ![...range.params.keys()].every((name) => name === 'profile')) {
    throw new HttpProblem({
      status: 415,
      detail: 'Content-Type application/vnd.api+json must not carry media type parameters other than "profile".',
      headers: { 'accept-post': `application/json, ${JSON_API_MEDIA_TYPE}` },
    });
  }
}

export function isJsonApiBody(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith(JSON_API_MEDIA_TYPE);
}

const installed = new WeakSet<object>();

/**
 * Installs the negotiation checks (406/415) for every `/v1` route of the app, whichever module
 * registers it. Idempotent per app; call it from each capability's registration if unsure.
 */
export function installNegotiation(app: App): void {
  if (installed.has(app)) return;
  installed.add(app);
  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.url.startsWith('/v1/') && request.url !== '/v1') return done();
    try {
      negotiate(request);
      checkContentType(request);
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
}
