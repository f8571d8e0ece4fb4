import type { FastifyInstance } from 'fastify';
import mercurius, { type IResolvers, type MercuriusContext, type MercuriusLoaders, type MercuriusOptions } from 'mercurius';
import { GraphQLError } from 'graphql';
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
            .send(JSON.stringify({ data: null, errors: [{ message: error.message, extensions: { code } }] }));
        }
      });
      // The GraphQL-over-HTTP request shape, checked before mercurius (which answers some malformed
      // requests, a non-string query or a persisted-query parameter, with a 500).
      scope.addHook('preValidation', async (request, reply) => {
        if (request.url.startsWith('/graphiql')) return;
        const params = (request.method === 'GET' ? request.query : request.body) as Record<string, unknown> | undefined;
        const problem = requestProblem(params);
        if (problem)
          return (
            reply
              .code(400)
              .type('application/json; charset=utf-8')
              // Serialized here: the route's response schema (mercurius's) does not describe this answer.
              .send(JSON.stringify({ data: null, errors: [{ message: problem, extensions: { code: 'BAD_REQUEST' } }] }))
          );
      });
      await scope.register(mercurius, {
        schema: SCHEMA,
        // Typed with their richer context (resolvers.ts); mercurius merges what `context` returns into it.
        resolvers: resolvers as IResolvers,
        loaders: loaders as unknown as MercuriusLoaders,
        graphiql: env.GRAPHIQL,
        queryDepth: env.GRAPHQL_MAX_DEPTH,
        // Compile a query to JavaScript (graphql-jit) from its first use: scenario 11's CPU per query 8.4 → 7.3 ms.
        jit: 1,
        errorFormatter: formatErrors,
        context: (request): Omit<GraphContext, keyof MercuriusContext> => ({
          // Set by the hook above for every /graphql request.
          principal: request.principal!,
          db: services.db,
          readReplica: services.readReplica,
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

const MAX_QUERY_LENGTH = 100_000;

/** Why a request is not a GraphQL request (a query string, optional variables and operation name), if it is not. */
function requestProblem(params: Record<string, unknown> | undefined): string | undefined {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return 'The request must be a JSON object with "query".';
  const { query, variables, operationName } = params;
  if (typeof query !== 'string' || query.trim() === '') return '"query" must be a non-empty string.';
  if (query.length > MAX_QUERY_LENGTH) return `"query" is longer than ${MAX_QUERY_LENGTH} characters.`;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    return '"operationName" must be a string.';
  if (variables !== undefined && variables !== null && typeof variables !== 'object' && typeof variables !== 'string')
    return '"variables" must be an object.';
  for (const name of Object.keys(params)) {
    if (!['query', 'variables', 'operationName', 'extensions'].includes(name)) return `"${name}" is not a member of a GraphQL request.`;
  }
  return undefined;
}

const PROBLEM_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * mercurius's error formatter, after turning what the server's shared HTTP layer raises before a
 * query runs (the input boundary's 400s, 413, 503: problem documents whose `errors` are field
 * errors without a `message`) into GraphQL errors with a code and the problem's status.
 */
const formatErrors: NonNullable<MercuriusOptions['errorFormatter']> = (execution, context) => {
  let statusCode: number | undefined;
  const errors = execution.errors.map((error) => {
    const problem = error.originalError;
    if (!(problem instanceof HttpProblem)) return error;
    statusCode ??= problem.status;
    return new GraphQLError(problem.message, { extensions: { code: PROBLEM_CODES[problem.status] ?? 'BAD_REQUEST' } });
  });
  const formatted = mercurius.defaultErrorFormatter({ ...execution, errors }, context);
  return statusCode === undefined ? formatted : { ...formatted, statusCode };
};
