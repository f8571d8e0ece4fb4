import { Type } from 'typebox';
import { type ResourceType, envelopeSchema, sendResource } from '../api/documents.js';
import { IdParams, Nullable, SearchQuery, Timestamp, found, iso, secured } from '../api/kit.js';
import { WithMeta, callerOf, resourceRoutes } from '../api/resource-routes.js';
import { HttpProblem } from '../http/problem.js';
import { SCOPES } from '../identity/scopes.js';
import { ORGANIZATION_GRANT_TYPES } from '../oauth/client-rules.js';
import { CLIENT_SORTS, type ClientView, DEFAULT_ACCESS_TOKEN_TTL, listClients } from '../oauth/clients.repo.js';
import { findClient } from '../oauth/clients.repo.js';
import { GRANT_TYPES, TOKEN_FORMATS } from '../oauth/grant-types.js';
import type { App, AppServices } from '../server/context.js';
import {
  ACCESS_TOKEN_TTL_BOUNDS,
  APPLICATION_LIMITS,
  ApplicationRefusal,
  type ApplicationService,
  DEFAULT_GRANT_TYPES,
  REFRESH_TOKEN_TTL_BOUNDS,
  describeIssue,
  organizationRegistrar,
} from './applications.service.js';

/**
 * `/v1/applications`: the OAuth clients of the caller's organization (Bluesonde's "Create an OAuth
 * Application"). Every route needs `applications:write` (owners and admins): there is no read scope
 * for applications, as there is none for API keys. The client secret of a confidential
 * application is in the creation and rotation answers only (`Cache-Control: no-store`), never
 * again. Clients of the provisioning file are listed with `provisioned: true`; they can be
 * enabled, disabled and deleted here, not otherwise changed (409: the file owns them).
 */

type ApplicationView = ClientView & { client_secret?: string };

const ApplicationResource: ResourceType<ApplicationView> = {
  type: 'applications',
  id: (row) => row.id,
  path: (row) => `/v1/applications/${row.id}`,
  attributes: (row) => ({
    client_id: row.client_id,
    name: row.name,
    public: row.public,
    redirect_uris: row.redirect_uris,
    grant_types: row.grant_types,
    scopes: row.scopes,
    privacy_policy_url: row.privacy_policy_url,
    token_format: row.token_format,
    access_token_ttl: row.access_token_ttl,
    refresh_token_ttl: row.refresh_token_ttl,
    enabled: row.enabled,
    provisioned: row.managed_by === 'provisioning',
    managed_by: row.managed_by,
    bound_user_id: row.bound_user_id,
    user_auth: row.user_auth,
    resource_server: row.resource_server,
    created_by: row.created_by ? { id: row.created_by, email: row.created_by_email } : null,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    ...(row.client_secret !== undefined && { client_secret: row.client_secret }),
  }),
};

const ApplicationJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  client_id: Type.String({ description: 'The public identifier the application sends to /oauth/authorize and /oauth/token.' }),
  name: Type.String({ description: 'Shown to people on the consent page.' }),
  public: Type.Boolean({ description: 'A public client (browser or native app): no secret, PKCE (S256) required.' }),
  redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String({ enum: [...GRANT_TYPES] })),
  scopes: Type.Array(Type.String()),
  privacy_policy_url: Nullable(Type.String()),
  token_format: Type.String({ enum: [...TOKEN_FORMATS] }),
  access_token_ttl: Type.Integer({ description: 'Access-token lifetime, seconds.' }),
  refresh_token_ttl: Nullable(Type.Integer({ description: "Refresh-token lifetime, seconds; null: the server's default." })),
  enabled: Type.Boolean({ description: 'A disabled application cannot sign people in or get tokens, and its tokens are refused.' }),
  provisioned: Type.Boolean({
    description: 'Registered by the provisioning file, which owns it: only enabled and deletion are changed here.',
  }),
  managed_by: Nullable(
    Type.String({
      enum: ['provisioning', 'iotconnect'],
      description:
        "Who owns the registration besides the organization's admins; `iotconnect`: the IoTConnect sign-in's own client (read-only).",
    }),
  ),
  bound_user_id: Nullable(
    Type.String({ format: 'uuid', description: 'Set by an operator: client-credentials tokens act as this person.' }),
  ),
  user_auth: Type.String({ description: 'Set by an operator: how the password grant identifies people.' }),
  resource_server: Type.Boolean({ description: 'Set by an operator: may introspect tokens of other applications of the organization.' }),
  created_by: Type.Unsafe<{ id: string; email: string | null } | null>({
    type: ['object', 'null'],
    properties: { id: { type: 'string' }, email: { type: ['string', 'null'] } },
  }),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});
const ApplicationWithSecretJson = Type.Intersect([
  ApplicationJson,
  Type.Object({
    client_secret: Type.Optional(
      Type.String({ description: 'The client secret (`sc_cs_…`) of a confidential application: in this answer only, never again.' }),
    ),
  }),
]);

const Editable = {
  name: Type.String({ minLength: 1, maxLength: APPLICATION_LIMITS.name, description: 'Shown to people on the consent page.' }),
  redirect_uris: Type.Array(Type.String({ minLength: 1, maxLength: APPLICATION_LIMITS.url }), {
    maxItems: APPLICATION_LIMITS.redirectUris,
    uniqueItems: true,
    description:
      'Where people are sent back with the code, matched exactly: https, or http on a loopback host (127.0.0.1, [::1], localhost); no fragment. At least one for authorization_code.',
  }),
  scopes: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
    minItems: 1,
    maxItems: SCOPES.length,
    uniqueItems: true,
    description: `What the application may ask for, from: ${SCOPES.join(', ')}. People can consent only when their role holds every one; \`offline_access\` gets refresh tokens. At most the scopes of the credential registering it.`,
  }),
  privacy_policy_url: Nullable(
    Type.String({ minLength: 1, maxLength: APPLICATION_LIMITS.url, description: 'https; linked from the consent page.' }),
  ),
  grant_types: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
    minItems: 1,
    maxItems: ORGANIZATION_GRANT_TYPES.length,
    uniqueItems: true,
    description: `From: ${ORGANIZATION_GRANT_TYPES.join(', ')} (client_credentials for confidential applications only). Default authorization_code and refresh_token.`,
  }),
  token_format: Type.Union([Type.Literal('opaque'), Type.Literal('jwt')], {
    description: 'Access tokens as opaque `sc_at_…` strings (default) or RFC 9068 JWTs.',
  }),
  access_token_ttl: Type.Integer({ ...ACCESS_TOKEN_TTL_BOUNDS, description: `Seconds, default ${DEFAULT_ACCESS_TOKEN_TTL}.` }),
  refresh_token_ttl: Nullable(Type.Integer({ ...REFRESH_TOKEN_TTL_BOUNDS, description: "Seconds; null: the server's default." })),
  enabled: Type.Boolean(),
};

const ApplicationCreate = Type.Object(
  {
    name: Editable.name,
    public: Type.Optional(
      Type.Boolean({ description: 'true for a client that cannot keep a secret (single-page or native app): no secret, PKCE required.' }),
    ),
    redirect_uris: Type.Optional(Editable.redirect_uris),
    scopes: Editable.scopes,
    privacy_policy_url: Type.Optional(Editable.privacy_policy_url),
    grant_types: Type.Optional(Editable.grant_types),
    token_format: Type.Optional(Editable.token_format),
    access_token_ttl: Type.Optional(Editable.access_token_ttl),
    refresh_token_ttl: Type.Optional(Editable.refresh_token_ttl),
  },
  { additionalProperties: false },
);
const ApplicationUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

/** A refusal of the service as a problem document, each issue pointing into the request body. */
async function answered<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof ApplicationRefusal)) throw error;
    const errors = error.issues.map((issue) => ({ pointer: `/body/${issue.path.join('/')}`, detail: describeIssue(issue) }));
    throw new HttpProblem({ status: error.status, detail: error.message, ...(errors.length > 0 && { errors }) });
  }
}

export function registerApplicationRoutes(app: App, services: AppServices, applications: ApplicationService): void {
  const { db, bearer, config } = services;
  const tags = ['applications'];
  const scopes = { read: ['applications:write'], write: ['applications:write'] } as const;
  const routes = resourceRoutes(app, services, {
    path: '/v1/applications',
    resource: ApplicationResource,
    schema: ApplicationJson,
    noun: 'application',
    tags,
    scopes,
  });

  routes.list(
    {
      summary: 'List OAuth applications (needs applications:write: applications have no read scope)',
      sorts: CLIENT_SORTS,
      defaultSort: 'created_at',
      filters: { public: Type.Optional(Type.Boolean()), enabled: Type.Optional(Type.Boolean()), q: SearchQuery },
    },
    ({ organizationId, query, sort, page }) => listClients(db, organizationId, query, sort, page),
  );

  routes.get({ summary: 'Get an OAuth application (never its secret; needs applications:write)' }, ({ organizationId, id }) =>
    findClient(db, organizationId, id),
  );

  routes.create(
    {
      summary: 'Register an OAuth application (a confidential one gets its client_secret in this answer, once)',
      body: ApplicationCreate,
      createdSchema: ApplicationWithSecretJson,
    },
    async (caller) => {
      const { body, reply } = caller;
      const { client, secret } = await answered(() =>
        applications.create(
          {
            name: body.name,
            public: body.public ?? false,
            redirectUris: body.redirect_uris ?? [],
            scopes: body.scopes,
            privacyPolicyUrl: body.privacy_policy_url ?? null,
            grantTypes: body.grant_types ?? DEFAULT_GRANT_TYPES,
            tokenFormat: body.token_format ?? 'opaque',
            accessTokenTtl: body.access_token_ttl ?? DEFAULT_ACCESS_TOKEN_TTL,
            refreshTokenTtl: body.refresh_token_ttl ?? null,
          },
          organizationRegistrar(caller),
        ),
      );
      reply.header('cache-control', 'no-store');
      if (secret === undefined) return client;
      return new WithMeta<ApplicationView>({ ...client, client_secret: secret }, { client_secret_shown_once: true });
    },
  );

  routes.update(
    {
      summary:
        'Change an OAuth application (disabling it refuses its tokens at once; new scopes and lifetimes apply to tokens issued afterwards)',
      body: ApplicationUpdate,
    },
    (caller) => answered(() => applications.update(caller.id, caller.body, organizationRegistrar(caller))),
  );

  routes.remove({ summary: 'Delete an OAuth application: its tokens, refresh tokens, codes and consents are revoked at once' }, (caller) =>
    answered(() => applications.remove(caller.id, organizationRegistrar(caller))),
  );

  app.post(
    '/v1/applications/:id/rotate-secret',
    secured(bearer, scopes.write, {
      tags,
      summary: 'Give a confidential application a new client secret, returned once; the old one stops working at once',
      params: IdParams,
      response: { 200: envelopeSchema(ApplicationWithSecretJson) },
    }),
    async (request, reply) => {
      const caller = callerOf(request);
      const rotated = found(
        await answered(() => applications.rotateSecret(request.params.id, organizationRegistrar(caller))),
        'application',
      );
      reply.header('cache-control', 'no-store');
      return sendResource<ApplicationView>(
        config.publicUrl,
        request,
        reply,
        ApplicationResource,
        { ...rotated.client, client_secret: rotated.secret },
        { meta: { client_secret_shown_once: true } },
      );
    },
  );
}
