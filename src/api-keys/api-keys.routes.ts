import { Type } from 'typebox';
import { protect, principalOf, securitySchema } from '../auth/guard.js';
import { type ResourceType, collectionSchema, envelopeSchema, sendCollection, sendNoContent, sendResource } from '../api/documents.js';
import { jsonApiBody } from '../api/json-api-body.js';
import { pageQueryProperties, pageRequest } from '../api/list-query.js';
import { installNegotiation } from '../api/negotiation.js';
import { afterCursor, sortKey, toPage } from '../storage/keyset.js';
import { notFound } from '../http/problem.js';
import { SCOPES } from '../identity/scopes.js';
import type { App } from '../server/context.js';
import type { AppServices } from '../server/context.js';
import { callerOf } from '../api/resource-routes.js';
import { auditedBy } from '../audit/actor.js';
import { type ApiKeyRow, findApiKey, listApiKeys } from './api-keys.repo.js';
import { API_KEY_NAME_MAX, createApiKey, revokeApiKeyNow, rotateApiKeyNow } from './api-keys.service.js';
import { isUuid } from '../storage/sql.js';

/** `/v1/api-keys`: create and rotate (the key is in that answer only), list, show, revoke; every change audited. */

const iso = (d: Date | null) => (d ? d.toISOString() : null);

type ApiKeyResource = ApiKeyRow & { key?: string };

const apiKeyType: ResourceType<ApiKeyResource> = {
  type: 'api-keys',
  id: (row) => row.id,
  path: (row) => `/v1/api-keys/${row.id}`,
  attributes: (row) => ({
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    created_by: row.createdBy ? { id: row.createdBy, email: row.createdByEmail } : null,
    created_at: row.createdAt.toISOString(),
    last_used_at: iso(row.lastUsedAt),
    expires_at: iso(row.expiresAt),
    revoked_at: iso(row.revokedAt),
    ...(row.key !== undefined && { key: row.key }),
  }),
};

const Nullable = (type: 'string') => Type.Unsafe<string | null>({ type: [type, 'null'], format: 'date-time' });

const ApiKeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart.' }),
  scopes: Type.Array(Type.String()),
  created_by: Type.Unsafe<{ id: string; email: string | null } | null>({
    type: ['object', 'null'],
    properties: { id: { type: 'string' }, email: { type: ['string', 'null'] } },
  }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Nullable('string'),
  expires_at: Nullable('string'),
  revoked_at: Nullable('string'),
  key: Type.Optional(
    Type.String({ description: 'The key itself (`sk_live_…`): in the answer that created or rotated it only, never again.' }),
  ),
});

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: API_KEY_NAME_MAX }),
    scopes: Type.Array(Type.String({ enum: [...SCOPES] }), { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'When the key stops working (RFC 3339); none by default.' })),
  },
  { additionalProperties: false },
);

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

export function registerApiKeyRoutes(app: App, services: AppServices): void {
  installNegotiation(app);
  const guard = protect(services.bearer, ['api_keys:write']);
  const security = securitySchema(['api_keys:write']);
  const { db, config } = services;

  app.post(
    '/v1/api-keys',
    {
      ...guard,
      preValidation: jsonApiBody({ type: 'api-keys' }),
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key',
        description: 'Scopes must be held by your role and by the credential making the request. The key is returned once, in `key`.',
        body: CreateBody,
        response: { 201: envelopeSchema(ApiKeySchema) },
        ...security,
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { name, scopes, expires_at } = request.body;
      const { key, row } = await createApiKey(
        db,
        caller.principal,
        { name, scopes, expiresAt: expires_at ? new Date(expires_at) : undefined },
        auditedBy(caller),
      );
      reply.header('cache-control', 'no-store');
      return sendResource<ApiKeyResource>(config.publicUrl, request, reply, apiKeyType, { ...row, key }, { status: 201 });
    },
  );

  app.get(
    '/v1/api-keys',
    {
      ...guard,
      schema: {
        tags: ['api-keys'],
        summary: 'List API keys',
        description: 'Newest first. Never shows the keys themselves, only their prefixes.',
        querystring: Type.Object({ ...pageQueryProperties, include_revoked: Type.Optional(Type.Boolean({ default: false })) }),
        response: { 200: collectionSchema(ApiKeySchema) },
        ...security,
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const page = pageRequest(request.query);
      const sort = { field: 'created_at', column: 'k.created_at', cast: 'timestamptz' as const, direction: 'desc' as const };
      const rows = await listApiKeys(db, principal.organizationId, {
        limit: page.limit,
        after: page.after ? afterCursor(sort, 'k.id', page.after) : undefined,
        includeRevoked: request.query.include_revoked === true,
      });
      return sendCollection(
        config.publicUrl,
        request,
        reply,
        apiKeyType,
        toPage(rows, page.limit, (row) => sortKey(row.createdAt, row.id)),
      );
    },
  );

  app.get(
    '/v1/api-keys/:id',
    {
      ...guard,
      schema: {
        tags: ['api-keys'],
        summary: 'Show an API key',
        params: IdParams,
        response: { 200: envelopeSchema(ApiKeySchema) },
        ...security,
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const row = isUuid(request.params.id) ? await findApiKey(db, principal.organizationId, request.params.id) : undefined;
      if (!row) throw notFound('The API key does not exist.');
      return sendResource(config.publicUrl, request, reply, apiKeyType, row);
    },
  );

  app.post(
    '/v1/api-keys/:id/rotate',
    {
      ...guard,
      schema: {
        tags: ['api-keys'],
        summary: 'Rotate an API key: a new key, returned once, replaces it (same id, name and scopes); the old one stops working at once',
        description:
          'Only the person who created the key can rotate it, and only while it is active; its scopes must still be held by their role and by the credential making the request.',
        params: IdParams,
        response: { 200: envelopeSchema(ApiKeySchema) },
        ...security,
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const id = request.params.id;
      const rotated = isUuid(id) ? await rotateApiKeyNow(db, services.bearer, caller.principal, id, auditedBy(caller)) : undefined;
      if (!rotated) throw notFound('The API key does not exist.');
      reply.header('cache-control', 'no-store');
      return sendResource<ApiKeyResource>(config.publicUrl, request, reply, apiKeyType, { ...rotated.row, key: rotated.key });
    },
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      ...guard,
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke an API key',
        description: 'Takes effect at once.',
        params: IdParams,
        response: { 204: Type.Null() },
        ...security,
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const id = request.params.id;
      if (!(await revokeApiKeyNow(db, services.bearer, caller.organizationId, id, auditedBy(caller))))
        throw notFound('The API key does not exist.');
      return sendNoContent(reply);
    },
  );
}
