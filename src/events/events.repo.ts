import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../storage/database.js';
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

/** Events deleted per statement: a purge of millions of reading.created events never holds one huge transaction. */
const PURGE_BATCH = 5_000;

/** Drops events older than `before` (and, by cascade, what consumers recorded against them), a batch at a time. */
export async function purgeEvents(db: Db, before: Date, stopping: () => boolean = () => false): Promise<number> {
  let purged = 0;
  while (!stopping()) {
    const { rows } = await sql<{ n: number }>`
      with gone as (
        delete from events where id in (select id from events where created_at < ${before} limit ${PURGE_BATCH}) returning 1)
      select count(*)::int as n from gone`.execute(db);
    const n = Number(rows[0]?.n ?? 0);
    purged += n;
    if (n < PURGE_BATCH) break;
  }
  return purged;
}
