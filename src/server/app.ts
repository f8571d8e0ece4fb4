import cors from '@fastify/cors';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { handleClientError, handleFrameworkError, installErrorHandling } from '../http/errors.js';
import { installInputBoundary } from '../http/boundary.js';
import { registerHealthRoutes } from '../http/health.js';
import { REDACTED_PATHS, OneLineRequestLog, requestId, requestLoggerFactory, requestSerializer } from '../http/logging.js';
import { installMetrics } from '../http/observability.js';
import { installApiSecurityHeaders, usePageSecurityHeaders } from '../http/security-headers.js';
import { JSON_API_MEDIA_TYPE } from '../http/problem.js';
import { registerSetupRoutes } from '../setup/setup.routes.js';
import { registerOAuthRoutes } from '../oauth/oauth.routes.js';
import { registerReadings } from '../readings/readings.module.js';
import { registerInventoryRoutes } from '../api/register.js';
import { registerAuthorizeRoutes } from '../oauth/authorize/routes.js';
import { BearerAuthenticator } from '../auth/bearer.js';
import type { AppContext, AppServices } from './context.js';

export type App = FastifyInstance<any, any, any, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface BuildAppOptions {
  /** A pino logger to use instead of one built from LOG_LEVEL (the CLI shares its own). */
  logger?: FastifyBaseLogger;
}

/**
 * Builds the HTTP server with the conventions every route inherits (problem+json errors, request
 * ids, CORS, security headers, OpenAPI, metrics), then mounts each capability's routes.
 */
export async function buildApp(ctx: AppContext, options: BuildAppOptions = {}): Promise<App> {
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
    trustProxy: ctx.config.trustProxy,
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
  await app.register(cors, {
    // Reflect any Origin (API clients authenticate with bearer credentials, never cookies); a
    // request without one is not cross-origin and gets no CORS headers beyond Vary.
    origin: (origin, callback) => callback(null, origin !== undefined),
    credentials: false,
    exposedHeaders: ['x-request-id', 'www-authenticate', 'location', 'retry-after', 'ratelimit', 'ratelimit-policy'],
    maxAge: 600,
  });
  installApiSecurityHeaders(app, ctx.config.publicUrl);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'sensorcloud API', version: '1', description: 'Sensor monitoring: OAuth 2.0, REST resources, ingest.' },
      // Read when the document is served: with PORT=0 the public URL is known only once listening.
      servers: [{ get url() { return ctx.config.publicUrl; } }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'OAuth 2.0 access token, API key (sk_live_…) or device token (sc_dev_…)' },
        },
      },
    },
  });
  await app.register(async (pages) => {
    usePageSecurityHeaders(pages, ctx.config.publicUrl);
    await pages.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  installMetrics(app);
  const services: AppServices = { ...ctx, bearer: new BearerAuthenticator() };
  // Each capability mounts its routes (and background jobs, via onReady/onClose hooks) here.
  registerHealthRoutes(app, services);
  await app.register(async (pages) => {
    usePageSecurityHeaders(pages, ctx.config.publicUrl);
    registerSetupRoutes(pages as App, services);
  });
  const oauth = await registerOAuthRoutes(app, services);
  registerReadings(app, services);
  await registerInventoryRoutes(app, services);
  await registerAuthorizeRoutes(app, services, { accountBackoff: oauth.passwordBackoff });
  return app;
}
