import type { Db } from '../storage/database.js';

export interface AuditEntry {
  organizationId: string;
  actor: { kind: 'user' | 'api_key' | 'app' | 'device' | 'system'; id: string | null };
  sourceAddress?: string | null;
  action: string;
  target: { type: string; id: string };
  details?: Record<string, unknown>;
}

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
