import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { installCors } from '../http/cors.js';
import { handleClientError, handleFrameworkError, installErrorHandling } from '../http/errors.js';
import { installInputBoundary } from '../http/boundary.js';
import { REDACTED_PATHS, OneLineRequestLog, requestId, requestLoggerFactory, requestSerializer } from '../http/logging.js';
import { installMetrics } from '../http/observability.js';
import { installApiSecurityHeaders, usePageSecurityHeaders } from '../http/security-headers.js';
import { JSON_API_MEDIA_TYPE } from '../http/media-types.js';
import { installNegotiation } from '../api/negotiation.js';
import { serveRelationships } from '../api/relationship-routes.js';
import { ingestSettings } from '../ingest/ingest.routes.js';
import { EventOutbox } from '../events/outbox.js';
import { IngestPipeline } from '../ingest/pipeline.js';
import { JobRunner } from '../jobs/runner.js';
import type { Module } from '../module.js';
import { MODULES } from '../modules.js';
import { openAbuseGuard } from '../abuse/open.js';
import { InvalidationListener } from '../storage/invalidations.js';
import { ReadReplica } from '../storage/read-replica.js';
import { BearerAuthenticator } from '../auth/bearer.js';
import { createOAuthRuntime } from '../oauth/runtime.js';
import { oauthSettings } from '../oauth/settings.js';
import type { Config } from '../config/config.js';
import type { App, AppContext, AppServices } from './context.js';

/** Fastify's trustProxy for TRUST_PROXY (its typings lack the hop count it accepts: the same rule as a function). */
function trustedProxies(setting: Config['trustProxy']): false | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}

export interface BuildAppOptions {
  /** The capabilities to mount (all of them, `MODULES`, unless a test wants fewer). */
  modules?: readonly Module[];
  /** A pino logger to use instead of one built from LOG_LEVEL (the CLI shares its own). */
  logger?: FastifyBaseLogger;
}

/**
 * Builds the HTTP server with the conventions every route inherits (problem+json errors, request
 * ids, CORS, security headers, OpenAPI, metrics), then mounts each capability's routes.
 */
export async function buildApp(ctx: AppContext, options: BuildAppOptions = {}): Promise<App> {
  const modules = options.modules ?? MODULES;
  const app = Fastify({
    ...(options.logger
      ? { loggerInstance: options.logger }
      : { logger: { level: ctx.config.logLevel, redact: REDACTED_PATHS, serializers: { req: requestSerializer } } }),
    genReqId: requestId,
    // One line per request instead of two (http/logging.ts).
    logController: new OneLineRequestLog(),
    childLoggerFactory: requestLoggerFactory,
    frameworkErrors: handleFrameworkError,
    clientErrorHandler: handleClientError,
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: trustedProxies(ctx.config.trustProxy),
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 256 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandling(app);
  installInputBoundary(app);
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  // JSON:API bodies are JSON (Sensorberg clients send them as such).
  app.addContentTypeParser(JSON_API_MEDIA_TYPE, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
  await app.register(formbody);
  await installCors(app);
  installApiSecurityHeaders(app, ctx.config.publicUrl);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'sensorcloud API', version: '1', description: 'Sensor monitoring: OAuth 2.0, REST resources, ingest.' },
      // Read when the document is served: with PORT=0 the public URL is known only once listening.
      servers: [
        {
          get url() {
            return ctx.config.publicUrl;
          },
        },
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'OAuth 2.0 access token, API key (sk_live_…) or device token (sc_dev_…)' },
        },
      },
    },
  });
  await app.register(async (pages) => {
    usePageSecurityHeaders(pages, ctx.config.publicUrl);
    const http = !ctx.config.publicUrl.startsWith('https:');
    await pages.register(swaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      ...(http && { transformStaticCSP: withoutUpgradeInsecureRequests }),
    });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const metrics = installMetrics(app);
  const abuse = await openAbuseGuard(ctx.config, ctx.db);
  app.addHook('onClose', () => abuse.close());
  const invalidations = new InvalidationListener(ctx.databaseKind === 'postgres' ? ctx.config.databaseUrl : undefined, app.log, ctx.db);
  app.addHook('onReady', () => invalidations.start());
  app.addHook('onClose', () => invalidations.stop());
  const bearer = new BearerAuthenticator(abuse);
  invalidations.on((invalidation) => {
    if (invalidation.kind === 'credentials') bearer.evict(invalidation);
    else if (invalidation.kind === 'all') bearer.clear();
  });
  const jobs = new JobRunner(ctx.db, ctx.databaseKind === 'postgres', app.log, metrics);
  app.addHook('onReady', async () => jobs.start());
  app.addHook('onClose', () => jobs.stop());
  const ingest = new IngestPipeline(ctx.db, ingestSettings(ctx.config.env).maxReadings);
  const events = new EventOutbox();
  const oauth = createOAuthRuntime({ db: ctx.db, config: ctx.config, bearer, abuse }, oauthSettings(ctx.config.env));
  const readReplica = new ReadReplica(ctx.db, ctx.replicaDb, app.log);
  app.addHook('onClose', async () => readReplica.close());
  const services: AppServices = { ...ctx, abuse, invalidations, bearer, jobs, ingest, events, oauth, readReplica, metrics };
  // The representation rules of every /v1 route (406/415), whichever module registers it.
  installNegotiation(app);
  for (const module of modules) await module.register?.(app, services);
  // The endpoints of every resource's relationships, once every resource type is known.
  serveRelationships(app, services);
  return app;
}

/**
 * Swagger UI's own CSP ends with `upgrade-insecure-requests`: over plain http (a self-host on a LAN
 * address) the browser would fetch the UI's scripts and the API document over https, which is not
 * served, and the page would stay blank. Behind https the directive stays.
 */
function withoutUpgradeInsecureRequests(csp: string): string {
  return csp.replace(/\s*upgrade-insecure-requests;?/, '');
}
