import type { ColumnType, Generated } from 'kysely';

/**
 * The audit log: who changed a credential, a secret, a role or a subscription, and when. Written
 * in the transaction of the change; never holds a secret (only what was changed and how).
 */
export interface AuditEventsTable {
  id: Generated<string>;
  organization_id: string;
  /** To the millisecond (the precision of a page cursor; migration 0017). */
  at: ColumnType<Date, Date | string | undefined, never>;
  /** `user`, `api_key`, `app`, `device`, or `system` (the server itself, or its command line); actions.ts. */
  actor_kind: string;
  /** The user, key, client or device; null for `system`. */
  actor_id: string | null;
  /** The caller's address, when a request caused it. */
  source_address: string | null;
  /** `<resource>.<verb>`, one of AUDIT_ACTIONS (actions.ts), e.g. `webhook.disabled`. */
  action: string;
  target_type: string;
  target_id: string;
  /** What else is worth knowing (a reason, the changed fields), never a secret. */
  details: ColumnType<Record<string, unknown>, string, never>;
}

export interface AuditTables {
  audit_events: AuditEventsTable;
}

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends AuditTables {}
}
