import { type Static, Type } from 'typebox';

/**
 * The provisioning file of SPEC §7, as a TypeBox schema: structure only (types, required fields,
 * no unknown keys so typos are caught). Meaning (roles, scopes, references) is checked in
 * validate.ts, which can give better messages than a schema.
 */

const strict = { additionalProperties: false } as const;
const Text = Type.String({ minLength: 1 });

export const UserSpec = Type.Object(
  {
    email: Text,
    name: Type.Optional(Type.String()),
    password: Type.Optional(Text),
    role: Text,
    external_authentication_token: Type.Optional(Text),
  },
  strict,
);

/** An external OpenID Connect provider people of the organization may sign in with (upserted by name). */
export const IdentityProviderSpec = Type.Object(
  {
    name: Text,
    issuer: Text,
    client_id: Text,
    client_secret: Text,
    allowed_email_domains: Type.Optional(Type.Array(Text)),
    enabled: Type.Optional(Type.Boolean()),
  },
  strict,
);

export const ClientSpec = Type.Object(
  {
    client_id: Text,
    client_secret: Type.Optional(Text),
    name: Type.Optional(Text),
    public: Type.Optional(Type.Boolean()),
    redirect_uris: Type.Optional(Type.Array(Text)),
    grant_types: Type.Array(Text, { minItems: 1 }),
    scopes: Type.Array(Text),
    access_token_ttl: Type.Optional(Type.Integer({ minimum: 60 })),
    refresh_token_ttl: Type.Optional(Type.Integer({ minimum: 60 })),
    token_format: Type.Optional(Text),
    privacy_policy_url: Type.Optional(Text),
    bound_user: Type.Optional(Text),
    user_auth: Type.Optional(Text),
    /** May introspect tokens issued to other clients (RFC 7662 resource server). */
    resource_server: Type.Optional(Type.Boolean()),
  },
  strict,
);

export const ApiKeySpec = Type.Object(
  {
    name: Text,
    key: Text,
    scopes: Type.Array(Text, { minItems: 1 }),
    created_by: Text,
    expires_at: Type.Optional(Text),
  },
  strict,
);

export const LocationSpec = Type.Object({ slug: Text, name: Text }, strict);

export const SensorSpec = Type.Object(
  {
    key: Text,
    kind: Text,
    unit: Type.String(),
    name: Type.Optional(Text),
  },
  strict,
);

export const DeviceSpec = Type.Object(
  {
    serial: Text,
    name: Text,
    location: Type.Optional(Text),
    token: Type.Optional(Text),
    sensors: Type.Optional(Type.Array(SensorSpec)),
  },
  strict,
);

export const GroupSpec = Type.Object(
  {
    name: Text,
    description: Type.Optional(Type.String()),
    users: Type.Optional(Type.Array(Text)),
  },
  strict,
);

export const OrganizationSpec = Type.Object(
  {
    slug: Text,
    name: Text,
    solution_key: Type.Optional(Text),
    readings_retention_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500 })),
    users: Type.Optional(Type.Array(UserSpec)),
    groups: Type.Optional(Type.Array(GroupSpec)),
    clients: Type.Optional(Type.Array(ClientSpec)),
    api_keys: Type.Optional(Type.Array(ApiKeySpec)),
    identity_providers: Type.Optional(Type.Array(IdentityProviderSpec)),
    locations: Type.Optional(Type.Array(LocationSpec)),
    devices: Type.Optional(Type.Array(DeviceSpec)),
  },
  strict,
);

export const ProvisioningFile = Type.Object({ organizations: Type.Array(OrganizationSpec) }, strict);

export type ProvisioningFile = Static<typeof ProvisioningFile>;
export type OrganizationSpec = Static<typeof OrganizationSpec>;
export type UserSpec = Static<typeof UserSpec>;
export type ClientSpec = Static<typeof ClientSpec>;
export type ApiKeySpec = Static<typeof ApiKeySpec>;
export type DeviceSpec = Static<typeof DeviceSpec>;
