import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, onRequestHookHandler } from 'fastify';
import helmet from 'helmet';

/**
 * Security headers in two sets.
 *
 * Every response gets the API set (OWASP REST Security Cheat Sheet): `nosniff`, and a CSP under
 * which a JSON body, should a browser ever render one, loads nothing and is framed nowhere; HSTS
 * when the public URL is https. The scopes that serve HTML (login, consent, device and setup
 * pages, Swagger UI) add helmet's full browser set on top (`usePageSecurityHeaders`).
 *
 * Helmet's eleven headers on every JSON response are paid for on every request (set, written and,
 * by the client, parsed; with the other pipeline changes of the same commit a small API response
 * went from 61 to 51 µs of server CPU, docs/performance.md) and guard nothing on a response no
 * browser renders as a page.
 *
 * The API set goes into Fastify's reply headers, which Node then writes in one pass
 * (`writeHead` with a header object); a header set on the raw response first would send every
 * header of the response through `setHeader` and its validation again. Helmet's page set goes
 * there too (through `helmetTarget`), replacing the API set's CSP. A route may still refine any
 * header with `reply.header`.
 */

const isHttps = (publicUrl: string) => publicUrl.startsWith('https:');

export function installApiSecurityHeaders(app: FastifyInstance, publicUrl: string): void {
  const headers: [string, string][] = [
    ['x-content-type-options', 'nosniff'],
    ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
  ];
  if (isHttps(publicUrl)) headers.push(['strict-transport-security', 'max-age=31536000; includeSubDomains']);
  app.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of headers) reply.header(name, value);
    done();
  });
}

/** Helmet's middleware for pages, built once per kind of public URL (its options are parsed then). */
const pageMiddleware = new Map<boolean, ReturnType<typeof helmet>>();

function pageHeadersFor(https: boolean): ReturnType<typeof helmet> {
  let middleware = pageMiddleware.get(https);
  if (!middleware) {
    middleware = helmet({
      // HSTS and upgrade-insecure-requests only make sense when the public URL is https; on a plain
      // http self-host they would break the login and consent forms.
      hsts: https,
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          frameAncestors: ["'none'"],
          formAction: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          styleSrc: ["'self'", "'unsafe-inline'"],
          upgradeInsecureRequests: https ? [] : null,
        },
      },
    });
    pageMiddleware.set(https, middleware);
  }
  return middleware;
}

/** The two response methods helmet calls, writing into Fastify's reply headers. */
function helmetTarget(reply: FastifyReply): ServerResponse {
  return {
    setHeader: (name: string, value: string) => reply.header(name, value),
    removeHeader: (name: string) => reply.removeHeader(name),
  } as unknown as ServerResponse;
}

/** Adds helmet's full browser set to every response of `scope` (a scope serving HTML pages). */
export function usePageSecurityHeaders(scope: FastifyInstance, publicUrl: string): void {
  const middleware = pageHeadersFor(isHttps(publicUrl));
  const hook: onRequestHookHandler = (request, reply, done) => {
    middleware(request.raw, helmetTarget(reply), (error?: unknown) => done(error as Error | undefined));
  };
  scope.addHook('onRequest', hook);
}
