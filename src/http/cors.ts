import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/cors's per-route options; `false` turns CORS off for the route (in its README, not its types). */
    cors?: false | FastifyCorsOptions;
  }
}

/**
 * CORS for the API, none for pages. API clients authenticate with bearer credentials, never
 * cookies, so any Origin is reflected (without credentials) on the token, revocation,
 * introspection, metadata, JWKS, OpenAPI and /v1 endpoints. Pages are for top-level navigation and
 * form posts only: RFC 9700 §2.6 rules CORS out at the authorization endpoint, and nothing on the
 * login, device, account, setup, console or Swagger UI pages is for a script of another origin to read.
 */
const PAGE_PATHS = ['/oauth/authorize', '/oauth2/auth', '/login', '/logout', '/device', '/account', '/setup', '/docs', '/console'];

const isPagePath = (path: string): boolean => PAGE_PATHS.some((page) => path === page || path.startsWith(`${page}/`));

export async function installCors(app: FastifyInstance): Promise<void> {
  // Page routes opt out through their route config, which @fastify/cors reads on each request:
  // the API pays nothing for the distinction. Installed before any route is registered.
  app.addHook('onRoute', (route) => {
    if (isPagePath(route.url)) route.config = { ...route.config, cors: false };
  });
  await app.register(cors, {
    // Reflect any Origin; a request without one is not cross-origin and gets no CORS headers beyond Vary.
    origin: (origin, callback) => callback(null, origin !== undefined),
    credentials: false,
    // The plugin's default (GET, HEAD, POST) would refuse a browser's PATCH, PUT or DELETE on /v1.
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: ['x-request-id', 'www-authenticate', 'location', 'retry-after', 'ratelimit', 'ratelimit-policy'],
    maxAge: 600,
  });
}

/**
 * Whether @fastify/cors answers this request as a preflight. A preflight to a page is not one: it
 * is answered as a plain OPTIONS (Allow, no CORS headers), and the browser refuses the request.
 * Preflights all reach the plugin's catch-all route, so the path is matched as the router would
 * (duplicate slashes ignored, percent-escapes decoded).
 */
export function isCorsPreflight(request: FastifyRequest): boolean {
  if (!request.headers.origin || !request.headers['access-control-request-method']) return false;
  const path = (request.url.split('?')[0] ?? '/').replace(/\/{2,}/g, '/');
  return !isPagePath(safeDecode(path));
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
