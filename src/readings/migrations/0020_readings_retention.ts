import { type Kysely, sql } from 'kysely';

/**
 * An organization's readings retention period in days (readings/retention.ts); null: the server's
 * READINGS_RETENTION_DAYS, or forever.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table organizations add column readings_retention_days integer
    constraint organizations_readings_retention_days_check check (readings_retention_days > 0)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table organizations drop column readings_retention_days`.execute(db);
}
