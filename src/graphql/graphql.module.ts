import type { FastifyInstance } from 'fastify';
import mercurius, { type IResolvers, type MercuriusContext, type MercuriusLoaders } from 'mercurius';
import { HttpProblem } from '../http/problem.js';
import type { Module } from '../module.js';
import { checkCost } from './limits.js';
import { type GraphContext, loaders, resolvers } from './resolvers.js';
import { SCHEMA } from './schema.js';

/**
 * GraphQL at `/graphql` (SPEC §8; POST, and GET for queries) on mercurius, with the credentials,
 * scopes and tenancy of /v1: the bearer check runs before mercurius, each field checks its
 * scope, every query is scoped to the caller's organization. Depth and cost are limited before a
 * query runs; GraphiQL at `/graphiql` when GRAPHIQL is set.
 */
export const graphqlModule: Module = {
  name: 'graphql',
  async register(app, services) {
    const { env } = services.config;
    await app.register(async (scope: FastifyInstance) => {
      scope.addHook('onRequest', async (request, reply) => {
        if (request.url.startsWith('/graphiql')) return;
        try {
          request.principal = await services.bearer.authenticate(request);
        } catch (error) {
          if (!(error instanceof HttpProblem)) throw error;
          const code = error.status === 429 ? 'RATE_LIMITED' : error.status === 503 ? 'SERVICE_UNAVAILABLE' : 'UNAUTHENTICATED';
          return reply
            .code(error.status)
            .headers(error.headers)
            .type('application/json; charset=utf-8')
            .send({ data: null, errors: [{ message: error.message, extensions: { code } }] });
        }
      });
      await scope.register(mercurius, {
        schema: SCHEMA,
        // Typed with their richer context (resolvers.ts); mercurius merges what `context` returns into it.
        resolvers: resolvers as IResolvers,
        loaders: loaders as unknown as MercuriusLoaders,
        graphiql: env.GRAPHIQL,
        queryDepth: env.GRAPHQL_MAX_DEPTH,
        context: (request): Omit<GraphContext, keyof MercuriusContext> => ({
          // Set by the hook above for every /graphql request.
          principal: request.principal!,
          db: services.db,
          publicUrl: services.config.publicUrl,
          log: request.log,
        }),
      });
      // After parsing and validation (both cached per query text), with this request's variables.
      scope.graphql.addHook('preExecution', (schema, document, _context, variables) => {
        checkCost(schema, document, variables, env.GRAPHQL_MAX_COST);
      });
    });
  },
};
