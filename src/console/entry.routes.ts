import type { App, AppServices } from '../server/context.js';

/**
 * `/`, the way in. A browser (one that asks for HTML) goes to the console, which sends it to the
 * login page first when nobody is signed in; anything else gets a JSON index of the entry points.
 */
export function registerEntryRoutes(app: App, services: AppServices): void {
  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    reply.header('vary', 'Accept');
    if (/\btext\/html\b/.test(request.headers.accept ?? '')) return reply.redirect('/console', 303);
    const base = services.config.publicUrl;
    return {
      name: 'sensorcloud',
      links: {
        console: `${base}/console`,
        me: `${base}/v1/me`,
        openapi: `${base}/openapi.json`,
        docs: `${base}/docs`,
        graphql: `${base}/graphql`,
        ingest: `${base}/v1/ingest`,
        oauth_authorization_server: `${base}/.well-known/oauth-authorization-server`,
        health: `${base}/healthz`,
      },
    };
  });
}
