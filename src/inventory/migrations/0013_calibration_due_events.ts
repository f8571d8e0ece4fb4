import { type Kysely, sql } from 'kysely';

/** When the calibration.due event of a calibration was raised (inventory/calibrations-due.ts); a new due date re-arms it. */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table calibrations add column due_event_at timestamptz`.execute(db);
  await sql`create index calibrations_due_pending on calibrations (due_at) where active and due_event_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table calibrations drop column due_event_at`.execute(db);
}
