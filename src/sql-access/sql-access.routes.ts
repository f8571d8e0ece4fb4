import { Type } from 'typebox';
import { type ResourceType, envelopeSchema, sendNoContent, sendResource } from '../api/documents.js';
import { jsonApiBody, optionalJsonApiBody } from '../api/json-api-body.js';
import { Timestamp, iso, secured } from '../api/kit.js';
import { callerOf } from '../api/resource-routes.js';
import { auditedBy } from '../audit/actor.js';
import { HttpProblem } from '../http/problem.js';
import type { App, AppServices } from '../server/context.js';
import type { FastifyRequest } from 'fastify';
import { ownAddressRange } from './cidrs.js';
import { type SqlAccessActor, SqlAccessRefusal, type SqlAccessService, type SqlAccessView } from './sql-access.service.js';

/**
 * `/v1/sql-access`: the organization's read-only PostgreSQL login (SPEC §8 "SQL access"). Every
 * route needs `sql_access:write` (owners and admins; there is no read scope, as for API keys).
 * The password is in the answers of POST and of rotate only (`Cache-Control: no-store`).
 */

type SqlAccessResource = SqlAccessView & { password?: string };

const SqlAccessType: ResourceType<SqlAccessResource> = {
  type: 'sql-access',
  id: (row) => row.username,
  path: () => '/v1/sql-access',
  attributes: (row) => ({
    username: row.username,
    ...(row.password !== undefined && { password: row.password }),
    host: row.host,
    port: row.port,
    database: row.database,
    schema: row.schema,
    allowed_cidrs: row.allowedCidrs,
    statement_timeout_seconds: row.statementTimeoutSeconds,
    connection_limit: row.connectionLimit,
    created_at: iso(row.createdAt),
    password_rotated_at: iso(row.passwordRotatedAt),
    updated_at: iso(row.updatedAt),
  }),
};

const SqlAccessJson = Type.Object({
  id: Type.String({ description: 'The login (same as username).' }),
  username: Type.String({ description: 'The PostgreSQL login, unique in the cluster.' }),
  password: Type.Optional(Type.String({ description: 'In the answers of POST and rotate only, never again.' })),
  host: Type.String({ description: 'Where to connect (SQL_ACCESS_HOST; in production a read replica).' }),
  port: Type.Integer(),
  database: Type.String(),
  schema: Type.String({ description: 'Always `reporting`: the only schema the login can read.' }),
  allowed_cidrs: Type.Array(Type.String(), { description: 'The login sees rows only over connections from these ranges.' }),
  statement_timeout_seconds: Type.Integer({ description: 'Longest a statement of the login runs before it is cancelled.' }),
  connection_limit: Type.Integer({ description: 'Most connections the login may hold at once.' }),
  created_at: Timestamp(),
  password_rotated_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const RANGES =
  'IPv4 or IPv6 networks (`203.0.113.0/24`, `2001:db8::/48`) or single addresses (`198.51.100.7`); no bits set right of the prefix.';
const allowedCidrs = (description: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 100, description });
const EnableBody = Type.Object(
  { allowed_cidrs: Type.Optional(allowedCidrs(`${RANGES} Default: the caller's own address (/32 or /128).`)) },
  { additionalProperties: false },
);
const UpdateBody = Type.Object({ allowed_cidrs: allowedCidrs(RANGES) }, { additionalProperties: false });

/** A refusal of the service as a problem document; bad ranges point into the request body. */
async function answered<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof SqlAccessRefusal)) throw error;
    const errors = error.issues.map((issue) => ({ pointer: `/body/allowed_cidrs/${issue.index}`, detail: issue.message }));
    throw new HttpProblem({ status: error.status, detail: error.message, ...(errors.length > 0 && { errors }) });
  }
}

const actorOf = (request: FastifyRequest): SqlAccessActor => {
  const caller = callerOf(request);
  return { audit: auditedBy(caller), userId: caller.principal.userId };
};

export function registerSqlAccessRoutes(app: App, services: AppServices, sqlAccess: SqlAccessService): void {
  const { bearer, config } = services;
  const tags = ['sql-access'];
  const scopes = ['sql_access:write'] as const;
  const withPassword = { meta: { password_shown_once: true } };
  const send = (request: FastifyRequest, reply: Parameters<typeof sendResource>[2], row: SqlAccessResource, status = 200) =>
    sendResource<SqlAccessResource>(config.publicUrl, request, reply, SqlAccessType, row, {
      status,
      ...(row.password !== undefined && withPassword),
    });

  app.post(
    '/v1/sql-access',
    {
      ...secured(bearer, scopes, {
        tags,
        summary: 'Enable SQL access: a PostgreSQL login for the organization, its password in this answer only',
        description:
          'PostgreSQL only (409 on the embedded database). 409 if already enabled. The login reads the views of schema `reporting` (docs/sql-access.md).',
        body: EnableBody,
        response: { 201: envelopeSchema(SqlAccessJson) },
      }),
      preValidation: optionalJsonApiBody({ type: 'sql-access' }),
    },
    async (request, reply) => {
      const own = ownAddressRange(request.ip);
      const cidrs = request.body.allowed_cidrs ?? (own ? [own] : []);
      const { login, password } = await answered(() => sqlAccess.enable(callerOf(request).organizationId, cidrs, actorOf(request)));
      reply.header('cache-control', 'no-store');
      return send(request, reply, { ...login, password }, 201);
    },
  );

  app.get(
    '/v1/sql-access',
    secured(bearer, scopes, {
      tags,
      summary: "The organization's SQL access (never its password); 404 when not enabled",
      response: { 200: envelopeSchema(SqlAccessJson) },
    }),
    async (request, reply) => send(request, reply, await answered(() => sqlAccess.show(callerOf(request).organizationId))),
  );

  app.patch(
    '/v1/sql-access',
    {
      ...secured(bearer, scopes, {
        tags,
        summary: 'Set the address ranges SQL access is accepted from (from the next statement on)',
        body: UpdateBody,
        response: { 200: envelopeSchema(SqlAccessJson) },
      }),
      preValidation: jsonApiBody({ type: 'sql-access' }),
    },
    async (request, reply) => {
      const { organizationId } = callerOf(request);
      const login = await answered(() => sqlAccess.setAllowedCidrs(organizationId, request.body.allowed_cidrs, actorOf(request)));
      return send(request, reply, login);
    },
  );

  app.post(
    '/v1/sql-access/rotate',
    secured(bearer, scopes, {
      tags,
      summary: 'Give the login a new password, in this answer only; the old one stops working and open sessions end',
      response: { 200: envelopeSchema(SqlAccessJson) },
    }),
    async (request, reply) => {
      const { login, password } = await answered(() => sqlAccess.rotate(callerOf(request).organizationId, actorOf(request)));
      reply.header('cache-control', 'no-store');
      return send(request, reply, { ...login, password });
    },
  );

  app.delete(
    '/v1/sql-access',
    secured(bearer, scopes, {
      tags,
      summary: 'Disable SQL access: the login is dropped and its open sessions end',
      response: { 204: Type.Null() },
    }),
    async (request, reply) => {
      const { dropError } = await answered(() => sqlAccess.disable(callerOf(request).organizationId, actorOf(request)));
      if (dropError)
        request.log.warn({ err: dropError }, 'SQL access disabled, but its login could not be dropped (it can no longer log in)');
      return sendNoContent(reply);
    },
  );
}
