import { type Selectable, sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { deleteOlderThan } from '../storage/purge.js';
import { type Page, type PageRequest, type Sort, type SortField, keysetPage, paginate } from '../storage/keyset.js';
import { escapeLike, isUuid } from '../storage/sql.js';
import type { ActorKind, AuditAction } from './actions.js';
import type { AuditEventsTable } from './audit.schema.js';

export interface AuditEntry {
  organizationId: string;
  actor: { kind: ActorKind; id: string | null };
  sourceAddress?: string | null;
  action: AuditAction;
  target: { type: string; id: string };
  /** What else is worth knowing (names, scopes, changed fields): never a secret. */
  details?: Record<string, unknown>;
}

/** Who made a change and from where: what a service that audits its changes is handed by its caller. */
export type AuditSource = Pick<AuditEntry, 'actor' | 'sourceAddress'>;

/** The server itself, or its command line (no address). */
export const SYSTEM: AuditSource = { actor: { kind: 'system', id: null }, sourceAddress: null };

/** Records an audit entry; pass the transaction of the change it records, so neither exists without the other. */
export async function recordAuditEvent(db: Db, entry: AuditEntry): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      organization_id: entry.organizationId,
      actor_kind: entry.actor.kind,
      actor_id: entry.actor.id,
      source_address: entry.sourceAddress ?? null,
      action: entry.action,
      target_type: entry.target.type,
      target_id: entry.target.id,
      details: JSON.stringify(entry.details ?? {}),
    })
    .execute();
}

/**
 * The recorder of one kind of target, for a module that audits its changes: `describe` says which
 * organization and id a row is and what of it is worth recording (never a secret).
 *
 *   const auditToken = auditTarget('device', (d: Device) => ({ organizationId: d.organization_id, id: d.id, details: { serial: d.serial } }));
 *   await auditToken(tx, source, 'device_token.rotated', device);
 */
export function auditTarget<Row>(
  type: string,
  describe: (row: Row) => { organizationId: string; id: string; details: Record<string, unknown> },
) {
  return (tx: Db, source: AuditSource, action: AuditAction, row: Row, details: Record<string, unknown> = {}): Promise<void> => {
    const described = describe(row);
    return recordAuditEvent(tx, {
      ...source,
      organizationId: described.organizationId,
      action,
      target: { type, id: described.id },
      details: { ...described.details, ...details },
    });
  };
}

/**
 * A failed sign-in of a known account: one entry in every organization the person belongs to (the
 * login form is not tied to one), in one statement. Sign-ins that fail are bounded by the abuse
 * guard, so this adds one insert to each counted failure and nothing to a successful sign-in.
 */
export async function recordFailedSignIn(
  db: Db,
  userId: string,
  sourceAddress: string,
  method: 'login_form' | 'password_grant',
  organizationId?: string,
): Promise<void> {
  const action: AuditAction = 'sign_in.failed';
  let memberships = db
    .selectFrom('memberships')
    .select([
      'organization_id',
      sql.lit('user').as('actor_kind'),
      sql<string>`cast(${userId} as uuid)`.as('actor_id'),
      sql<string>`${sourceAddress}`.as('source_address'),
      sql.lit(action).as('action'),
      sql.lit('user').as('target_type'),
      sql<string>`cast(${userId} as uuid)`.as('target_id'),
      sql<string>`cast(${JSON.stringify({ method })} as jsonb)`.as('details'),
    ])
    .where('user_id', '=', userId);
  if (organizationId !== undefined) memberships = memberships.where('organization_id', '=', organizationId);
  await db
    .insertInto('audit_events')
    .columns(['organization_id', 'actor_kind', 'actor_id', 'source_address', 'action', 'target_type', 'target_id', 'details'])
    .expression(memberships)
    .execute();
}

export type AuditEvent = Selectable<AuditEventsTable>;

/**
 * `at` is stored to the millisecond (the precision of a cursor), so the list orders by the column
 * itself and its indexes serve the order (storage/keyset.ts `exact`).
 */
export const AUDIT_SORTS: Record<string, SortField> = { at: { column: 'audit_events.at', cast: 'timestamptz', exact: true } };

/** The filters of `/v1/audit-events`, as the query names them. */
export interface AuditFilter {
  /** An action, or a prefix of actions when it ends with `.` or `*` (`api_key.`). */
  action?: string | undefined;
  actor_kind?: string | undefined;
  actor_id?: string | undefined;
  target_type?: string | undefined;
  target_id?: string | undefined;
  /** At or after (RFC 3339). */
  from?: string | undefined;
  /** Before (RFC 3339). */
  to?: string | undefined;
}

/** The organization's entries, filtered; every filter has an index leading with organization_id (migration 0017). */
export async function listAuditEvents(
  db: Db,
  organizationId: string,
  filter: AuditFilter,
  sort: Sort,
  page: PageRequest,
): Promise<Page<AuditEvent>> {
  let query = db.selectFrom('audit_events').selectAll().where('organization_id', '=', organizationId);
  const { action } = filter;
  if (action !== undefined) {
    const prefix = action.endsWith('*') ? action.slice(0, -1) : action.endsWith('.') ? action : undefined;
    query = prefix === undefined ? query.where('action', '=', action) : query.where('action', 'like', `${escapeLike(prefix)}%`);
  }
  for (const column of ['actor_kind', 'target_type'] as const) {
    const value = filter[column];
    if (value !== undefined) query = query.where(column, '=', value);
  }
  for (const column of ['actor_id', 'target_id'] as const) {
    const value = filter[column];
    if (value !== undefined) query = isUuid(value) ? query.where(column, '=', value) : query.where(sql<boolean>`false`);
  }
  if (filter.from !== undefined) query = query.where('at', '>=', new Date(filter.from));
  if (filter.to !== undefined) query = query.where('at', '<', new Date(filter.to));
  const rows = await paginate(query, sort, 'audit_events.id', page).execute();
  return keysetPage(rows, sort, page);
}

export async function findAuditEvent(db: Db, organizationId: string, id: string): Promise<AuditEvent | undefined> {
  if (!isUuid(id)) return undefined;
  return db.selectFrom('audit_events').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

/** Deletes entries older than `before`, 1,000 a statement (index audit_events_at), until none is left or `stopping()`. */
export function purgeAuditEvents(db: Db, before: Date, stopping?: () => boolean): Promise<number> {
  return deleteOlderThan(db, { table: 'audit_events', column: 'at', batch: 1_000 }, before, stopping);
}
