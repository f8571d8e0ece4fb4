import { type Kysely, sql } from 'kysely';

/**
 * External OpenID Connect providers of an organization, and the sign-ins started at one of them
 * and not yet finished (external-signin/external-signin.schema.ts).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table identity_providers (
      id uuid primary key,
      organization_id uuid not null references organizations (id) on delete cascade,
      name text not null,
      issuer text not null,
      client_id text not null,
      client_secret_sealed text not null,
      allowed_email_domains text[] not null default '{}',
      enabled boolean not null default true,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      unique (organization_id, name),
      unique (organization_id, id)
    )`.execute(db);
  await sql`create index identity_providers_organization on identity_providers (organization_id, created_at, id)`.execute(db);
  await sql`
    create table external_signins (
      state_hash text primary key,
      organization_id uuid not null,
      provider_id uuid not null,
      browser_hash text not null,
      nonce text not null,
      code_verifier text not null,
      return_to text not null,
      expires_at timestamptz not null,
      foreign key (organization_id, provider_id) references identity_providers (organization_id, id) on delete cascade
    )`.execute(db);
  await sql`create index external_signins_expiry on external_signins (expires_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table external_signins`.execute(db);
  await sql`drop table identity_providers`.execute(db);
}
