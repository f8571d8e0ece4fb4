import { Type } from 'typebox';
import { guarded } from '../api/db-errors.js';
import type { ResourceType } from '../api/documents.js';
import { Timestamp, iso } from '../api/kit.js';
import { type Caller, resourceRoutes } from '../api/resource-routes.js';
import type { AuditAction } from '../audit/actions.js';
import { recordCallerEvent } from '../audit/actor.js';
import { HttpProblem } from '../http/problem.js';
import type { SecretBox } from '../security/secret-box.js';
import type { App, AppServices } from '../server/context.js';
import type { IdentityProvider } from './external-signin.schema.js';
import { CALLBACK_PATH } from './external-signin.routes.js';
import {
  PROVIDER_SORTS,
  type ProviderFields,
  deleteProvider,
  findProvider,
  insertProvider,
  listProviders,
  updateProvider,
} from './identity-providers.repo.js';
import { DOMAIN_PATTERN, issuerProblem, normalizeDomains } from './identity-provider-rules.js';

/**
 * `/v1/identity-providers`: an organization's external OpenID Connect providers, for its admins
 * (`users:read` to see them, `users:write` to change them). The client secret is write-only: sealed
 * under the server key, never returned. Every change is audited with its actor, never the secret.
 */

function providerResource(publicUrl: () => string): ResourceType<IdentityProvider> {
  return {
    type: 'identity-providers',
    id: (row) => row.id,
    path: (row) => `/v1/identity-providers/${row.id}`,
    attributes: (row) => ({
      name: row.name,
      issuer: row.issuer,
      client_id: row.client_id,
      allowed_email_domains: row.allowed_email_domains,
      enabled: row.enabled,
      redirect_uri: `${publicUrl()}${CALLBACK_PATH}`,
      created_at: iso(row.created_at),
      updated_at: iso(row.updated_at),
    }),
  };
}

const ProviderJson = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  issuer: Type.String(),
  client_id: Type.String(),
  allowed_email_domains: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  redirect_uri: Type.String({ description: 'The redirect URI to register at the provider for this client.' }),
  created_at: Timestamp(),
  updated_at: Timestamp(),
  links: Type.Object({ self: Type.String({ format: 'uri' }) }),
});

const Editable = {
  name: Type.String({ minLength: 1, maxLength: 100, description: 'Shown on the login page: "Sign in with <name>".' }),
  issuer: Type.String({
    minLength: 1,
    maxLength: 2000,
    description: 'The OpenID issuer (https; discovery at <issuer>/.well-known/openid-configuration).',
  }),
  client_id: Type.String({ minLength: 1, maxLength: 500 }),
  client_secret: Type.String({ minLength: 1, maxLength: 2000, description: 'Write-only: stored encrypted, never returned.' }),
  allowed_email_domains: Type.Array(Type.String({ maxLength: 253, pattern: DOMAIN_PATTERN }), {
    maxItems: 100,
    uniqueItems: true,
    description: 'Only people with an email of these domains may sign in with it; empty: any domain.',
  }),
  enabled: Type.Boolean(),
};
const ProviderCreate = Type.Object(
  {
    name: Editable.name,
    issuer: Editable.issuer,
    client_id: Editable.client_id,
    client_secret: Editable.client_secret,
    allowed_email_domains: Type.Optional(Editable.allowed_email_domains),
    enabled: Type.Optional(Editable.enabled),
  },
  { additionalProperties: false },
);
const ProviderUpdate = Type.Partial(Type.Object(Editable), { additionalProperties: false });

const CONSTRAINTS = {
  unique: { identity_providers_organization_id_name_key: 'An identity provider of this organization already has that name.' },
};

function checkIssuer(issuer: string | undefined): void {
  const problem = issuer === undefined ? undefined : issuerProblem(issuer);
  if (problem)
    throw new HttpProblem({
      status: 422,
      detail: `issuer ${problem}.`,
      errors: [{ pointer: '/body/issuer', detail: `issuer ${problem}` }],
    });
}

export function registerIdentityProviderRoutes(app: App, services: AppServices, secrets: () => SecretBox): void {
  const { db } = services;
  const providers = resourceRoutes(app, services, {
    path: '/v1/identity-providers',
    resource: providerResource(() => services.config.publicUrl),
    schema: ProviderJson,
    noun: 'identity provider',
    tags: ['identity providers'],
    scopes: { read: ['users:read'], write: ['users:write'] },
  });

  const audit = (tx: typeof db, caller: Caller, action: AuditAction, row: IdentityProvider, details: Record<string, unknown>) =>
    recordCallerEvent(tx, caller, action, { type: 'identity_provider', id: row.id }, details);

  providers.list(
    { summary: 'List external identity providers (OpenID Connect)', sorts: PROVIDER_SORTS, defaultSort: 'created_at', filters: {} },
    ({ organizationId, sort, page }) => listProviders(db, organizationId, sort, page),
  );

  providers.get({ summary: 'Get an external identity provider' }, ({ organizationId, id }) => findProvider(db, organizationId, id));

  providers.create(
    { summary: 'Add an external identity provider (its client secret is stored encrypted and never returned)', body: ProviderCreate },
    async (caller) => {
      const { organizationId, body } = caller;
      checkIssuer(body.issuer);
      const fields: ProviderFields = {
        name: body.name,
        issuer: body.issuer,
        client_id: body.client_id,
        allowed_email_domains: normalizeDomains(body.allowed_email_domains ?? []),
        enabled: body.enabled ?? true,
      };
      return guarded(
        () =>
          db.transaction().execute(async (tx) => {
            const row = await insertProvider(tx, organizationId, fields, (id) => secrets().seal(body.client_secret, id));
            await audit(tx, caller, 'identity_provider.created', row, { name: row.name, issuer: row.issuer });
            return row;
          }),
        CONSTRAINTS,
      );
    },
  );

  providers.update(
    { summary: 'Change an external identity provider (a client_secret given replaces the stored one)', body: ProviderUpdate },
    async (caller) => {
      const { organizationId, id, body } = caller;
      checkIssuer(body.issuer);
      const { client_secret: secret, ...rest } = body;
      const fields: Partial<ProviderFields> = {
        ...rest,
        ...(rest.allowed_email_domains && { allowed_email_domains: normalizeDomains(rest.allowed_email_domains) }),
      };
      return guarded(
        () =>
          db.transaction().execute(async (tx) => {
            const sealed = secret === undefined ? undefined : secrets().seal(secret, id);
            const row = await updateProvider(tx, organizationId, id, fields, sealed);
            if (!row) return undefined;
            await audit(tx, caller, 'identity_provider.updated', row, {
              changed: [...Object.keys(fields), ...(secret === undefined ? [] : ['client_secret'])],
            });
            return row;
          }),
        CONSTRAINTS,
      );
    },
  );

  providers.remove({ summary: 'Delete an external identity provider' }, async (caller) =>
    db.transaction().execute(async (tx) => {
      const { organizationId, id } = caller;
      const row = await findProvider(tx, organizationId, id);
      if (!row || !(await deleteProvider(tx, organizationId, id))) return false;
      await audit(tx, caller, 'identity_provider.deleted', row, { name: row.name });
      return true;
    }),
  );
}
