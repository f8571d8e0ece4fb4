import { type Kysely, sql } from 'kysely';

/**
 * Invitations: adding a person to an organization is an offer they accept (issue 11), so an
 * organization learns nothing of an account before its owner says yes. The token is stored only
 * as its SHA-256. At most one open invitation per (organization, email): the partial unique index
 * covers rows nobody has closed yet. Expiry is a time, which an index predicate cannot read, so an
 * expired invitation stays in the index until a new invitation to the same email supersedes it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table organization_invitations (
      id uuid primary key default gen_random_uuid(),
      organization_id uuid not null references organizations (id) on delete cascade,
      email text not null,
      name text,
      role text not null constraint organization_invitations_role_check check (role in ('owner', 'admin', 'member', 'viewer')),
      token_hash text not null constraint organization_invitations_token_hash_key unique,
      invited_by uuid references users (id) on delete set null,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      accepted_at timestamptz,
      declined_at timestamptz,
      revoked_at timestamptz,
      superseded_at timestamptz,
      -- Who accepted: set with accepted_at only, so a declined invitation names no account.
      user_id uuid references users (id) on delete set null,
      constraint organization_invitations_org_id_key unique (organization_id, id),
      constraint organization_invitations_closed_once_check check (num_nonnulls(accepted_at, declined_at, revoked_at, superseded_at) <= 1),
      constraint organization_invitations_user_check check (user_id is null or accepted_at is not null)
    )`.execute(db);
  await sql`
    create unique index organization_invitations_open_key on organization_invitations (organization_id, email)
    where accepted_at is null and declined_at is null and revoked_at is null and superseded_at is null`.execute(db);
  // A person's own open invitations (the account page), across organizations.
  await sql`
    create index organization_invitations_email_idx on organization_invitations (email)
    where accepted_at is null and declined_at is null and revoked_at is null and superseded_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('organization_invitations').execute();
}
