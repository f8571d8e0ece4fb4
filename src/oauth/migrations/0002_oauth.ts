import { type Kysely, sql } from 'kysely';

/** Authorization server storage: clients, grants and their tokens, codes, consents, API keys, signing keys. */
export async function up(db: Kysely<any>): Promise<void> {
  const now = sql`now()`;
  await db.schema
    .createTable('oauth_clients')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    // argon2id PHC string; null for public clients.
    .addColumn('secret_hash', 'text')
    .addColumn('public', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('grant_types', sql`text[]`, (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('redirect_uris', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
    .addColumn('privacy_policy_url', 'text')
    .addColumn('access_token_ttl', 'integer', (c) => c.notNull())
    .addColumn('refresh_token_ttl', 'integer')
    .addColumn('token_format', 'text', (c) => c.notNull().defaultTo('opaque').check(sql`token_format in ('opaque', 'jwt')`))
    .addColumn('bound_user_id', 'uuid', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('user_auth', 'text', (c) =>
      c.notNull().defaultTo('password').check(sql`user_auth in ('password', 'external_authentication_token')`),
    )
    .addColumn('resource_server', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_by', 'uuid', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('oauth_clients_org_idx').on('oauth_clients').column('organization_id').execute();

  // A grant is one authorization (a login, a consent, a client-credentials request): every token
  // issued from it, including rotated refresh tokens, belongs to it, so it revokes as one family.
  await db.schema
    .createTable('oauth_grants')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('client_pk', 'uuid', (c) => c.notNull().references('oauth_clients.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('grant_type', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('scope_display', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('oauth_grants_client_user_idx').on('oauth_grants').columns(['client_pk', 'user_id']).execute();

  await db.schema
    .createTable('oauth_access_tokens')
    // SHA-256 of the opaque token, or of the JWT's jti.
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('grant_id', 'uuid', (c) => c.notNull().references('oauth_grants.id').onDelete('cascade'))
    .addColumn('organization_id', 'uuid', (c) => c.notNull())
    // Copied from the grant so the bearer check is one primary-key lookup; a refresh may narrow scopes.
    .addColumn('client_pk', 'uuid', (c) => c.notNull())
    .addColumn('user_id', 'uuid')
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('scope_display', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('oauth_access_tokens_grant_idx').on('oauth_access_tokens').column('grant_id').execute();
  await db.schema.createIndex('oauth_access_tokens_expiry_idx').on('oauth_access_tokens').column('expires_at').execute();

  await db.schema
    .createTable('oauth_refresh_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('grant_id', 'uuid', (c) => c.notNull().references('oauth_grants.id').onDelete('cascade'))
    .addColumn('organization_id', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expires_at', 'timestamptz')
    // Set when rotated: presenting it again is reuse, and revokes the family.
    .addColumn('used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('oauth_refresh_tokens_grant_idx').on('oauth_refresh_tokens').column('grant_id').execute();

  await db.schema
    .createTable('oauth_authorization_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('client_pk', 'uuid', (c) => c.notNull().references('oauth_clients.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('scope_display', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text')
    .addColumn('code_challenge_method', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    // The grant created on redemption: a replayed code revokes it.
    .addColumn('grant_id', 'uuid', (c) => c.references('oauth_grants.id').onDelete('set null'))
    .execute();

  await db.schema
    .createTable('oauth_device_codes')
    .addColumn('device_code_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_code', 'text', (c) => c.notNull().unique())
    .addColumn('client_pk', 'uuid', (c) => c.notNull().references('oauth_clients.id').onDelete('cascade'))
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('requested_scope', 'text')
    .addColumn('status', 'text', (c) =>
      c.notNull().defaultTo('pending').check(sql`status in ('pending', 'approved', 'denied', 'redeemed')`),
    )
    .addColumn('user_id', 'uuid', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('scopes', sql`text[]`)
    .addColumn('scope_display', 'text')
    .addColumn('interval_seconds', 'integer', (c) => c.notNull().defaultTo(5))
    .addColumn('last_polled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('oauth_consents')
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_pk', 'uuid', (c) => c.notNull().references('oauth_clients.id').onDelete('cascade'))
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('oauth_consents_pkey', ['organization_id', 'user_id', 'client_pk'])
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    // First characters of the key, shown in lists so people can tell keys apart.
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('scopes', sql`text[]`, (c) => c.notNull())
    .addColumn('created_by', 'uuid', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  // A name is unique among the organization's active keys; a revoked key's name may be reused.
  await sql`create unique index api_keys_org_name_active_key on api_keys (organization_id, name) where revoked_at is null`.execute(db);

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('private_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('public_jwk', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(now))
    // No longer used to sign; still published until the tokens it signed have expired.
    .addColumn('retired_at', 'timestamptz')
    .addColumn('publish_until', 'timestamptz')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'signing_keys',
    'api_keys',
    'oauth_consents',
    'oauth_device_codes',
    'oauth_authorization_codes',
    'oauth_refresh_tokens',
    'oauth_access_tokens',
    'oauth_grants',
    'oauth_clients',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
