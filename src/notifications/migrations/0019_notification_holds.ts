import { type Kysely, sql } from 'kysely';

/**
 * When quiet hours last held an email: an alarm acknowledged or resolved while its email waited is
 * not mailed when they end (notification-worker.ts), since by then it tells of a handled alarm.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table notification_tasks add column held_until timestamptz`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table notification_tasks drop column held_until`.execute(db);
}
