import { type Kysely, sql } from 'kysely';

/**
 * The audit log's API (`/v1/audit-events`) and retention (AUDIT_RETENTION_DAYS):
 *
 * - `at` to the millisecond, the precision of a page cursor, so the list orders by the column
 *   itself and the indexes below serve "newest first" without a sort;
 * - an index per selective filter, each leading with organization_id and ending with (at, id), the
 *   order of the list: action (text_pattern_ops, for the `api_key.` prefix as LIKE), actor kind,
 *   actor id, target type, target id; the existing (organization_id, at, id) serves from/to;
 * - `at` alone for the retention purge, which deletes across organizations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`update audit_events set at = date_trunc('milliseconds', at) where at <> date_trunc('milliseconds', at)`.execute(db);
  await sql`alter table audit_events alter column at set default date_trunc('milliseconds', now())`.execute(db);
  await sql`create index audit_events_action on audit_events (organization_id, action text_pattern_ops, at, id)`.execute(db);
  await sql`create index audit_events_actor_kind on audit_events (organization_id, actor_kind, at, id)`.execute(db);
  await sql`create index audit_events_actor on audit_events (organization_id, actor_id, at, id)`.execute(db);
  await sql`create index audit_events_target_type on audit_events (organization_id, target_type, at, id)`.execute(db);
  await sql`create index audit_events_target on audit_events (organization_id, target_id, at, id)`.execute(db);
  await sql`create index audit_events_at on audit_events (at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const index of ['action', 'actor_kind', 'actor', 'target_type', 'target', 'at'])
    await sql`drop index ${sql.id(`audit_events_${index}`)}`.execute(db);
  await sql`alter table audit_events alter column at set default now()`.execute(db);
}
