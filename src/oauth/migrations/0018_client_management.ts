import { type Kysely, sql } from 'kysely';

/**
 * Clients managed through `/v1/applications`: an application can be disabled (it cannot
 * authenticate, start an authorization, or use the tokens it holds) and re-enabled, and a client
 * records who owns its registration when that is not the organization's admins: `provisioning`
 * (the provisioning file re-applies it at every start) or `iotconnect` (the IoTConnect sign-in's
 * own client). The IoTConnect clients made before this migration are marked here; provisioned ones
 * are marked the next time the file is applied.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table oauth_clients add column enabled boolean not null default true`.execute(db);
  await sql`
    alter table oauth_clients add column managed_by text
      constraint oauth_clients_managed_by_check check (managed_by in ('provisioning', 'iotconnect'))`.execute(db);
  await sql`update oauth_clients set managed_by = 'iotconnect' where client_id = 'iotconnect-' || organization_id::text`.execute(db);
  await sql`create index oauth_clients_organization_created on oauth_clients (organization_id, created_at, id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index oauth_clients_organization_created`.execute(db);
  await sql`alter table oauth_clients drop column managed_by`.execute(db);
  await sql`alter table oauth_clients drop column enabled`.execute(db);
}
