import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
import { deleteOlderThan } from '../storage/purge.js';
import type { EventDraft, StoredEvent } from './event-types.js';

/**
 * Stores drafts in one statement, whatever their number (a batch of readings may raise
 * thousands): the rows travel as one jsonb array, which both drivers pass alike. Ids are made
 * here so that each stored event is known without relying on the order RETURNING answers in.
 */
export async function insertEvents(tx: Db, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
  const events = drafts.map((draft) => ({ ...draft, id: randomUUID() }));
  const rows = events.map((e) => ({
    id: e.id,
    organization_id: e.organizationId,
    type: e.type,
    occurred_at: new Date(e.occurredAt).toISOString(),
    data: e.data,
  }));
  await sql`
    insert into events (id, organization_id, type, occurred_at, data)
    select (e->>'id')::uuid, (e->>'organization_id')::uuid, e->>'type', (e->>'occurred_at')::timestamptz, e->'data'
    from jsonb_array_elements(${JSON.stringify(rows)}::jsonb) as e`.execute(tx);
  return events;
}

/** Drops events older than `before` (and, by cascade, what consumers recorded against them), 5,000 a statement. */
export function purgeEvents(db: Db, before: Date, stopping?: () => boolean): Promise<number> {
  // A purge of millions of reading.created events never holds one huge transaction.
  return deleteOlderThan(db, { table: 'events', column: 'created_at', batch: 5_000 }, before, stopping);
}
